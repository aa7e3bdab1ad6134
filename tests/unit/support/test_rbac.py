"""The RBAC port decides as the API server does: request attributes from the URL, and RoleBindings scoped to their
namespace (cases from requestinfo.go and rule.go's VisitRulesFor, see tests/support/rbac.py)."""

from typing import Any

import pytest
from kmock._internal import rendering

from tests.support.rbac import Attributes, User, authorize, checked, request_info, service_account

ALICE = User("alice", ("team", "system:authenticated"))
PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ml/pods", {}, Attributes("list", "", "pods", namespace="ml")),
    ("GET", "/api/v1/namespaces/ml/pods", {"watch": "true"}, Attributes("watch", "", "pods", namespace="ml")),
    ("GET", "/api/v1/namespaces/ml/pods", {"watch": "false"}, Attributes("list", "", "pods", namespace="ml")),
    ("GET", "/api/v1/pods", {"watch": "1"}, Attributes("watch", "", "pods")),
    ("GET", "/api/v1/namespaces/ml", {}, Attributes("get", "", "namespaces", namespace="ml", name="ml")),
    ("GET", "/api/v1/namespaces", {}, Attributes("list", "", "namespaces")),
    ("PUT", "/api/v1/namespaces/ml/finalize", {}, Attributes("update", "", "namespaces", "finalize", "ml", "ml")),
    ("PATCH", "/apis/modelplane.dev/v1alpha1/namespaces/ml/models/m/status", {},
     Attributes("patch", "modelplane.dev", "models", "status", "ml", "m")),
    ("GET", "/apis/apps/v1/watch/namespaces/ml/deployments", {}, Attributes("watch", "apps", "deployments",
                                                                            namespace="ml")),
    ("DELETE", "/apis/batch/v1/namespaces/ml/jobs", {}, Attributes("deletecollection", "batch", "jobs",
                                                                   namespace="ml")),
    ("POST", "/api/v1/namespaces/ml/events", {}, Attributes("create", "", "events", namespace="ml")),
    ("GET", "/apis", {}, None), ("GET", "/apis/apps/v1", {}, None), ("GET", "/api/v1", {}, None),
    ("GET", "/version", {}, None),
])
def test_request_attributes_come_from_the_url(method: str, path: str, query: dict[str, str],
                                              expected: Attributes | None) -> None:
    assert request_info(method, path, query) == expected


def binding(kind: str, role_kind: str, role: str, subject: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    meta = {"name": "b", **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "roleRef": {"kind": role_kind, "name": role}, "subjects": [subject]}


CLUSTER_ROLE = {"kind": "ClusterRole", "metadata": {"name": "pods"}, "rules": [PODS]}
ROLE_IN_A = {"kind": "Role", "metadata": {"name": "pods", "namespace": "a"}, "rules": [PODS]}
USER = {"kind": "User", "name": "alice"}


def test_a_role_binding_grants_only_in_its_namespace() -> None:
    manifests = [CLUSTER_ROLE, binding("RoleBinding", "ClusterRole", "pods", USER, "a")]
    assert authorize(manifests, ALICE, Attributes("get", "", "pods", namespace="a", name="p"))
    assert not authorize(manifests, ALICE, Attributes("get", "", "pods", namespace="b", name="p"))
    assert not authorize(manifests, ALICE, Attributes("list", "", "pods"))  # all namespaces: cluster-wide


def test_a_cluster_role_binding_grants_everywhere() -> None:
    manifests = [CLUSTER_ROLE, binding("ClusterRoleBinding", "ClusterRole", "pods", {"kind": "Group", "name": "team"})]
    assert authorize(manifests, ALICE, Attributes("list", "", "pods"))
    assert authorize(manifests, ALICE, Attributes("get", "", "pods", namespace="b", name="p"))
    assert not authorize(manifests, User("bob", ()), Attributes("list", "", "pods"))


def test_a_role_is_looked_up_in_the_bindings_namespace() -> None:
    manifests = [ROLE_IN_A, binding("RoleBinding", "Role", "pods", USER, "b")]
    assert not authorize(manifests, ALICE, Attributes("get", "", "pods", namespace="b", name="p"))
    assert authorize([*manifests, binding("RoleBinding", "Role", "pods", USER, "a")], ALICE,
                     Attributes("get", "", "pods", namespace="a", name="p"))


def test_a_service_account_subject_defaults_to_the_bindings_namespace() -> None:
    manifests = [ROLE_IN_A, binding("RoleBinding", "Role", "pods", {"kind": "ServiceAccount", "name": "sa"}, "a")]
    attributes = Attributes("get", "", "pods", namespace="a", name="p")
    assert authorize(manifests, service_account("a", "sa"), attributes)
    assert not authorize(manifests, service_account("b", "sa"), attributes)


def test_rules_match_subresources_wildcards_and_names() -> None:
    rules = [{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]},
             {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["c"], "verbs": ["*"]}]
    manifests = [{"kind": "ClusterRole", "metadata": {"name": "r"}, "rules": rules},
                 binding("ClusterRoleBinding", "ClusterRole", "r", USER)]
    assert authorize(manifests, ALICE, Attributes("patch", "apps", "deployments", "status", "a", "d"))
    assert not authorize(manifests, ALICE, Attributes("patch", "apps", "deployments", "", "a", "d"))
    assert authorize(manifests, ALICE, Attributes("delete", "", "configmaps", namespace="a", name="c"))
    assert not authorize(manifests, ALICE, Attributes("delete", "", "configmaps", namespace="a", name="d"))


def test_server_side_apply_also_needs_create() -> None:
    def request(content_type: str) -> rendering.Request:
        return rendering.Request(method="PATCH", url="http://k/apis/apps/v1/namespaces/a/deployments/d",
                                 headers={"content-type": content_type})

    patch = Attributes("patch", "apps", "deployments", namespace="a", name="d")
    assert checked(request("application/merge-patch+json")) == [patch]
    assert checked(request("application/apply-patch+yaml")) == [
        patch, Attributes("create", "apps", "deployments", namespace="a", name="d")]
