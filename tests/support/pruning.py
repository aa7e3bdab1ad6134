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


def pruned(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """The paths of the fields in `value` that the API server would prune under `schema`."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        if "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
            return [p for key, item in value.items()
                    for p in pruned(schema["additionalProperties"], item, f"{path}.{key}")]
        properties = schema.get("properties", {})
        found = []
        for key, item in value.items():
            if key not in properties:
                found.append(f"{path}.{key}")
            else:
                found += pruned(properties[key], item, f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [p for i, item in enumerate(value) for p in pruned(schema["items"], item, f"{path}[{i}]")]
    return []
