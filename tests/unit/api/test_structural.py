"""The generated CRDs are structural as the API server judges it, and the port refuses what the API server refuses.

Each refusal below cites the upstream function (kubernetes/apiextensions-apiserver) whose rule it exercises.
"""

from typing import Any

import pytest

from modelplane.api.common import QUANTITY
from tests.support.apiserver import admit, crd_schemas, schema_errors
from tests.support.structural import structural_errors

Schema = dict[str, Any]


@pytest.mark.parametrize("kind", sorted(crd_schemas()))
def test_generated_crd_is_structural(kind: str) -> None:
    assert structural_errors(crd_schemas()[kind]) == []


def root(**properties: Schema) -> Schema:
    return {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                             "metadata": {"type": "object"}, **properties}}


def refusals(schema: Schema) -> list[str]:
    return structural_errors(schema, status_subresource=False)


OLD_QUANTITY = {"x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string", "pattern": QUANTITY, "maxLength": 64}]}


@pytest.mark.parametrize(("schema", "expected"), [
    # validateNestedValueValidation: `type` inside a junctor, unless isIntOrStringAnyOfPattern matches exactly
    # [{type: integer}, {type: string}]; the old Quantity added pattern/maxLength to the string branch.
    (root(cpu=OLD_QUANTITY), "properties[cpu].anyOf[0].type: Forbidden: must be empty to be structural"),
    (root(cpu={"anyOf": [{"type": "integer"}, {"type": "string"}]}),
     "properties[cpu].type: Required value: must not be empty for specified object fields"),
    # validateStructuralInvariants: a specified field needs a type (unless int-or-string or preserve-unknown-fields).
    (root(spec={"type": "object", "properties": {"image": {"description": "untyped"}}}),
     "properties[spec].properties[image].type: Required value: must not be empty for specified object fields"),
    (root(tags={"type": "array", "items": {"maxLength": 3}}),
     "properties[tags].items.type: Required value: must not be empty for specified array items"),
    (root(tags={"type": "array"}), "properties[tags].items: Required value: must be specified"),
    # validateNestedValueValidation: no description, default, nullable or additionalProperties in a junctor.
    (root(x={"type": "string", "anyOf": [{"description": "d", "pattern": "a"}]}),
     "properties[x].anyOf[0].description: Forbidden: must be empty to be structural"),
    (root(x={"type": "string", "allOf": [{"default": "a"}]}),
     "properties[x].allOf[0].default: Forbidden: must be undefined to be structural"),
    (root(x={"type": "object", "additionalProperties": {"type": "string"},
             "not": {"additionalProperties": {"maxLength": 1}}}),
     "properties[x].not.additionalProperties: Forbidden: must be undefined to be structural"),
    (root(x={"type": "string", "oneOf": [{"x-kubernetes-validations": [{"rule": "true"}]}]}),
     "properties[x].oneOf[0].x-kubernetes-validations: Forbidden: must be empty to be structural"),
    # validateStructuralCompleteness: a junctor may only name properties the structural part specifies (upstream
    # walks the root's junctors and what they nest).
    ({**root(), "anyOf": [{"required": ["kind"]}, {"properties": {"spec": {"required": ["a"]}}}]},
     "openAPIV3Schema.properties[spec]: Required value: because it is defined in openAPIV3Schema.anyOf[1]"),
    # validateStructuralMetadataInvariants: root metadata restricts only name and generateName.
    ({**root(), "properties": {**root()["properties"], "metadata": {
        "type": "object", "properties": {"name": {"type": "string"}, "labels": {"type": "object"}}}}},
     "properties[metadata]: Forbidden: must not specify anything other than name and generateName"),
    # validateStructuralInvariants: kind and apiVersion are strings at the root.
    ({**root(), "properties": {**root()["properties"], "kind": {"type": "integer"}}},
     "properties[kind].type: must be string"),
    # validateStructuralInvariants: no additionalProperties at the root.
    ({"type": "object", "additionalProperties": {"type": "string"}},
     "additionalProperties: Forbidden: must not be used at the root"),
    # validateExtensions: int-or-string excludes preserve-unknown-fields.
    (root(x={"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}),
     "properties[x].x-kubernetes-preserve-unknown-fields: must be false if x-kubernetes-int-or-string is true"),
    # ValidateCustomResourceDefinitionOpenAPISchema: properties and additionalProperties are mutually exclusive.
    (root(x={"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}),
     "properties[x].additionalProperties: additionalProperties and properties are mutual exclusive"),
    # ... list-type map needs keys that are required or defaulted scalar properties of object items.
    (root(x={"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
             "items": {"type": "object", "properties": {"type": {"type": "string"}}}}),
     "properties[x].items.properties[type].default: this property is in x-kubernetes-list-map-keys"),
    (root(x={"type": "string", "x-kubernetes-list-type": "set"}),
     "properties[x].type: must be array if x-kubernetes-list-type is specified"),
    # ... no defaults in top-level metadata (specStandardValidatorV3.validate with withForbiddenDefaults).
    ({**root(), "properties": {**root()["properties"], "apiVersion": {"type": "string", "default": "v1"}}},
     "properties[apiVersion].default: must not be set in top-level metadata"),
    # specStandardValidatorV3.validate: no $ref.
    (root(x={"$ref": "#/definitions/x"}), "properties[x].$ref: $ref is not supported"),
    # ValidateDefaults: a default must pass its schema and survive pruning unchanged.
    (root(x={"type": "string", "maxLength": 2, "default": "abc"}), "properties[x].default: <root>: 'abc' is too long"),
    (root(x={"type": "object", "properties": {"a": {"type": "string"}}, "default": {"b": "1"}}),
     "properties[x].default: must not have unknown fields"),
], ids=["old-quantity", "int-or-string-anyof-without-extension", "untyped-property", "untyped-items",
        "array-without-items", "description-in-anyof", "default-in-allof", "additionalProperties-in-not",
        "cel-in-oneof", "junctor-names-unknown-property", "metadata-with-labels", "kind-not-string",
        "additionalProperties-at-root", "int-or-string-and-preserve", "properties-and-additionalProperties",
        "list-map-key-without-default", "list-type-on-string", "default-in-metadata", "ref",
        "default-fails-schema", "default-unpruned"])
def test_port_refuses_what_the_api_server_refuses(schema: Schema, expected: str) -> None:
    errors = refusals(schema)
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize("schema", [
    root(x={"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}),
    root(x={"x-kubernetes-int-or-string": True, "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]},
                                                          {"pattern": "^[0-9]+%?$"}]}),
    root(x={"x-kubernetes-int-or-string": True, "pattern": QUANTITY}),  # Kubernetes' own Quantity
    {**root(), "properties": {**root()["properties"], "metadata": {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 40}}}}},
], ids=["int-or-string-anyof", "int-or-string-allof", "int-or-string-pattern-beside", "metadata-name-only"])
def test_port_accepts_the_forms_upstream_allows(schema: Schema) -> None:
    """isIntOrStringAnyOfPattern / isIntOrStringAllOfPattern, and name restrictions in root metadata."""
    assert refusals(schema) == []


def test_status_subresource_limits_the_root() -> None:
    """validateCustomResourceDefinitionValidation: with /status only allowedFieldsAtRootSchema at the root."""
    assert any("allowed at the root" in e for e in structural_errors({**root(), "anyOf": [{"required": ["a"]}]}))


@pytest.mark.parametrize(("cpu", "accepted"), [
    ("500m", True), ("16Gi", True), (4, True), (0.5, True), ("1e3", True),
    ("four", False), ("", False), (0, False), (-1, False), (True, False), ({"cores": 4}, False), ([1], False),
    ("1" * 65, False),
])
def test_quantity_takes_numbers_and_quantity_strings(cpu: Any, accepted: bool) -> None:
    obj = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "metadata": {"name": "m"},
           "spec": {"image": "loader:1", "resources": {"cpu": cpu}}}
    try:
        admit(obj)
    except Exception as refused:
        assert not accepted, refused
    else:
        assert accepted


def test_the_api_server_emulator_types_int_or_string() -> None:
    """ConvertJSONSchemaPropsWithPostProcess types int-or-string nodes [integer, string]: a float is refused."""
    node = {"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": True}}}
    assert schema_errors({"port": 8080}, node) == [] and schema_errors({"port": "http"}, node) == []
    assert schema_errors({"port": 0.5}, node) != []
