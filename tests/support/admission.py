"""ValidatingAdmissionPolicy evaluation, for checking a rendered policy against the pods it must admit or refuse.

Ported from k8s.io/apiserver `pkg/admission/plugin/policy/validating` as documented for admissionregistration/v1:
the binding's namespaceSelector picks the namespaces; `variables` are evaluated in order and exposed as
`variables.<name>`; every validation must be true, else the request is denied with the validation's
`messageExpression` (or `message`). The CEL is evaluated by cel-python with the activation the API server gives
(`object`, `oldObject`, `namespaceObject`, `variables`) and the one Kubernetes string-list extension the policy uses,
`list.join(separator)`. `oldObject` is the stored object on UPDATE and null on CREATE (admissionregistration/v1
Validation.expression: "'oldObject' - The existing object. The value is null for CREATE requests."). Not ported:
type checking against the OpenAPI schema, `request`, `params`, `matchConditions`, cost limits and audit annotations.
"""

from __future__ import annotations

from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel


def _join(items: Any, separator: Any) -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(str(item) for item in items))


def _evaluate(expression: str, activation: dict[str, Any]) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression), functions={"join": _join}).evaluate(activation)


def selects(binding: dict[str, Any], namespace: dict[str, Any]) -> bool:
    """Whether the binding's namespaceSelector (matchLabels only) selects the namespace."""
    wanted = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
    labels = namespace["metadata"].get("labels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


def review(policy: dict[str, Any], obj: dict[str, Any], namespace: dict[str, Any],
           old: dict[str, Any] | None = None) -> str | None:
    """None when `policy` admits `obj` in `namespace`, created (no `old`) or updated from `old`, else the message the
    API server would answer with."""
    activation: dict[str, Any] = {"object": json_to_cel(obj), "oldObject": json_to_cel(old),
                                  "namespaceObject": json_to_cel(namespace)}
    variables: dict[celtypes.StringType, Any] = {}
    for variable in policy["spec"].get("variables", []):
        activation["variables"] = celtypes.MapType(variables)
        variables[celtypes.StringType(variable["name"])] = _evaluate(variable["expression"], activation)
    activation["variables"] = celtypes.MapType(variables)
    for validation in policy["spec"]["validations"]:
        if not _evaluate(validation["expression"], activation):
            if "messageExpression" in validation:
                return str(_evaluate(validation["messageExpression"], activation))
            return str(validation.get("message", "denied"))
    return None
