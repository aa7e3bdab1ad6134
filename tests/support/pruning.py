"""What the API server prunes from a custom resource: the fields its structural schema does not declare.

Ported from k8s.io/apiextensions-apiserver `pkg/apiserver/schema/pruning/algorithm.go` (`prune`): an object node
keeps the fields named in `properties`; a node with `additionalProperties` keeps every key and prunes each value by
that schema; `x-kubernetes-preserve-unknown-fields: true` keeps everything below it; array items are pruned by
`items`. Not ported: `x-kubernetes-embedded-resource` (apiVersion/kind/metadata kept), which no modelplane schema
uses. The operator writes status with a merge patch, so a pruned field is silently lost: a reconciler that relies
on it reads it back as missing on the next sync.
"""

from __future__ import annotations

from typing import Any

import yaml

from modelplane.api.crd import CRDS_DIR


def prune(schema: dict[str, Any], value: Any, path: str = "") -> tuple[Any, list[str]]:
    """`value` as the API server stores it under `schema`, and the paths of the fields it dropped."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value, []
    if isinstance(value, dict):
        kept, dropped = {}, []
        extra = schema.get("additionalProperties")
        properties = schema.get("properties", {})
        for key, item in value.items():
            child = extra if isinstance(extra, dict) else properties.get(key)
            if child is None:
                dropped.append(f"{path}.{key}")
                continue
            kept[key], below = prune(child, item, f"{path}.{key}")
            dropped += below
        return kept, dropped
    if isinstance(value, list) and "items" in schema:
        results = [prune(schema["items"], item, f"{path}[{i}]") for i, item in enumerate(value)]
        return [item for item, _ in results], [p for _, below in results for p in below]
    return value, []


def pruned(schema: dict[str, Any], value: Any) -> list[str]:
    """The paths of the fields in `value` that the API server would prune under `schema`."""
    return prune(schema, value)[1]


def status_schema(plural: str, part: str = "status") -> dict[str, Any]:
    crd = yaml.safe_load((CRDS_DIR / f"{plural}.yaml").read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][part])
