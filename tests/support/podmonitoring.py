"""What GKE's managed Prometheus accepts as a PodMonitoring (`monitoring.googleapis.com/v1`), for the fields modelplane
writes.

Ported from the CRD prometheus-engine ships and GKE installs with managed collection: GoogleCloudPlatform/
prometheus-engine, charts/operator/crds/monitoring.googleapis.com_podmonitorings.yaml, version v1, at tag v0.17.2
(commit 7920a2a222af1c09535d8141684e2944670c5041; its v1 schema for these fields is the same on main through
v0.19.0-rc.1). The schema below is that CRD's, cut to `spec.selector` and `spec.endpoints[]`'s `port`, `path`,
`interval`, `scheme` and `timeout`; `rules` are its CEL rules and the checks the operator makes, written out in
Python:
- `port` is a container port's name or number (int-or-string, 1..253 characters) and not 0 (the CRD's rule
  `self != 0`, which holds for any name under CEL's heterogeneous equality);
- `interval` and `timeout` are Prometheus durations (the CRD: "Must be a valid Prometheus duration"; the grammar of
  prometheus/common model.ParseDuration: `0`, or units y w d h m s ms in that order, each at most once);
- the selector converts to a label selector (metav1.LabelSelectorAsSelector): Exists and DoesNotExist take no
  values, In and NotIn at least one.
A field the schema does not declare is pruned by the API server, silently (tests/support/pruning.py), so it is
reported. Not ported: the fields modelplane does not write (authentication, TLS, relabeling, limits, targetLabels),
the `timeout <= interval` rule, and the OpenAPI `duration` format check (Prometheus' grammar is the stricter here).
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.apiserver import schema_errors
from tests.support.pruning import pruned

API_VERSION = "monitoring.googleapis.com/v1"
_DURATION = re.compile(r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")
_STRINGS = {"type": "array", "items": {"type": "string"}}

LABEL_SELECTOR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "required": ["key", "operator"],
            "properties": {"key": {"type": "string"}, "operator": {"type": "string"}, "values": _STRINGS}}},
    },
}
ENDPOINT: dict[str, Any] = {
    "type": "object", "required": ["interval", "port"],
    "properties": {
        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True,
                 "minLength": 1, "maxLength": 253},
        "path": {"type": "string"},
        "interval": {"type": "string", "format": "duration"},
        "timeout": {"type": "string", "format": "duration"},
        "scheme": {"type": "string", "enum": ["http", "https"]},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["endpoints", "selector"], "properties": {
            "endpoints": {"type": "array", "minItems": 1, "maxItems": 10, "items": ENDPOINT},
            "selector": LABEL_SELECTOR,
        }},
    },
}


def prometheus_duration(value: str) -> bool:
    return value == "0" or (value != "" and _DURATION.match(value) is not None)


def _rules(spec: dict[str, Any]) -> list[str]:
    problems = []
    for i, endpoint in enumerate(spec["endpoints"]):
        if endpoint["port"] == 0:
            problems.append(f"spec.endpoints[{i}].port: Port is required")
        for key in ("interval", "timeout"):
            if key in endpoint and not prometheus_duration(endpoint[key]):
                problems.append(f"spec.endpoints[{i}].{key}: {endpoint[key]!r} is not a Prometheus duration")
    for i, requirement in enumerate(spec["selector"].get("matchExpressions", [])):
        operator, values = requirement["operator"], requirement.get("values", [])
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            problems.append(f"spec.selector.matchExpressions[{i}].operator: {operator!r} is not an operator")
        elif (operator in ("In", "NotIn")) != bool(values):
            problems.append(f"spec.selector.matchExpressions[{i}].values: {operator} takes "
                            f"{'at least one value' if operator in ('In', 'NotIn') else 'no values'}")
    return problems


def problems(obj: dict[str, Any]) -> list[str]:
    """Why the API server or managed Prometheus would refuse `obj`, or drop part of it; [] when it takes it whole."""
    if (obj.get("apiVersion"), obj.get("kind")) != (API_VERSION, "PodMonitoring"):
        return [f"not a {API_VERSION} PodMonitoring"]
    found = schema_errors(obj, SCHEMA)
    if found:
        return found
    spec = SCHEMA["properties"]["spec"]  # the root's apiVersion, kind and metadata are the API server's own
    return [*(f"spec{path}: not in the CRD's schema, pruned" for path in pruned(spec, obj["spec"])),
            *_rules(obj["spec"])]
