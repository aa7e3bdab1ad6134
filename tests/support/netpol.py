"""NetworkPolicy ingress, for asking a rendered set of policies who may reach a pod on a port.

Ported from the networking/v1 API reference (kubernetes.io/docs/reference/kubernetes-api/policy-resources/
network-policy-v1):
- NetworkPolicySpec.ingress: traffic reaches a pod if no NetworkPolicy selects the pod for Ingress, or if it matches
  at least one ingress rule across all the policies whose podSelector matches the pod (so policies add up);
- policyTypes: when absent, Ingress is always among them;
- NetworkPolicyIngressRule: traffic must match both `from` and `ports`; either one empty or missing matches all;
- NetworkPolicyPeer: a podSelector alone selects pods in the policy's own namespace; a namespaceSelector alone every
  pod of the namespaces it selects; both together, the pods matching podSelector in those namespaces;
- NetworkPolicyPort: `protocol` defaults to TCP; `port` missing matches every port; `endPort` makes a range;
- LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) all hold; `{}` selects all.
Not ported: ipBlock peers and named ports (the policies this checks admit pods by selector, on port numbers), egress
(the source's own namespace's policies), and traffic from the pod's node, which is always allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


def namespace_labels(name: str, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """A namespace's labels as the API server stores them: with `kubernetes.io/metadata.name`, which the control
    plane sets, immutably, on every namespace (kubernetes.io/docs/reference/labels-annotations-taints)."""
    return {**(labels or {}), "kubernetes.io/metadata.name": name}


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector matches `labels`."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for requirement in selector.get("matchExpressions", []):
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values", [])
        matched = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                   "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not matched:
            return False
    return True


def _peer_admits(peer: Mapping[str, Any], policy_namespace: str, source: Pod,
                 namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    if "ipBlock" in peer:
        raise NotImplementedError("ipBlock peers are not ported")
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], namespaces[source.namespace])
    else:
        in_namespace = source.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), source.labels)


def _port_admits(entry: Mapping[str, Any], port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True
    if not isinstance(entry["port"], int):
        raise NotImplementedError("named ports are not ported")
    return bool(entry["port"] <= port <= entry.get("endPort", entry["port"]))


def _applies_to_ingress(policy: Mapping[str, Any]) -> bool:
    return "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])


def ingress_allowed(policies: Iterable[Mapping[str, Any]], namespaces: Mapping[str, Mapping[str, str]],
                    source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `target` on `port`, by the NetworkPolicies of `target`'s namespace
    (`namespaces`: each namespace's labels, which namespaceSelectors read)."""
    isolating = [p for p in policies if p["metadata"]["namespace"] == target.namespace and _applies_to_ingress(p)
                 and selects(p["spec"].get("podSelector", {}), target.labels)]
    if not isolating:
        return True
    return any(
        (not rule.get("from") or any(_peer_admits(peer, policy["metadata"]["namespace"], source, namespaces)
                                     for peer in rule["from"]))
        and (not rule.get("ports") or any(_port_admits(entry, port, protocol) for entry in rule["ports"]))
        for policy in isolating for rule in policy["spec"].get("ingress", []))
