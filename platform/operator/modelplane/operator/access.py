"""What the operator may do in the Kubernetes API, per namespace scope: the one source of its RBAC.

deploy.py renders a Role and a RoleBinding from this table in every tenant namespace (`deploy.operator_access`) and
in the build namespace, and nowhere else: the operator cannot touch a namespace that is not one of them. Each row
names the code that makes its calls (`used_by`, dotted names a test resolves), and the operator tests check every
request the operator makes against the rendered Roles (tests/support/kube.py), so a verb the code needs and the
table lacks fails a test, and a row whose code is gone is visible.

- TENANT: the namespaces in MODELPLANE_NAMESPACES: the users' objects and the children made for them.
- BUILD: BUILD_NAMESPACE: build Jobs, their pods (a failed build's log tail) and events (pods it was refused).

Nothing in modelplane-system and nothing cluster-wide, because:
- the operator's informers watch (handlers.watches) each kind in each namespace it serves, and in the build
  namespace only Jobs, the only thing of it there; no discovery, no peering, no Namespace or CRD watch (the CRDs
  exist before the operator starts: they are applied first, deploy.all_manifests; a kind not served yet is listed
  again until it is, informer.py).

Secrets are never read: the notebook token is created once (kube.CREATE_ONLY: a 409 means it exists), the kubelet
hands it to the pod, and users read it with their own rights. Server-side apply needs `create` as well as `patch`
when the child does not exist yet (the API server authorizes that as a create: k8s.io/apiserver
endpoints/handlers/patch.go). `update` (PUT) is never used: kube.py writes with PATCH only. Setting
`blockOwnerDeletion` on children would also need `update` on `<kind>/finalizers` under the
OwnerReferencesPermissionEnforcement admission plugin, which GKE does not enable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from modelplane.api import GROUP, KINDS


class Scope(enum.Enum):
    TENANT = "tenant"
    BUILD = "build"


@dataclass(frozen=True)
class Grant:
    """`verbs` on `resources` of one API group, in the scopes where `used_by` makes these calls."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    scopes: frozenset[Scope]
    used_by: tuple[str, ...]

    def rule(self) -> dict[str, Any]:
        return {"apiGroups": [self.group], "resources": list(self.resources), "verbs": list(self.verbs)}


TENANT, BOTH = frozenset({Scope.TENANT}), frozenset({Scope.TENANT, Scope.BUILD})
PLURALS = tuple(kind.plural for kind in KINDS if not kind.record)  # the kinds the operator reconciles
RECORDS = tuple(kind.plural for kind in KINDS if kind.record)  # the kinds it writes once (ModelVersion)
_KUBE, _HANDLERS = "modelplane.operator.kube.Kube", "modelplane.operator.handlers"

GRANTS: tuple[Grant, ...] = (
    # The custom resources: the informers, the worker's reads, the data finalizer and status.
    Grant(GROUP, PLURALS, ("list", "watch"), TENANT, (f"{_HANDLERS}.watches",)),
    Grant(GROUP, PLURALS, ("get",), TENANT, (f"{_KUBE}.get_object",)),
    Grant(GROUP, PLURALS, ("patch",), TENANT, (f"{_KUBE}.patch_finalizers", f"{_KUBE}.patch_annotations")),
    Grant(GROUP, tuple(f"{plural}/status" for plural in PLURALS), ("patch",), TENANT, (f"{_KUBE}.patch_status",)),
    # Children. Jobs: runs in the tenant's namespace, builds in the build namespace; created once, never changed.
    Grant("batch", ("jobs",), ("list", "watch"), BOTH, (f"{_HANDLERS}.watches",)),
    Grant("batch", ("jobs",), ("get", "create"), BOTH, (f"{_KUBE}.job", f"{_KUBE}.apply")),
    # JobSets: multi-node training runs, in the tenant's namespace; created once, never changed.
    Grant("jobset.x-k8s.io", ("jobsets",), ("list", "watch"), TENANT, (f"{_HANDLERS}.watches",)),
    Grant("jobset.x-k8s.io", ("jobsets",), ("get", "create"), TENANT, (f"{_KUBE}.jobset", f"{_KUBE}.apply")),
    Grant("apps", ("deployments", "statefulsets"), ("list", "watch"), TENANT, (f"{_HANDLERS}.watches",)),
    Grant("apps", ("deployments", "statefulsets"), ("get",), TENANT, (f"{_KUBE}.deployment", f"{_KUBE}.stateful_set")),
    Grant("apps", ("deployments", "statefulsets"), ("create", "patch"), TENANT, (f"{_KUBE}.apply",)),
    Grant("", ("services", "configmaps"), ("create", "patch"), TENANT, (f"{_KUBE}.apply",)),
    Grant("autoscaling", ("horizontalpodautoscalers",), ("create", "patch", "delete"), TENANT,
          (f"{_KUBE}.apply", f"{_KUBE}.delete")),
    Grant("", ("secrets",), ("create",), TENANT, (f"{_KUBE}.apply",)),
    Grant(GROUP, RECORDS, ("create",), TENANT, (f"{_KUBE}.apply",)),
    Grant(GROUP, RECORDS, ("get",), TENANT, (f"{_KUBE}.get_object",)),
    Grant(GROUP, RECORDS, ("list",), TENANT, (f"{_KUBE}.list_objects",)),
    # Why a run or build failed, or got no pods; where a server's or notebook's pods are on their way to ready.
    Grant("", ("pods",), ("list",), BOTH, (f"{_KUBE}.pods",)),
    # Why Kueue holds a run's Job or JobSet: its Workload.
    Grant("kueue.x-k8s.io", ("workloads",), ("list",), TENANT, (f"{_KUBE}.workload_wait",)),
    # And its place in line: Kueue's visibility API (an aggregated API; the subresource of a LocalQueue).
    Grant("visibility.kueue.x-k8s.io", ("localqueues/pendingworkloads",), ("get",), TENANT,
          (f"{_KUBE}.queue_position",)),
    Grant("", ("events",), ("list",), BOTH, (f"{_KUBE}.pod_refusal",)),
    Grant("", ("events",), ("create",), BOTH, (f"{_KUBE}.post_event",)),
)


def rules(scope: Scope) -> list[dict[str, Any]]:
    """The RBAC rules of one scope, a rule per row of the table."""
    return [grant.rule() for grant in GRANTS if scope in grant.scopes]
