"""The operator's RBAC as rendered (modelplane.deploy from operator/access.py): namespaced, nothing cluster-wide, no
Secret ever read, nothing outside the tenants and the build namespace. The operator tests check every request the
operator makes against the same manifests (tests/support/kube.py)."""

import dataclasses
import importlib
from typing import Any

import pytest

from modelplane.deploy import all_manifests, tenant
from modelplane.names import BUILD_NAMESPACE, SYSTEM_NAMESPACE
from modelplane.operator.access import GRANTS, Scope, rules
from tests.support.facts import DEV_PLATFORM, OPERATOR_USER
from tests.support.rbac import Attributes, authorize

TENANTS = ["ml", "research"]
TWO_TENANTS = dataclasses.replace(DEV_PLATFORM, tenants=TENANTS,
                                  builder_service_accounts={t: f"b-{t}@p.iam.gserviceaccount.com" for t in TENANTS})
RENDERED = [m for group in all_manifests(TWO_TENANTS).values() for m in group]
READS = {"get", "list", "watch", "*"}


def resolves(dotted: str) -> bool:
    """`a.b.C.d` names something importable: a module, then attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute, None)
        return found is not None
    return False


def test_every_grant_names_code_that_makes_its_calls() -> None:
    assert [used for grant in GRANTS for used in grant.used_by if not resolves(used)] == []
    assert all(grant.scopes and grant.verbs and grant.resources for grant in GRANTS)


def test_nothing_is_granted_cluster_wide() -> None:
    assert [m["metadata"]["name"] for m in RENDERED if m["kind"] == "ClusterRoleBinding"] == []
    assert not authorize(RENDERED, OPERATOR_USER, Attributes("list", "", "namespaces"))
    assert not authorize(RENDERED, OPERATOR_USER, Attributes("list", "apiextensions.k8s.io",
                                                             "customresourcedefinitions"))
    assert not authorize(RENDERED, OPERATOR_USER, Attributes("watch", "batch", "jobs"))  # all namespaces


def test_bindings_only_in_the_tenants_and_the_build_namespace() -> None:
    namespaces = {m["metadata"]["namespace"] for m in RENDERED if m["kind"] == "RoleBinding"}
    assert namespaces == {*TENANTS, BUILD_NAMESPACE}
    assert {m["metadata"]["namespace"]: m["rules"] for m in RENDERED if m["kind"] == "Role"} == {
        "ml": rules(Scope.TENANT), "research": rules(Scope.TENANT), BUILD_NAMESPACE: rules(Scope.BUILD)}
    # A tenant's Role comes with the tenant: adding or removing one grants or revokes with it.
    assert [m["kind"] for m in tenant(DEV_PLATFORM, "ml") if m["kind"] in ("Role", "RoleBinding")] == [
        "Role", "RoleBinding"]


def test_no_rule_anywhere_reads_secrets() -> None:
    def covers_secrets(rule: dict[str, Any]) -> bool:
        return bool({"", "*"} & set(rule["apiGroups"]) and {"secrets", "*"} & set(rule["resources"]))

    secret_rules = [rule for m in RENDERED if m["kind"] in ("Role", "ClusterRole") for rule in m.get("rules", [])
                    if covers_secrets(rule)]
    assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}] * len(TENANTS)
    assert not [rule for rule in secret_rules if READS & set(rule["verbs"])]


@pytest.mark.parametrize(("attributes", "allowed"), [
    (Attributes("create", "batch", "jobs", namespace="ml"), True),
    (Attributes("create", "batch", "jobs", namespace="research"), True),
    (Attributes("create", "batch", "jobs", namespace=BUILD_NAMESPACE), True),
    (Attributes("create", "batch", "jobs", namespace="default"), False),
    (Attributes("create", "batch", "jobs", namespace="kube-system"), False),
    (Attributes("list", "modelplane.dev", "models", namespace="default"), False),
    (Attributes("create", "", "events", namespace=SYSTEM_NAMESPACE), False),
    (Attributes("get", "", "secrets", namespace="ml", name="notebook-nb-token"), False),
    (Attributes("create", "", "secrets", namespace=BUILD_NAMESPACE), False),
    (Attributes("create", "apps", "deployments", namespace=BUILD_NAMESPACE), False),
    (Attributes("update", "apps", "deployments", namespace="ml", name="s"), False),
], ids=str)
def test_the_operator_may_act_only_where_it_works(attributes: Attributes, allowed: bool) -> None:
    assert authorize(RENDERED, OPERATOR_USER, attributes) is allowed


def test_the_operators_namespace_denies_ingress_and_allows_only_what_it_calls() -> None:
    policies = {m["metadata"]["name"]: m for m in RENDERED
                if m["kind"] == "NetworkPolicy" and m["metadata"]["namespace"] == SYSTEM_NAMESPACE}
    # Beside the default deny, only managed Prometheus' scrapes of the metrics port (tests/plan/infra/test_scraping.py).
    assert set(policies) == {"modelplane-default-deny", "modelplane-operator-metrics"}
    spec = policies["modelplane-default-deny"]["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == []  # the kubelet's probes come from the node, which a policy never blocks
    ports = {(p["protocol"], p["port"]) for rule in spec["egress"] for p in rule.get("ports", [])}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 443)}  # DNS, then HTTPS only: no plain HTTP
    (https,) = [rule for rule in spec["egress"] if {"protocol": "TCP", "port": 443} in rule.get("ports", [])]
    assert https["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]  # the API server's private endpoint and Google APIs
    unported = [peer for rule in spec["egress"] if "ports" not in rule for peer in rule["to"]]
    assert unported == [{"ipBlock": {"cidr": "169.254.169.254/32"}}, {"ipBlock": {"cidr": "169.254.169.252/32"}}]
    assert {"podSelector": {}} not in [peer for rule in spec["egress"] for peer in rule["to"]]


def test_workload_service_accounts_mount_no_token() -> None:
    accounts = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in RENDERED
                if m["kind"] == "ServiceAccount"}
    assert all(accounts[ns, "modelplane-workload"]["automountServiceAccountToken"] is False for ns in TENANTS)
    operator = accounts[SYSTEM_NAMESPACE, "modelplane-operator"]
    assert "automountServiceAccountToken" not in operator  # the operator calls the API: it keeps its token
