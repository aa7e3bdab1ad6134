"""The NetworkPolicy port follows the API reference's rules for ingress: isolation, peers, ports, selectors."""

from typing import Any

import pytest

from tests.support.netpol import Pod, ingress_allowed, namespace_labels, selects

NAMESPACES = {"db": namespace_labels("db"), "web": namespace_labels("web", {"team": "web"}),
              "other": namespace_labels("other")}
DB = Pod("db", {"role": "db"})


def policy(spec: dict[str, Any], namespace: str = "db") -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


DENY_ALL = policy({"podSelector": {}, "policyTypes": ["Ingress"]})
FROM_WEB = policy({"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
    "from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "fe"}}}],
    "ports": [{"protocol": "TCP", "port": 5432}, {"port": 9000, "endPort": 9010}]}]})


def allowed(policies: list[dict[str, Any]], source: Pod, port: int, protocol: str = "TCP") -> bool:
    return ingress_allowed(policies, NAMESPACES, source, DB, port, protocol)


def test_a_pod_no_policy_selects_is_open() -> None:
    assert allowed([], Pod("other"), 1)
    assert allowed([policy({"podSelector": {"matchLabels": {"role": "cache"}}})], Pod("other"), 1)
    assert allowed([policy({"podSelector": {}, "policyTypes": ["Egress"]})], Pod("other"), 1)


def test_policies_add_up_and_rules_need_both_peer_and_port() -> None:
    web = Pod("web", {"app": "fe"})
    assert not allowed([DENY_ALL], web, 5432)
    assert allowed([DENY_ALL, FROM_WEB], web, 5432) and allowed([DENY_ALL, FROM_WEB], web, 9005)
    assert not allowed([DENY_ALL, FROM_WEB], web, 5433)
    assert not allowed([DENY_ALL, FROM_WEB], web, 5432, "UDP")
    assert not allowed([DENY_ALL, FROM_WEB], Pod("web", {"app": "be"}), 5432)  # both selectors must hold
    assert not allowed([DENY_ALL, FROM_WEB], Pod("other", {"app": "fe"}), 5432)


def test_a_pod_selector_alone_means_the_policys_namespace() -> None:
    same = policy({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})
    assert allowed([same], Pod("db"), 1) and not allowed([same], Pod("web"), 1)
    everyone = policy({"podSelector": {}, "ingress": [{}]})
    assert allowed([everyone], Pod("other"), 1)


@pytest.mark.parametrize(("expression", "labels", "matches"), [
    ({"key": "k", "operator": "In", "values": ["a"]}, {"k": "a"}, True),
    ({"key": "k", "operator": "In", "values": ["a"]}, {}, False),
    ({"key": "k", "operator": "NotIn", "values": ["a"]}, {}, True),
    ({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "a"}, False),
    ({"key": "k", "operator": "Exists"}, {"k": ""}, True),
    ({"key": "k", "operator": "Exists"}, {}, False),
    ({"key": "k", "operator": "DoesNotExist"}, {}, True),
])
def test_label_selector_expressions(expression: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selects({"matchExpressions": [expression]}, labels) is matches


def test_what_is_not_ported_says_so() -> None:
    by_address = policy({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]})
    by_name = policy({"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
    for unported in (by_address, by_name):
        with pytest.raises(NotImplementedError):
            allowed([unported], Pod("web"), 80)
