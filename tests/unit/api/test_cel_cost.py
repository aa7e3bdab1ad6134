"""Every CEL rule of every CRD fits the API server's cost budgets, and the estimate refuses unbounded reads."""

from typing import Any

import pytest

from tests.support.apiserver import crd_schemas
from tests.support.celcost import PER_CALL_LIMIT, cost_problems, rule_costs

Schema = dict[str, Any]


@pytest.mark.parametrize("kind", sorted(crd_schemas()))
def test_every_rule_fits_the_budgets(kind: str) -> None:
    schema = crd_schemas()[kind]
    assert cost_problems(schema) == []
    assert all(cost.cost <= PER_CALL_LIMIT for cost in rule_costs(schema))


def with_rule(node: Schema, rule: str) -> Schema:
    return {"type": "object", "properties": {"x": {**node, "x-kubernetes-validations": [{"rule": rule,
                                                                                         "message": "m"}]}}}


STRING = {"type": "string"}
BOUNDED_STRING = {"type": "string", "maxLength": 64}


@pytest.mark.parametrize(("schema", "expected"), [
    (with_rule(STRING, "self.matches('^[a-z]+$')"), "matches() reads an unbounded value"),
    (with_rule({"type": "array", "items": BOUNDED_STRING}, "self.all(s, s.size() > 0)"), "all() reads an unbounded"),
    (with_rule({"type": "array", "maxItems": 8, "items": STRING}, "self.all(s, s.contains('x'))"),
     "contains() reads an unbounded value"),
    (with_rule({"type": "object", "additionalProperties": BOUNDED_STRING}, "self.all(k, self[k] != '')"),
     "all() reads an unbounded"),
    (with_rule({"type": "object", "maxProperties": 8, "additionalProperties": BOUNDED_STRING},
               "self.all(k, k.matches('^[a-z]+$'))"), "matches() reads an unbounded map key"),
    (with_rule({"x-kubernetes-preserve-unknown-fields": True}, "type(self) == string"), "cannot compile"),
    (with_rule({"type": "array", "maxItems": 100000, "items": {"type": "string", "maxLength": 1024}},
               "self.all(s, s.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$'))"), "> PerCallLimit"),
], ids=["string", "list", "list-items", "map", "map-keys", "untyped", "too-costly"])
def test_estimate_refuses_unbounded_reads(schema: Schema, expected: str) -> None:
    problems = cost_problems(schema)
    assert any(expected in problem for problem in problems), problems


def test_a_size_guard_bounds_map_keys_and_the_root_name_is_capped() -> None:
    keyed = with_rule({"type": "object", "maxProperties": 8, "additionalProperties": BOUNDED_STRING},
                      "self.all(k, k.size() <= 64 && k.matches('^[a-z]+$'))")
    assert cost_problems(keyed) == []
    named = {"type": "object", "x-kubernetes-validations": [{"rule": "self.metadata.name.matches('^[a-z]+$')"}]}
    assert cost_problems(named) == []  # apiextensions model/schemas.go caps metadata.name at 253 for CEL
