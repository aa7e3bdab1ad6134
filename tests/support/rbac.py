"""RBAC as the API server's authorizer applies it, for checking that a role covers the requests a client made.

Ported from k8s.io/kubernetes `plugin/pkg/auth/authorizer/rbac` (`RuleAllows`: apiGroups, resources with
subresources as `resource/subresource`, verbs, `*` wildcards) and the request-info resolver in k8s.io/apiserver
`pkg/endpoints/request/requestinfo.go` (GET of a collection is `list`, `?watch=true` is `watch`, PATCH is `patch`,
PUT `update`, POST `create`, DELETE `delete`). Not ported: resourceNames, nonResourceURLs, aggregation, and the
namespace scoping of RoleBindings (the operator's role is a ClusterRole).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kmock._internal import rendering

Rule = dict[str, Any]
_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def verb(request: rendering.Request) -> str:
    method = request.method.value.upper()
    if method != "GET":
        return _VERBS[method]
    if request.params.get("watch") in ("true", "1"):
        return "watch"
    return "get" if request.name else "list"


def allows(rules: Iterable[Rule], verb_: str, group: str, resource: str) -> bool:
    def matches(values: list[str], value: str) -> bool:
        return "*" in values or value in values

    return any(matches(rule.get("apiGroups", []), group) and matches(rule.get("resources", []), resource)
               and matches(rule.get("verbs", []), verb_) for rule in rules)


def denied(rules: list[Rule], requests: Iterable[rendering.Request]) -> list[str]:
    """The requests to Kubernetes resources that `rules` would not allow, as `verb group/resource`."""
    refused = set()
    for request in requests:
        if request.resource is None or not request.resource.plural:
            continue  # discovery (/api, /apis/<group>/<version>, /version): allowed to every authenticated user
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        if not allows(rules, verb(request), request.resource.group or "", resource):
            refused.add(f"{verb(request)} {request.resource.group or 'core'}/{resource}")
    return sorted(refused)
