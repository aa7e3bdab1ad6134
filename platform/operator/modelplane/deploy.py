"""The in-cluster half of the platform as plain manifests: one definition for `pulumi up` and for GitOps.

`pulumi up` applies these through the new cluster's provider (infra/platform.py); `modelplane render` writes the
same list as YAML for Argo CD or Flux. Both call the functions below with the same facts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelplane.api import GROUP
from modelplane.api.crd import CRDS_DIR
from modelplane.builders.server import PORT as SERVER_PORT
from modelplane.builders.server import SERVER_LABEL
from modelplane.cluster import ClusterFacts
from modelplane.layout import NODE_POOL_LABEL, SYSTEM_POOL, GpuPool
from modelplane.names import (
    BUILD_NAMESPACE,
    CAPTURE_METRICS_PORT,
    CAPTURE_METRICS_PORT_NAME,
    GKE_SA_ANNOTATION,
    METRICS_PORT_NAME,
    OPERATOR,
    OPERATOR_METRICS_PORT,
    SERVER_PORT_NAME,
    SYSTEM_NAMESPACE,
    WORKLOAD_KSA,
    builder_ksa,
)
from modelplane.operator.access import PLURALS, Scope, rules

PART_OF = {"app.kubernetes.io/part-of": "modelplane"}
OPERATOR_LABELS = {**PART_OF, "app.kubernetes.io/name": OPERATOR}
METADATA_SERVER = ("169.254.169.254/32", "169.254.169.252/32")  # GKE metadata server: Workload Identity tokens
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
TENANT_LABEL = "modelplane.dev/tenant"  # on tenant namespaces; tenants' `edit` cannot relabel a namespace
# The Pod Security Standard each namespace enforces. Tenants: `baseline` (their own images, which may need root).
# Builds: `baseline`, which rootless BuildKit under gVisor passes (builders/build.py says why not `restricted`).
SYSTEM_LEVEL, TENANT_LEVEL, BUILD_LEVEL = "restricted", "baseline", "baseline"


@dataclass(frozen=True)
class PlatformFacts:
    """What the in-cluster half needs from the cloud half (the stack's outputs) and the stack config."""

    project: str
    region: str
    bucket: str
    registry: str
    operator_service_account: str
    builder_service_accounts: Mapping[str, str]  # tenant -> the Google service account its builds run as
    gpu_pools: Sequence[GpuPool]
    tenants: Sequence[str]
    operator_image: str
    runtime_image: str  # the capture sidecar's and the monitor's, the one platform image tenant pods may run
    server_image: str
    notebook_image: str
    builder_image: str
    tenant_members: Mapping[str, Sequence[str]] = field(default_factory=dict)  # IAM principals per tenant


def crds(directory: Path = CRDS_DIR) -> list[dict[str, Any]]:
    """The checked-in CRDs (generated from the API types).

    Read with libyaml's safe loader: the pure-Python one took 0.44 s of the offline plan's 3.4 on these five files."""
    return [yaml.load(path.read_text(), Loader=yaml.CSafeLoader) for path in sorted(directory.glob("*.yaml"))]


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(PART_OF), **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "patch", "update"]


def operator_access(namespace: str, scope: Scope = Scope.TENANT) -> list[dict[str, Any]]:
    """The operator's Role in one namespace and its binding, from the permission table (operator/access.py).

    Only RoleBindings, in the tenants' namespaces and the build namespace: no ClusterRoleBinding, so the operator
    can do nothing in any other namespace and nothing cluster-wide (access.py says why it needs nothing there)."""
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(OPERATOR, namespace),
         "rules": rules(scope)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(OPERATOR, namespace),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR},
         "subjects": [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": SYSTEM_NAMESPACE}]},
    ]


def user_roles() -> list[dict[str, Any]]:
    """Aggregated into the built-in edit/admin and view roles: whoever may edit a namespace may use modelplane."""
    def role(name: str, verbs: list[str], *aggregate_to: str) -> dict[str, Any]:
        labels = {f"rbac.authorization.k8s.io/aggregate-to-{target}": "true" for target in aggregate_to}
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {**PART_OF, **labels}},
                "rules": [_rule([GROUP], list(PLURALS), verbs)]}

    return [role("modelplane-edit", [*READ, *WRITE], "edit", "admin"), role("modelplane-view", READ, "view")]


def cluster_facts(facts: PlatformFacts) -> ClusterFacts:
    """What the operator will know of its cluster (modelplane/cluster.py), from the stack's facts."""
    return ClusterFacts(project=facts.project, bucket=facts.bucket, registry=facts.registry,
                        gpu_pools=tuple(facts.gpu_pools),
                        server_image=facts.server_image, notebook_image=facts.notebook_image,
                        builder_image=facts.builder_image, runtime_image=facts.runtime_image)


def operator_config(facts: PlatformFacts) -> dict[str, Any]:
    """The operator's environment: its cluster facts (ClusterFacts.to_env, read back by from_env), the namespaces it
    watches (operator/main.py), and the project Google's client libraries use."""
    data = {**cluster_facts(facts).to_env(), "MODELPLANE_NAMESPACES": ",".join(facts.tenants),
            "GOOGLE_CLOUD_PROJECT": facts.project}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(OPERATOR, SYSTEM_NAMESPACE), "data": data}


def operator_deployment(facts: PlatformFacts) -> dict[str, Any]:
    container = {
        "name": "operator",
        "image": facts.operator_image,
        "envFrom": [{"configMapRef": {"name": OPERATOR}}],
        "ports": [{"name": "health", "containerPort": 8080},
                  {"name": METRICS_PORT_NAME, "containerPort": OPERATOR_METRICS_PORT}],  # scraped: OPERATOR_METRICS
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
                    "nodeSelector": {NODE_POOL_LABEL: SYSTEM_POOL},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _namespace(name: str, level: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(name, labels={**PART_OF, **labels, ENFORCE_LABEL: level})}


def system(facts: PlatformFacts) -> list[dict[str, Any]]:
    """The operator and what it runs with, in modelplane-system, and the namespace it runs image builds in.

    No Role or RoleBinding here: the operator needs nothing in its own namespace (operator/access.py)."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(
        OPERATOR, SYSTEM_NAMESPACE, annotations={GKE_SA_ANNOTATION: facts.operator_service_account})}
    return [_namespace(SYSTEM_NAMESPACE, SYSTEM_LEVEL), account, *user_roles(), operator_config(facts),
            operator_deployment(facts), network_policy(SYSTEM_NAMESPACE, peers=False, internet=HTTPS_ANYWHERE),
            *scraped(SYSTEM_NAMESPACE, OPERATOR_METRICS), *tenant_image_policy(facts.registry, facts.runtime_image),
            *builds()]


TENANT_IMAGES_POLICY = "modelplane-tenant-images"


def tenant_image_policy(registry: str, runtime_image: str) -> list[dict[str, Any]]:
    """Pods in a tenant namespace may not run the platform's images or another tenant's, except the runtime image.

    Nodes pull with one identity that reads every repository of the stack, and a tenant's members may create pods
    (`edit`), so IAM cannot keep tenant A from running tenant B's images: the API server must. A
    ValidatingAdmissionPolicy (GA since Kubernetes 1.30) checks every container of every pod created in a namespace
    labelled as a tenant's (which tenants cannot relabel); the operator refuses the same images earlier, with a
    condition (reconcile/build.py).

    Of the platform repository, the one image a tenant pod may run is `runtime_image`, exactly as the stack names it
    (by digest; offline by its immutable tag): the operator puts it in tenant namespaces as the payload capture
    sidecar and the monitor's Job. It holds no secret and acts with the pod's own identity, so a tenant running it
    gains nothing; any other tag or digest of it, and the operator's image, stay refused.

    On UPDATE, images the pod already ran (`oldObject`'s; null on CREATE) are not judged again: a new runtime image
    changes this policy, and a controller that then updates an older pod (the Job controller removing its tracking
    finalizer, the ReplicaSet controller adopting or releasing it) must not be refused for the image it was admitted
    with. An update that brings in an image (a changed container image, a new ephemeral container) is judged."""
    platform, tenants = json.dumps(f"{registry}/"), json.dumps(f"{registry}-")
    own = f"{tenants} + namespaceObject.metadata.name + '/'"

    def images(pod: str) -> str:
        return (f"((has({pod}.spec.initContainers) ? {pod}.spec.initContainers : []) + {pod}.spec.containers + "
                f"(has({pod}.spec.ephemeralContainers) ? {pod}.spec.ephemeralContainers : [])).map(c, c.image)")

    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": _meta(TENANT_IMAGES_POLICY),
         "spec": {
             "failurePolicy": "Fail",
             "matchConstraints": {"resourceRules": [{
                 "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                 "resources": ["pods", "pods/ephemeralcontainers"]}]},
             "variables": [
                 {"name": "before", "expression": f"oldObject == null ? [] : {images('oldObject')}"},
                 {"name": "foreign", "expression": (
                     f"{images('object')}.filter(i, (i.startsWith({platform}) || i.startsWith({tenants}))"
                     f" && !i.startsWith({own}) && i != {json.dumps(runtime_image)} && !(i in variables.before))")}],
             "validations": [{
                 "expression": "size(variables.foreign) == 0",
                 "messageExpression": (
                     "\"images from the platform's or another tenant's repository may not run here: \" + "
                     f"variables.foreign.join(', ') + \"; use images from \" + {own}"),
                 "reason": "Forbidden"}],
         }},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": _meta(TENANT_IMAGES_POLICY),
         "spec": {"policyName": TENANT_IMAGES_POLICY, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {TENANT_LABEL: "true"}}}}},
    ]


# GKE's managed Prometheus (on in infra/gke/cluster.py) scrapes through its collectors: a DaemonSet's pods in
# gmp-system, each scraping the targets on its own node, labelled app.kubernetes.io/name=collector (prometheus-engine,
# charts/operator/templates/collector.yaml; GKE's self-monitoring PodMonitoring selects them by that label). They run
# on the pod network, not the host's, so a pod that a NetworkPolicy isolates must admit them by name.
COLLECTORS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "collector"}}}
SCRAPE_INTERVAL = "30s"  # GKE's examples' interval; managed Prometheus bills by the sample
MONITORING_API = "monitoring.googleapis.com/v1"


@dataclass(frozen=True)
class MetricsPort:
    """A container port that serves Prometheus metrics. The PodMonitoring names it (GMP then labels the series with
    their container); the NetworkPolicy admits its number, since how a named port resolves when a sidecar declares it
    as an init container differs between network plugins (kubernetes/kubernetes#125285)."""

    name: str
    number: int
    path: str = "/metrics"


@dataclass(frozen=True)
class Scrape:
    """What managed Prometheus scrapes in a namespace: the pods (a label selector) and their metrics ports."""

    name: str
    pods: Mapping[str, Any]
    ports: tuple[MetricsPort, ...]


OPERATOR_METRICS = Scrape("modelplane-operator-metrics", {"matchLabels": {"app.kubernetes.io/name": OPERATOR}},
                          (MetricsPort(METRICS_PORT_NAME, OPERATOR_METRICS_PORT),))
# Every ModelServer's pods: the capture sidecar's payload counts, and the model server's own /metrics on its serving
# port (vLLM's; a server image that serves none there shows as a target that is down, and costs nothing else).
SERVER_METRICS = Scrape("modelplane-server-metrics",
                        {"matchExpressions": [{"key": SERVER_LABEL, "operator": "Exists"}]},
                        (MetricsPort(CAPTURE_METRICS_PORT_NAME, CAPTURE_METRICS_PORT),
                         MetricsPort(SERVER_PORT_NAME, SERVER_PORT)))


def scraped(namespace: str, scrape: Scrape) -> list[dict[str, Any]]:
    """A PodMonitoring that has managed Prometheus scrape `scrape`'s ports, and a NetworkPolicy that admits its
    collectors to those ports of those pods and to nothing else (the namespace's default-deny policy admits no one
    from outside). One description makes both, so what is scraped is what is admitted."""
    monitoring = {
        "apiVersion": MONITORING_API, "kind": "PodMonitoring", "metadata": _meta(scrape.name, namespace),
        "spec": {"selector": copy.deepcopy(dict(scrape.pods)),
                 "endpoints": [{"port": port.name, "path": port.path, "interval": SCRAPE_INTERVAL}
                               for port in scrape.ports]},
    }
    admission = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(scrape.name, namespace),
        "spec": {"podSelector": copy.deepcopy(dict(scrape.pods)), "policyTypes": ["Ingress"],
                 "ingress": [{"from": [copy.deepcopy(COLLECTORS)],
                              "ports": [{"protocol": "TCP", "port": port.number} for port in scrape.ports]}]},
    }
    return [monitoring, admission]


def builds() -> list[dict[str, Any]]:
    """The build namespace: the operator's access (tenants have none), and a policy that isolates builds from the
    cluster (builders/build.py has the threat model). The builders' service accounts come with their tenants."""
    return [_namespace(BUILD_NAMESPACE, BUILD_LEVEL), *operator_access(BUILD_NAMESPACE, Scope.BUILD),
            network_policy(BUILD_NAMESPACE, peers=False)]


# Tenants and builds reach the internet on the web's ports, and nothing private (the VPC, peered networks).
WEB = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
       "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 80}]}
# The operator: HTTPS to any address, private ones included, since that is how the API server is reached (see
# network_policy), and HTTPS only.
HTTPS_ANYWHERE = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}


def network_policy(namespace: str, peers: bool = True, internet: dict[str, Any] = WEB) -> dict[str, Any]:
    """Deny by default; allow DNS, the metadata server, `internet`, and (with `peers`) the namespace's own traffic.

    Builds get no peers: one tenant's build has no business with another's. Nor does the operator's pod, which
    needs no ingress but managed Prometheus's scrapes of its metrics port (admitted apart: `scraped`): its liveness
    probe comes from the kubelet on its node, and traffic from the pod's own node is always allowed
    (kubernetes.io/docs/concepts/services-networking/network-policies: "traffic to and from the node where a Pod is
    running is always allowed"; Cilium, behind GKE Dataplane V2, admits the local host).

    The operator's egress is the API server, Google APIs (GCS, IAM signBlob) over 443, DNS and the metadata server
    (Workload Identity tokens). The API server is the `kubernetes` Service, whose backend is the control plane's
    private endpoint: GKE translates a Service address to its backend before it evaluates a policy (GKE docs, FQDN
    network policies: "GKE translates the Service virtual IP address (VIP) to backend Pod IP addresses before
    evaluating network policy rules"), and that endpoint is a private address in the VPC, assigned when the cluster
    is created and unknown when this is rendered. So the operator may reach 443 on any address, private ones
    included; it may not use plain HTTP or any other port. Narrowing it to the endpoint's /32 needs that address as
    a stack output (infra), which a later change can pass in."""
    own: list[dict[str, Any]] = [{"podSelector": {}}]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta("modelplane-default-deny", namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": own}] if peers else [],
            "egress": [
                *([{"to": own}] if peers else []),
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": cidr}} for cidr in METADATA_SERVER]},
                copy.deepcopy(internet),  # each manifest its own: no rule shared between two policies
            ],
        },
    }


def tenant(facts: PlatformFacts, namespace: str) -> list[dict[str, Any]]:
    """A namespace for ML users: its workload service account, its network policy, the scraping of its model
    servers' metrics, and its builder service account in the build namespace, out of the tenant's reach. Its GPU
    quota is Kueue's, with its LocalQueues (infra/queueing.py)."""
    manifests = [
        _namespace(namespace, TENANT_LEVEL, **{TENANT_LABEL: "true"}),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(WORKLOAD_KSA, namespace),
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(
            builder_ksa(namespace), BUILD_NAMESPACE,
            annotations={GKE_SA_ANNOTATION: facts.builder_service_accounts[namespace]}),
         "automountServiceAccountToken": False},
        network_policy(namespace),
        *scraped(namespace, SERVER_METRICS),
        *operator_access(namespace),
    ]
    members = facts.tenant_members.get(namespace, ())
    if members:
        manifests.append(members_binding(namespace, members))
    return manifests


def members_binding(namespace: str, members: Sequence[str]) -> dict[str, Any]:
    """The tenant's members (`user:` and `group:` IAM principals) get the built-in `edit` role in its namespace, which
    carries modelplane's kinds (user_roles). GKE names a Google user by email; a group by email, once Google Groups
    for RBAC is on (the stack's `rbacSecurityGroup`)."""
    kinds = {"user": "User", "group": "Group"}
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": kinds[member.split(":", 1)[0]],
                 "name": member.split(":", 1)[1]} for member in members]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _meta("modelplane-members", namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": subjects}


def tenants(facts: PlatformFacts) -> list[dict[str, Any]]:
    return [manifest for namespace in facts.tenants for manifest in tenant(facts, namespace)]


def all_manifests(facts: PlatformFacts) -> dict[str, list[dict[str, Any]]]:
    """Every in-cluster object, in apply order: CRDs, then the system, then the tenants."""
    return {"crds": crds(), "system": system(facts), "tenants": tenants(facts)}
