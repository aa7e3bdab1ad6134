"""The in-cluster half of the platform as plain manifests: one definition for `pulumi up` and for GitOps.

`pulumi up` applies these through the new cluster's provider (infra/platform.py); `modelplane render` writes the
same list as YAML for Argo CD or Flux. Both call the functions below with the same facts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelplane.api import GROUP, KINDS
from modelplane.api.crd import CRDS_DIR
from modelplane.names import BUILDER_KSA, GKE_SA_ANNOTATION, OPERATOR, SYSTEM_NAMESPACE, WORKLOAD_KSA

PART_OF = {"app.kubernetes.io/part-of": "modelplane"}
OPERATOR_LABELS = {**PART_OF, "app.kubernetes.io/name": OPERATOR}
METADATA_SERVER = ("169.254.169.254/32", "169.254.169.252/32")  # GKE metadata server: Workload Identity tokens
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


@dataclass(frozen=True)
class PlatformFacts:
    """What the in-cluster half needs from the cloud half (the stack's outputs) and the stack config."""

    project: str
    region: str
    bucket: str
    registry: str
    operator_service_account: str
    builder_service_account: str
    gpu_pools: Sequence[dict[str, Any]]
    tenants: Sequence[str]
    operator_image: str
    server_image: str
    notebook_image: str
    builder_image: str
    tenant_gpu_quota: int = 0


def crds(directory: Path = CRDS_DIR) -> list[dict[str, Any]]:
    """The checked-in CRDs (generated from the API types)."""
    return [yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))]


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(PART_OF), **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


PLURALS = [kind.plural for kind in KINDS]
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "patch", "update"]


def operator_rbac() -> list[dict[str, Any]]:
    """What the operator touches, nothing more: its kinds, the children it creates, and what kopf needs."""
    rules = [
        _rule([GROUP], PLURALS, [*READ, "patch", "update"]),
        _rule([GROUP], [f"{p}/status" for p in PLURALS], ["get", "patch", "update"]),
        _rule(["batch"], ["jobs"], [*READ, "create", "delete"]),
        _rule(["apps"], ["deployments", "statefulsets"], [*READ, *WRITE]),
        _rule([""], ["services", "configmaps"], [*READ, *WRITE]),
        _rule([""], ["secrets"], ["get", "create"]),
        _rule([""], ["pods"], READ),
        _rule(["autoscaling"], ["horizontalpodautoscalers"], [*READ, *WRITE]),
        _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "list"]),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], READ),
        _rule([""], ["namespaces"], READ),
    ]
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(OPERATOR),
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": _meta(OPERATOR),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR},
         "subjects": [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": SYSTEM_NAMESPACE}]},
    ]


def user_roles() -> list[dict[str, Any]]:
    """Aggregated into the built-in edit/admin and view roles: whoever may edit a namespace may use modelplane."""
    def role(name: str, verbs: list[str], *aggregate_to: str) -> dict[str, Any]:
        labels = {f"rbac.authorization.k8s.io/aggregate-to-{target}": "true" for target in aggregate_to}
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {**PART_OF, **labels}},
                "rules": [_rule([GROUP], PLURALS, verbs)]}

    return [role("modelplane-edit", [*READ, *WRITE], "edit", "admin"), role("modelplane-view", READ, "view")]


def operator_config(facts: PlatformFacts) -> dict[str, Any]:
    data = {
        "MODELPLANE_PROJECT": facts.project,
        "MODELPLANE_REGION": facts.region,
        "MODELPLANE_BUCKET": facts.bucket,
        "MODELPLANE_REGISTRY": facts.registry,
        "MODELPLANE_GPU_POOLS": json.dumps(list(facts.gpu_pools), sort_keys=True),
        "MODELPLANE_NAMESPACES": ",".join(facts.tenants),
        "MODELPLANE_WORKLOAD_KSA": WORKLOAD_KSA,
        "MODELPLANE_BUILDER_KSA": BUILDER_KSA,
        "MODELPLANE_SERVER_IMAGE": facts.server_image,
        "MODELPLANE_NOTEBOOK_IMAGE": facts.notebook_image,
        "MODELPLANE_BUILDER_IMAGE": facts.builder_image,
        "GOOGLE_CLOUD_PROJECT": facts.project,
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(OPERATOR, SYSTEM_NAMESPACE), "data": data}


def operator_deployment(facts: PlatformFacts) -> dict[str, Any]:
    container = {
        "name": "operator",
        "image": facts.operator_image,
        "envFrom": [{"configMapRef": {"name": OPERATOR}}],
        "ports": [{"name": "health", "containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 30,
                          "timeoutSeconds": 5, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(OPERATOR, SYSTEM_NAMESPACE),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # never two operators at once
            "selector": {"matchLabels": {"app.kubernetes.io/name": OPERATOR}},
            "template": {
                "metadata": {"labels": OPERATOR_LABELS},
                "spec": {
                    "serviceAccountName": OPERATOR,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "nodeSelector": {"cloud.google.com/gke-nodepool": "system"},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def system(facts: PlatformFacts) -> list[dict[str, Any]]:
    """The operator and what it runs with, in modelplane-system."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(SYSTEM_NAMESPACE, labels={
        **PART_OF, "pod-security.kubernetes.io/enforce": "restricted"})}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(
        OPERATOR, SYSTEM_NAMESPACE, annotations={GKE_SA_ANNOTATION: facts.operator_service_account})}
    return [namespace, account, *operator_rbac(), *user_roles(), operator_config(facts), operator_deployment(facts)]


def network_policy(namespace: str) -> dict[str, Any]:
    """Deny by default; allow the namespace's own traffic, DNS, the metadata server, and the internet."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta("modelplane-default-deny", namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [
                {"to": [{"podSelector": {}}]},
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": cidr}} for cidr in METADATA_SERVER]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
                 "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 80}]},
            ],
        },
    }


def tenant(facts: PlatformFacts, namespace: str) -> list[dict[str, Any]]:
    """A namespace for ML users: its service accounts, its network policy and (when configured) a GPU quota."""
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace, labels={
            **PART_OF, "modelplane.dev/tenant": "true", "pod-security.kubernetes.io/enforce": "baseline"})},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(WORKLOAD_KSA, namespace)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(
            BUILDER_KSA, namespace, annotations={GKE_SA_ANNOTATION: facts.builder_service_account})},
        network_policy(namespace),
    ]
    if facts.tenant_gpu_quota:
        manifests.append({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta("modelplane-gpus", namespace),
                          "spec": {"hard": {"requests.nvidia.com/gpu": str(facts.tenant_gpu_quota)}}})
    return manifests


def tenants(facts: PlatformFacts) -> list[dict[str, Any]]:
    return [manifest for namespace in facts.tenants for manifest in tenant(facts, namespace)]


def all_manifests(facts: PlatformFacts) -> dict[str, list[dict[str, Any]]]:
    """Every in-cluster object, in apply order: CRDs, then the system, then the tenants."""
    return {"crds": crds(), "system": system(facts), "tenants": tenants(facts)}
