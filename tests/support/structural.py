"""Would the API server accept this CRD schema? A port of the structural-schema rules for v1 CRDs.

Read in kubernetes/apiextensions-apiserver at 1aa2717a552e (master, July 2026, the staging copy of Kubernetes 1.34+):

- `pkg/apiserver/schema/validation.go`: `validateStructuralInvariants` (type required unless int-or-string or
  preserve-unknown-fields, `items` for arrays, no `additionalProperties` at the root, type `object` at the root,
  `kind`/`apiVersion` strings), `validateStructuralMetadataInvariants` (root `metadata` may only restrict `name`
  and `generateName`), `validateExtensions`, `validateValueValidation`/`validateNestedValueValidation` (what a
  junctor allOf/anyOf/oneOf/not may hold: value validations only; no type, description, default, nullable,
  additionalProperties, x-kubernetes-* or metadata), `isIntOrStringAnyOfPattern`/`isIntOrStringAllOfPattern`
  (the two int-or-string forms whose `anyOf` may hold types), and `regexp.Compile` of patterns;
- `pkg/apiserver/schema/complete.go`: `validateStructuralCompleteness` (properties and items named in a junctor
  must exist in the structural part of the same node);
- `pkg/apiserver/schema/convert.go` (`NewStructural`): `items` must be one schema, not an array;
- `pkg/apis/apiextensions/validation/validation.go`: `validateCustomResourceDefinitionValidation` (fields allowed at
  the root with the status subresource, no root `nullable`), `ValidateCustomResourceDefinitionOpenAPISchema`
  (`properties` and `additionalProperties` mutually exclusive, no `uniqueItems`, no defaults in top-level metadata,
  `x-kubernetes-preserve-unknown-fields` true or absent, map-type/list-type/list-map-keys consistency, rule and
  message of `x-kubernetes-validations` non-empty and on one line), `validateMapListKeysMapSet`,
  `specStandardValidatorV3.validate` (no `$ref`, `id`, `definitions`, `dependencies`, `patternProperties`,
  `additionalItems`, `type: null`);
- `pkg/apiserver/schema/defaulting/validation.go` (`ValidateDefaults`): a default must pass its node's schema and
  CEL rules and be unchanged by pruning.

Not ported: x-kubernetes-embedded-resource (beyond its type checks; modelplane embeds no resources), formats
(only `pattern` is checked for syntax, with Python's `re`, close to RE2 for the patterns used here), the
`AllowNested*` options (off for CRDs), compiling the CEL rules (tests/support/celcost.py estimates their cost;
tests/support/apiserver.py runs them), printer columns and selectable fields, and ratcheting of updates.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.support.apiserver import cel_errors, schema_errors

Schema = dict[str, Any]

GENERIC = {"description", "type", "title", "default", "nullable", "externalDocs", "example"}
EXTENSIONS = {"x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
              "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type"}
JUNCTORS = {"allOf", "anyOf", "oneOf", "not"}
VALUE_VALIDATIONS = {"format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
                     "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
                     "minProperties", "required"} | JUNCTORS
STRUCTURE = {"items", "properties", "additionalProperties"}
VALIDATIONS = "x-kubernetes-validations"
UNSUPPORTED = {"$ref": "$ref is not supported", "id": "id is not supported",
               "definitions": "definitions is not supported", "dependencies": "dependencies is not supported",
               "patternProperties": "patternProperties is not supported",
               "additionalItems": "additionalItems is not supported"}
KNOWN = GENERIC | EXTENSIONS | VALUE_VALIDATIONS | STRUCTURE | {VALIDATIONS} | set(UNSUPPORTED)
# validation.go allowedFieldsAtRootSchema, in JSON names: all a root may hold when the status subresource is on.
ROOT_WITH_STATUS = {"description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum",
                    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
                    "multipleOf", "required", "items", "properties", "externalDocs", "example",
                    "x-kubernetes-preserve-unknown-fields", VALIDATIONS}
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
META_FIELDS = ("metadata", "kind", "apiVersion")


def structural_errors(schema: Schema, status_subresource: bool = True) -> list[str]:
    """Every reason the API server would refuse `schema` as a CRD version's openAPIV3Schema (empty: accepted)."""
    errors = _crd_openapi_errors(schema, "openAPIV3Schema", root=True, in_meta=False)
    if status_subresource:
        extra = sorted(set(schema) - ROOT_WITH_STATUS)
        if extra or schema.get("type") != "object":
            errors.append(f"openAPIV3Schema: only {sorted(ROOT_WITH_STATUS)} are allowed at the root with the status "
                          f"subresource (type object), not {extra or schema.get('type')}")
    if schema.get("nullable"):
        errors.append("openAPIV3Schema.nullable: nullable cannot be true at the root")
    if errors:  # NewStructural fails or ValidateStructural is not reached on such schemas either
        return errors
    errors += _invariants(schema, "openAPIV3Schema", "root")
    errors += _completeness(schema, schema, "openAPIV3Schema", "openAPIV3Schema")
    if not errors:
        errors += _default_errors(schema, "openAPIV3Schema", in_meta=False, root=True)
    return sorted(errors)


# --- pkg/apis/apiextensions/validation/validation.go ------------------------------------------------------------

def _crd_openapi_errors(node: Schema, path: str, root: bool, in_meta: bool) -> list[str]:
    """`ValidateCustomResourceDefinitionOpenAPISchema` with `specStandardValidatorV3.validate`, on every node."""
    errors = [f"{path}.{key}: {message}" for key, message in UNSUPPORTED.items() if key in node]
    errors += [f"{path}.{key}: unknown field" for key in sorted(set(node) - KNOWN)]
    if node.get("type") == "null":
        errors.append(f"{path}.type: type cannot be set to null, use nullable as an alternative")
    if isinstance(node.get("items"), list):
        errors.append(f"{path}.items: items must be a schema object and not an array")
    if "default" in node and in_meta:
        errors.append(f"{path}.default: must not be set in top-level metadata")
    if node.get("uniqueItems"):
        errors.append(f"{path}.uniqueItems: uniqueItems cannot be set to true since the runtime complexity becomes "
                      "quadratic")
    extra = node.get("additionalProperties")
    if extra is not None and node.get("properties") and extra is not True:
        errors.append(f"{path}.additionalProperties: additionalProperties and properties are mutual exclusive")
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(f"{path}.x-kubernetes-preserve-unknown-fields: must be true or undefined")
    errors += _list_and_map_type_errors(node, path)
    errors += _rule_errors(node, path)
    for name, prop in node.get("properties", {}).items():
        top_meta = root and name in META_FIELDS
        errors += _crd_openapi_errors(prop, f"{path}.properties[{name}]", False, in_meta or top_meta)
    if isinstance(extra, dict):
        errors += _crd_openapi_errors(extra, f"{path}.additionalProperties", False, in_meta)
    if isinstance(node.get("items"), dict):
        errors += _crd_openapi_errors(node["items"], f"{path}.items", False, in_meta)
    for key in ("allOf", "anyOf", "oneOf"):
        for i, branch in enumerate(node.get(key, [])):
            errors += _crd_openapi_errors(branch, f"{path}.{key}[{i}]", False, in_meta)
    if isinstance(node.get("not"), dict):
        errors += _crd_openapi_errors(node["not"], f"{path}.not", False, in_meta)
    return errors


def _list_and_map_type_errors(node: Schema, path: str) -> list[str]:
    """x-kubernetes-map-type / list-type / list-map-keys consistency, and `validateMapListKeysMapSet`."""
    errors = []
    map_type, list_type = node.get("x-kubernetes-map-type"), node.get("x-kubernetes-list-type")
    keys: list[str] = node.get("x-kubernetes-list-map-keys", [])
    if map_type is not None and node.get("type") != "object":
        errors.append(f"{path}.type: must be object if x-kubernetes-map-type is specified")
    if map_type not in (None, "atomic", "granular"):
        errors.append(f"{path}.x-kubernetes-map-type: Unsupported value {map_type!r}")
    if list_type is not None and node.get("type") != "array":
        errors.append(f"{path}.type: must be array if x-kubernetes-list-type is specified")
    if list_type not in (None, "atomic", "set", "map"):
        errors.append(f"{path}.x-kubernetes-list-type: Unsupported value {list_type!r}")
    items = node.get("items") if isinstance(node.get("items"), dict) else None
    if list_type == "set" and items is not None:
        if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
            errors.append(f"{path}.items.x-kubernetes-list-type: must be atomic as item of a list with "
                          "x-kubernetes-list-type=set")
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            errors.append(f"{path}.items.x-kubernetes-map-type: must be atomic as item of a list with "
                          "x-kubernetes-list-type=set")
    if keys and list_type != "map":
        errors.append(f"{path}.x-kubernetes-list-type: must be map if x-kubernetes-list-map-keys is non-empty")
    if list_type in ("set", "map") and items is not None and items.get("nullable"):
        errors.append(f"{path}.items.nullable: cannot be nullable when x-kubernetes-list-type is {list_type}")
    if list_type == "map":
        if not keys:
            errors.append(f"{path}.x-kubernetes-list-map-keys: must not be empty if x-kubernetes-list-type is map")
        if items is None:
            errors.append(f"{path}.items: must have a schema if x-kubernetes-list-type is map")
        elif items.get("type") != "object":
            errors.append(f"{path}.items.type: must be object if parent array's x-kubernetes-list-type is map")
        else:
            props = items.get("properties", {})
            if len(set(keys)) != len(keys):
                errors.append(f"{path}.x-kubernetes-list-map-keys: must not contain duplicate entries")
            for key in keys:
                if key not in props:
                    errors.append(f"{path}.x-kubernetes-list-map-keys: entries must all be names of item properties")
                    continue
                if props[key].get("type") in ("array", "object"):
                    errors.append(f"{path}.items.properties[{key}].type: must be a scalar type if parent array's "
                                  "x-kubernetes-list-type is map")
                if key not in items.get("required", []) and "default" not in props[key]:
                    errors.append(f"{path}.items.properties[{key}].default: this property is in "
                                  "x-kubernetes-list-map-keys, so it must have a default or be a required property")
                if props[key].get("nullable"):
                    errors.append(f"{path}.items.properties[{key}].nullable: this property is in "
                                  "x-kubernetes-list-map-keys, so it cannot be nullable")
    return errors


def _rule_errors(node: Schema, path: str) -> list[str]:
    errors = []
    for i, validation in enumerate(node.get(VALIDATIONS, [])):
        rule_text, message = validation.get("rule", ""), validation.get("message", "")
        if not rule_text.strip():
            errors.append(f"{path}.{VALIDATIONS}[{i}].rule: rule is not specified")
        elif "message" in validation and not message.strip():
            errors.append(f"{path}.{VALIDATIONS}[{i}].message: must be non-empty if specified")
        elif re.search(r"[\n\r]", message.strip()):
            errors.append(f"{path}.{VALIDATIONS}[{i}].message: must not contain line breaks")
        elif re.search(r"[\n\r]", rule_text.strip()) and not message.strip():
            errors.append(f"{path}.{VALIDATIONS}[{i}].message: message must be specified if rule contains line breaks")
    return errors


# --- pkg/apiserver/schema/validation.go --------------------------------------------------------------------------

def _is_int_or_string_any_of(node: Schema) -> bool:
    return node.get("anyOf") == INT_OR_STRING_ANY_OF


def _is_int_or_string_all_of(node: Schema) -> bool:
    all_of = node.get("allOf", [])
    return bool(all_of) and all_of[0].get("anyOf") == INT_OR_STRING_ANY_OF


def _invariants(node: Schema, path: str, level: str) -> list[str]:
    """`validateStructuralInvariants`; level is root, item or field."""
    errors = []
    if node.get("type") == "array" and "items" not in node:
        errors.append(f"{path}.items: Required value: must be specified")
    if isinstance(node.get("items"), dict):
        errors += _invariants(node["items"], f"{path}.items", "item")
    for name, prop in node.get("properties", {}).items():
        errors += _invariants(prop, f"{path}.properties[{name}]", "field")
    if "additionalProperties" in node:
        if level == "root":
            errors.append(f"{path}.additionalProperties: Forbidden: must not be used at the root")
        if isinstance(node["additionalProperties"], dict):
            errors += _invariants(node["additionalProperties"], f"{path}.additionalProperties", "field")
    int_or_string = bool(node.get("x-kubernetes-int-or-string"))
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(node.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        errors.append(f"{path}.x-kubernetes-preserve-unknown-fields: must be false if x-kubernetes-int-or-string is "
                      "true")
    if int_or_string and embedded:
        errors.append(f"{path}.x-kubernetes-embedded-resource: must be false if x-kubernetes-int-or-string is true")
    errors += _value_validation(node, path, _is_int_or_string_any_of(node), _is_int_or_string_all_of(node))
    if embedded and node.get("type") != "object":
        errors.append(f"{path}.type: must be object if x-kubernetes-embedded-resource is true")
    elif "type" not in node and not int_or_string and not preserve:
        where = {"root": "at the root", "item": "for specified array items", "field": "for specified object fields"}
        errors.append(f"{path}.type: Required value: must not be empty {where[level]}")
    if level == "root" and node.get("type", "object") != "object":
        errors.append(f"{path}.type: must be object at the root")
    props = node.get("properties", {})
    check_metadata = level == "root" or embedded
    for name in ("kind", "apiVersion"):
        if name in props and check_metadata and props[name].get("type") != "string":
            errors.append(f"{path}.properties[{name}].type: must be string")
    if "metadata" in props:
        errors += _metadata_invariants(props["metadata"], check_metadata, level, f"{path}.properties[metadata]")
    return errors


def _metadata_invariants(node: Schema, check_metadata: bool, level: str, path: str) -> list[str]:
    """`validateStructuralMetadataInvariants`: at the root, metadata may only restrict name and generateName."""
    errors = []
    if check_metadata and node.get("type") != "object":
        errors.append(f"{path}.type: must be object")
    if level == "root":
        rest = {k: v for k, v in node.items() if k not in ("type", "default", "properties")}
        props = set(node.get("properties", {}))
        if rest or not props <= {"name", "generateName"}:
            errors.append(f"{path}: Forbidden: must not specify anything other than name and generateName, but "
                          "metadata is implicitly specified")
    return errors


def _value_validation(node: Schema, path: str, skip_any_of: bool, skip_first_all_of_any_of: bool) -> list[str]:
    """`validateValueValidation`: the junctors of `node`, each checked as a nested value validation."""
    errors = []
    if not skip_any_of:
        for i, branch in enumerate(node.get("anyOf", [])):
            errors += _nested(branch, f"{path}.anyOf[{i}]", False)
    for i, branch in enumerate(node.get("allOf", [])):
        errors += _nested(branch, f"{path}.allOf[{i}]", skip_first_all_of_any_of and i == 0)
    for i, branch in enumerate(node.get("oneOf", [])):
        errors += _nested(branch, f"{path}.oneOf[{i}]", False)
    if isinstance(node.get("not"), dict):
        errors += _nested(node["not"], f"{path}.not", False)
    if "pattern" in node:
        try:
            re.compile(node["pattern"])
        except re.error as error:
            errors.append(f"{path}.pattern: must be a valid regular expression, but isn't: {error}")
    return errors


_NESTED_FORBIDDEN = {
    "type": "must be empty to be structural", "additionalProperties": "must be undefined to be structural",
    "default": "must be undefined to be structural", "title": "must be empty to be structural",
    "description": "must be empty to be structural", "nullable": "must be false to be structural",
    VALIDATIONS: "must be empty to be structural",
    **{extension: "must be undefined to be structural" for extension in EXTENSIONS},
}


def _nested(node: Schema, path: str, skip_any_of: bool) -> list[str]:
    """`validateNestedValueValidation`: inside a junctor only value validations, items and properties."""
    errors = _value_validation(node, path, skip_any_of, False)
    if isinstance(node.get("items"), dict):
        errors += _nested(node["items"], f"{path}.items", False)
    for name, prop in node.get("properties", {}).items():
        errors += _nested(prop, f"{path}.properties[{name}]", False)
    errors += [f"{path}.{key}: Forbidden: {why}" for key, why in _NESTED_FORBIDDEN.items()
               if node.get(key) not in (None, False, "", [])]
    if "metadata" in node.get("properties", {}):
        errors.append(f"{path}.properties[metadata]: Forbidden: must not be specified in a nested context")
    return errors


# --- pkg/apiserver/schema/complete.go ----------------------------------------------------------------------------

def _completeness(structural: Schema | None, validation: Schema, s_path: str, v_path: str) -> list[str]:
    """`validateStructuralCompleteness`: what a junctor names must exist structurally at the same place."""
    errors = []
    branches = [(f"{v_path}.{key}[{i}]", b) for key in ("allOf", "anyOf", "oneOf") for i, b in
                enumerate(validation.get(key, []))]
    if isinstance(validation.get("not"), dict):
        branches.append((f"{v_path}.not", validation["not"]))
    for path, branch in branches:
        errors += _nested_completeness(structural, branch, s_path, path)
    return errors


def _nested_completeness(structural: Schema | None, nested: Schema, s_path: str, v_path: str) -> list[str]:
    if structural is None:
        return [f"{s_path}: Required value: because it is defined in {v_path}"]
    errors = _completeness(structural, nested, s_path, v_path)
    if isinstance(nested.get("items"), dict):
        items = structural.get("items") if isinstance(structural.get("items"), dict) else None
        errors += _nested_completeness(items, nested["items"], f"{s_path}.items", f"{v_path}.items")
    for name, prop in nested.get("properties", {}).items():
        errors += _nested_completeness(structural.get("properties", {}).get(name), prop,
                                       f"{s_path}.properties[{name}]", f"{v_path}.properties[{name}]")
    return errors


# --- pkg/apiserver/schema/defaulting/validation.go, prune.go ----------------------------------------------------

def pruned(value: Any, node: Schema) -> Any:
    """`pruning.Prune`: `value` without the fields `node` does not specify (kept under preserve-unknown-fields)."""
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        keep_unknown = node.get("x-kubernetes-preserve-unknown-fields") or extra is True
        result = {}
        for key, item in value.items():
            if key in props:
                result[key] = pruned(item, props[key])
            elif isinstance(extra, dict):
                result[key] = pruned(item, extra)
            elif keep_unknown:
                result[key] = item
        return result
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [pruned(item, node["items"]) for item in value]
    return value


def _default_errors(node: Schema, path: str, in_meta: bool, root: bool = False) -> list[str]:
    """`ValidateDefaults`: a default passes its node's schema and CEL rules and is unchanged by pruning."""
    errors = []
    if "default" in node and not in_meta:
        default = node["default"]
        if pruned(copy.deepcopy(default), node) != default:
            errors.append(f"{path}.default: must not have unknown fields")
        bare = {k: v for k, v in node.items() if k != "default"}
        errors += [f"{path}.default: {e}" for e in schema_errors(default, bare)]
        errors += [f"{path}.default: {e}" for e in cel_errors(default, bare, "", default)]
    for name, prop in node.get("properties", {}).items():
        errors += _default_errors(prop, f"{path}.properties[{name}]", in_meta or (root and name in META_FIELDS))
    if isinstance(node.get("items"), dict):
        errors += _default_errors(node["items"], f"{path}.items", in_meta)
    return errors
