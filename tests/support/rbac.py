"""RBAC as the API server's authorizer applies it, for checking that rendered Roles cover the requests a client made.

Ported from Kubernetes (paths in k8s.io/kubernetes unless noted):
- the request attributes from the URL: `NewRequestInfo` in k8s.io/apiserver pkg/endpoints/request/requestinfo.go
  (API prefixes `api` (no group) and `apis`; `namespaces/{ns}/...` scoping, where a request on a Namespace object
  itself is scoped to that namespace; GET without a name is `list`, or `watch` with `?watch` not false/0; DELETE
  without a name is `deletecollection`; the `/watch/` path form);
- which rules apply: `DefaultRuleResolver.VisitRulesFor` in pkg/registry/rbac/validation/rule.go: every
  ClusterRoleBinding whose subjects match, whatever the namespace; then, only for a request in a namespace, the
  RoleBindings of that namespace, a RoleBinding's `Role` looked up in its own namespace. So a RoleBinding never
  grants anything in another namespace, nor a cluster-scoped or all-namespaces request;
- subjects: `appliesToUser` (User by name, Group by the user's groups, ServiceAccount by
  `system:serviceaccount:<ns>:<name>`, its namespace defaulting to the binding's);
- a rule: `RuleAllows` and pkg/apis/rbac/v1/evaluation_helpers.go (`*` in verbs, groups and resources,
  `resource/subresource`, `*/subresource`, resourceNames);
- server-side apply: a PATCH with `application/apply-patch+yaml` that creates the object is authorized as `create`
  too (k8s.io/apiserver pkg/endpoints/handlers/patch.go, `createAuthorizerAttributes`). The API server checks that
  only when the object does not exist; here every apply needs it, since the operator's applies are
  create-or-update by design.

Not ported: nonResourceURLs (discovery and /version are allowed to every authenticated user by the bootstrap
policy, so non-resource requests are not checked), aggregation rules, escalation checks, and the other authorizers
(Node, webhook): this is the RBAC decision alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kmock._internal import rendering

Rule = dict[str, Any]
Manifest = dict[str, Any]
APPLY_PATCH = "application/apply-patch+yaml"
_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


def service_account(namespace: str, name: str) -> User:
    """A service account's user as its token authenticates (serviceaccount.MakeUsername and MakeGroupNames)."""
    return User(f"system:serviceaccount:{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))


@dataclass(frozen=True)
class Attributes:
    """A resource request as the authorizer sees it (authorizer.AttributesRecord); namespace "" is cluster-wide."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{sub} {where}"


def request_info(method: str, path: str, query: dict[str, str]) -> Attributes | None:
    """The request's attributes, or None for a non-resource request (NewRequestInfo)."""
    parts = [part for part in path.strip("/").split("/")] if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return None
    group = ""
    if parts[0] == "apis":
        if len(parts) < 4:
            return None
        group, parts = parts[1], parts[2:]
    else:
        parts = parts[1:]
    parts = parts[1:]  # the version
    if parts[0] in ("proxy", "watch"):
        verb, parts = parts[0], parts[1:]
    else:
        verb = _VERBS.get(method.upper(), "")
    namespace = ""
    if parts and parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in ("status", "finalize"):
            parts = parts[2:]
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    name = parts[1] if len(parts) >= 2 else ""
    resource = parts[0] if parts else ""
    if not name and verb == "get":
        verb = "watch" if "watch" in query and query["watch"].lower() not in ("false", "0") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(verb, group, resource, subresource, namespace, name)


def rule_allows(attributes: Attributes, rule: Rule) -> bool:
    """RuleAllows for a resource request."""
    def matches(values: list[str], value: str) -> bool:
        return "*" in values or value in values

    combined = attributes.resource + (f"/{attributes.subresource}" if attributes.subresource else "")
    resources = rule.get("resources") or []
    resource_matches = matches(resources, combined) or bool(
        attributes.subresource and f"*/{attributes.subresource}" in resources)
    names = rule.get("resourceNames") or []
    return (matches(rule.get("verbs") or [], attributes.verb) and matches(rule.get("apiGroups") or [], attributes.group)
            and resource_matches and (not names or attributes.name in names))


def _applies_to(user: User, subjects: list[dict[str, Any]], namespace: str) -> bool:
    """appliesTo: `namespace` is the binding's ("" for a ClusterRoleBinding)."""
    for subject in subjects:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and user.name == name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            sa_namespace = subject.get("namespace") or namespace
            if sa_namespace and user.name == f"system:serviceaccount:{sa_namespace}:{name}":
                return True
    return False


def _role_rules(manifests: list[Manifest], role_ref: dict[str, Any], binding_namespace: str) -> list[Rule]:
    """GetRoleReferenceRules: a Role in the binding's namespace, or a ClusterRole (a missing role grants nothing)."""
    kind, name = role_ref["kind"], role_ref["name"]
    for manifest in manifests:
        meta = manifest["metadata"]
        if kind in ("Role", "ClusterRole") and manifest["kind"] == kind and meta["name"] == name \
                and (kind == "ClusterRole" or meta.get("namespace") == binding_namespace):
            return list(manifest.get("rules") or [])
    return []


def rules_for(manifests: list[Manifest], user: User, namespace: str) -> Iterator[Rule]:
    """VisitRulesFor: the rules that apply to `user` for a request in `namespace` ("" for cluster-wide)."""
    for binding in manifests:
        if binding["kind"] == "ClusterRoleBinding" and _applies_to(user, binding.get("subjects") or [], ""):
            yield from _role_rules(manifests, binding["roleRef"], "")
    if namespace:
        for binding in manifests:
            if binding["kind"] == "RoleBinding" and binding["metadata"].get("namespace") == namespace \
                    and _applies_to(user, binding.get("subjects") or [], namespace):
                yield from _role_rules(manifests, binding["roleRef"], namespace)


def authorize(manifests: list[Manifest], user: User, attributes: Attributes) -> bool:
    return any(rule_allows(attributes, rule) for rule in rules_for(manifests, user, attributes.namespace))


def checked(request: rendering.Request) -> list[Attributes]:
    """What the authorizer decides for this request: nothing for a non-resource request; an apply also needs
    `create` (see the module docstring)."""
    attributes = request_info(request.method.value, request.url.path, dict(request.params))
    if attributes is None:
        return []
    content_type = next((str(value) for key, value in request.headers.items() if key.lower() == "content-type"), "")
    content_type = content_type.split(";")[0].strip()
    if attributes.verb == "patch" and content_type == APPLY_PATCH:
        return [attributes, Attributes("create", attributes.group, attributes.resource, attributes.subresource,
                                       attributes.namespace, attributes.name)]
    return [attributes]


def denied(manifests: list[Manifest], user: User, requests: Iterable[rendering.Request]) -> list[str]:
    """The requests the RBAC objects in `manifests` would not allow `user`, as `verb group/resource where`."""
    return sorted({str(attributes) for request in requests for attributes in checked(request)
                   if not authorize(manifests, user, attributes)})
