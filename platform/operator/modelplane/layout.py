"""Where things are: the artifacts bucket's layout and the nodes' scheduling facts, the one home of both.

The stack and the operator must agree on these, and nothing at run time checks that they do: the stack grants each
tenant an IAM condition on a bucket prefix and taints and labels its node pools (infra/), the operator mounts,
writes and deletes under prefixes and tolerates and selects those nodes (builders/, reconcile/). A path the operator
uses outside the prefix IAM grants fails only in a pod, as a permission error; a toleration that misses a taint
leaves a pod Pending. So both halves import them from here, and tests/infra/test_layout.py checks every path the
operator produces for a tenant against the IAM conditions the stack plans.

The bucket: each tenant owns `<tenant>/`, each object of it `<tenant>/<plural>/<name>/` (its object root: what
`onDelete: Delete` removes); build contexts are uploaded under `uploads/<tenant>/`, which only that tenant's builder
reads. A tenant may not be named after a top-level folder (BUCKET_ROOTS). Prefixes end in `/`: `ml/` must not
admit `ml-research/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from modelplane.api.kinds import kind_for
from modelplane.meta import Owner

# --- the artifacts bucket ------------------------------------------------------------------------------------------

UPLOADS_ROOT = "uploads"
UPLOADS_PREFIX = f"{UPLOADS_ROOT}/"  # expires by lifecycle rule (infra/buckets/artifacts.py)
BUCKET_ROOTS = (UPLOADS_ROOT,)
PAYLOADS = "payloads/"  # a ModelServer's captured traffic, under its object root (capture/record.py: the layout inside)


def tenant_prefix(tenant: str) -> str:
    """Everything of the tenant's: what its workloads' identity may read and write."""
    return f"{tenant}/"


def uploads_prefix(tenant: str) -> str:
    """The tenant's build contexts: what its builder's identity may read."""
    return f"{UPLOADS_PREFIX}{tenant}/"


def kind_prefix(tenant: str, kind: str) -> str:
    """`<tenant>/<plural>/`: every object of one kind of the tenant."""
    return f"{tenant_prefix(tenant)}{kind_for(kind).plural}/"


def notebooks_prefix(tenant: str) -> str:
    """Where the tenant's notebook workspaces live: what its members' `kubectl notebook` sync reads and writes."""
    return kind_prefix(tenant, "Notebook")


def object_root(owner: Owner) -> str:
    """Everything the object ever wrote (what `onDelete: Delete` removes)."""
    return f"{kind_prefix(owner.namespace, owner.kind)}{owner.name}/"


def version_prefix(owner: Owner, version: int) -> str:
    """`<namespace>/<plural>/<name>/v<N>/`: readable, deterministic, immutable once written."""
    return f"{object_root(owner)}v{version}/"


def checkpoints_prefix(owner: Owner, version: int) -> str:
    """A training run's checkpoints, beside (not inside) its version: they are not the model, and go once it is
    recorded."""
    return f"{object_root(owner)}checkpoints/v{version}/"


def manifest_object(owner: Owner, version: int) -> str:
    """A Dataset version's manifest, beside (not inside) the version's prefix."""
    return f"{object_root(owner)}v{version}.manifest.json"


def workspace_prefix(owner: Owner) -> str:
    """A Notebook's workspace: under notebooks_prefix, where its tenant's members sync it."""
    return f"{object_root(owner)}workspace/"


def activity_prefix(owner: Owner) -> str:
    """The sidecar's reports and the sync's heartbeat: beside the workspace, not in it (the sync would carry them),
    and under the tenant's notebooks prefix, where both the tenant's workload identity and its members may write."""
    return f"{object_root(owner)}activity/"


def payloads_prefix(owner: Owner) -> str:
    """Where the capture proxy writes the server's traffic: mounted read-write into the proxy, read-only into its
    monitor runs."""
    return f"{object_root(owner)}{PAYLOADS}"


def monitor_run_prefix(owner: Owner, number: int) -> str:
    """Where a server's monitor run writes its report: a run never reads another run's output."""
    return f"{object_root(owner)}monitor/run-{number}/"


def upload_object(owner: Owner, md5: str) -> str:
    """Where the CLI uploads an object's build context (to a URL the operator signed) and its builder reads it."""
    return f"{uploads_prefix(owner.namespace)}{kind_for(owner.kind).plural}/{owner.name}/{md5}.tar.gz"


# --- scheduling: node pools, their labels and taints ---------------------------------------------------------------

SYSTEM_POOL = "system"  # always on, untainted: the operator and GKE's own pods, CPU-only work
NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"  # GKE labels every node with its pool's name
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"  # and a GPU node with its GPU type
GPU_POOL_LABEL = "modelplane.dev/gpu-pool"  # the stack's label on a GPU pool's nodes: pins work to one pool
GPU_RESOURCE = "nvidia.com/gpu"  # the GPUs a pod asks for, and the key of the taint GPU nodes carry

# The build pool: GKE Sandbox (gVisor) nodes that run image builds and nothing else. GKE itself taints sandbox
# nodes (sandbox.gke.io/runtime=gvisor) and its `gvisor` RuntimeClass tolerates that; this label and taint keep
# other sandboxed pods off the build nodes and builds on them.
SANDBOX_RUNTIME_CLASS = "gvisor"
BUILD_POOL = "builds"
BUILD_POOL_LABEL = "modelplane.dev/build-pool"


@dataclass(frozen=True)
class Taint:
    """A NoSchedule taint of a node pool: the stack puts it on the pool (infra/gke/node_pools.py, in GKE's spelling),
    Kueue's flavors name it as the node shows it, and the operator's pods carry its toleration to land there."""

    key: str
    value: str
    EFFECT: ClassVar[str] = "NoSchedule"

    def on_node(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.EFFECT}

    def toleration(self, any_value: bool = False) -> dict[str, str]:
        """`any_value`: whatever the value (GKE's GPU taint is the key's; its value is not ours to pin)."""
        if any_value:
            return {"key": self.key, "operator": "Exists", "effect": self.EFFECT}
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.EFFECT}


GPU_TAINT = Taint(GPU_RESOURCE, "present")
SPOT_TAINT = Taint("cloud.google.com/gke-spot", "true")
BUILD_TAINT = Taint("modelplane.dev/builds", BUILD_POOL)


@dataclass(frozen=True)
class GpuPool:
    """A GPU node pool as the operator places work on it: what the stack writes (its outputs, the operator's
    ConfigMap) and the operator reads, in one wire form. The stack's config (infra/config.py GpuPoolSettings) holds
    more, how to build the pool; its `facts` is this."""

    name: str
    gpu_type: str
    gpus_per_node: int
    spot: bool

    @property
    def taints(self) -> tuple[Taint, ...]:
        """The taints its nodes carry: the stack puts them there, the operator's pods must tolerate them."""
        return (GPU_TAINT, SPOT_TAINT) if self.spot else (GPU_TAINT,)

    @classmethod
    def from_wire(cls, pool: Mapping[str, Any]) -> GpuPool:
        """A pool as to_wire writes it (`{name, gpuType, gpusPerNode, spot}`)."""
        return cls(name=pool["name"], gpu_type=pool["gpuType"], gpus_per_node=int(pool.get("gpusPerNode", 1)),
                   spot=bool(pool.get("spot", False)))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "gpuType": self.gpu_type, "gpusPerNode": self.gpus_per_node, "spot": self.spot}
