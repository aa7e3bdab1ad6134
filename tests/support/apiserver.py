"""What the Kubernetes API server does to a custom resource on create/update, for the parts CRDs control:
defaulting, OpenAPI schema validation, then CEL rules (`x-kubernetes-validations`, with oldSelf on update).

OpenAPI v3.0 is JSON Schema draft 4 (boolean exclusiveMaximum), and the API server validates a node with
`x-kubernetes-int-or-string` as `type: [integer, string]` (apiextensions-apiserver pkg/apiserver/validation:
ConvertJSONSchemaPropsWithPostProcess), so a float or an object there is refused even without an `anyOf`.
Root rules see `metadata` as the API server shows it to CEL: only `name` and `generateName`
(apiserver pkg/cel/common: WithTypeAndObjectMeta).

It reads the checked-in CRDs, so a test against it tests what users get from `kubectl apply`.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

CRDS_DIR = Path(__file__).resolve().parents[2] / "platform" / "crds"
_MISSING = object()


@cache
def crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind -> openAPIV3Schema of the checked-in CRDs."""
    schemas = {}
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        schemas[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schemas


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Structural defaulting: fill absent properties that have a default, recursively, as the API server does."""
    if isinstance(value, dict) and "properties" in schema:
        for name, prop in schema["properties"].items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = apply_defaults(value[name], prop)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = apply_defaults(value[key], schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def validation_schema(node: dict[str, Any]) -> dict[str, Any]:
    """`node` as the API server's OpenAPI validator reads it: int-or-string nodes typed `[integer, string]`."""
    out = dict(node)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            out[key] = validation_schema(node[key])
    if "properties" in node:
        out["properties"] = {name: validation_schema(prop) for name, prop in node["properties"].items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [validation_schema(branch) for branch in node[key]]
    return out


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """OpenAPI schema validation errors of `value`, ordered by path."""
    validator = jsonschema.Draft4Validator(validation_schema(schema))
    return [_schema_error(e) for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))]


def cel_view(obj: dict[str, Any]) -> dict[str, Any]:
    """The root object as CEL rules see it: of metadata, only name and generateName."""
    metadata = obj.get("metadata", {})
    return {**obj, "metadata": {k: metadata[k] for k in ("name", "generateName") if k in metadata}}


_cel = celpy.Environment()


@cache
def _program(rule: str) -> Any:
    return _cel.program(_cel.compile(rule))


def _evaluate(rule: str, new: Any, old: Any) -> bool:
    activation = {"self": json_to_cel(new)}
    if old is not _MISSING:
        activation["oldSelf"] = json_to_cel(old)
    result = _program(rule).evaluate(activation)
    if isinstance(result, CELEvalError):
        raise result
    return bool(result)


def cel_errors(value: Any, schema: dict[str, Any], path: str, old: Any = _MISSING) -> list[str]:
    """Messages of failing CEL rules; transition rules (oldSelf) run only where an old value exists."""
    errors = []
    for validation in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in validation["rule"] and old is _MISSING:
            continue
        if not _evaluate(validation["rule"], value, old):
            errors.append(f"{path or '<root>'}: {validation['message']}")
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                old_child = old.get(name, _MISSING) if isinstance(old, dict) else _MISSING
                errors += cel_errors(value[name], prop, f"{path}.{name}", old_child)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                errors += cel_errors(item, extra, f"{path}[{key}]")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += cel_errors(item, schema["items"], f"{path}[{i}]")
    return errors


def _schema_error(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"{path or '<root>'}: {error.message}"


class AdmissionError(Exception):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def admit(obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored object after defaulting, or AdmissionError with every message the API server would give."""
    kind = obj.get("kind", "")
    schemas = crd_schemas()
    if kind not in schemas:
        raise AdmissionError([f"no CRD for kind {kind!r}"])
    schema = schemas[kind]
    stored: dict[str, Any] = apply_defaults(copy.deepcopy(obj), schema)
    errors = schema_errors(stored, schema)
    if not errors:
        old_stored = cel_view(apply_defaults(copy.deepcopy(old), schema)) if old is not None else _MISSING
        errors = cel_errors(cel_view(stored), schema, "", old_stored)
    if errors:
        raise AdmissionError([e.lstrip(".") for e in errors])
    return stored
