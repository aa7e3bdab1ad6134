"""The pod every workload runs in (loader, trainer, server, notebook): one builder, one container contract.

    /content/artifacts   the object's own bucket prefix, read-write
    /content/model       a base model, read-only
    /content/data        a dataset, read-only
    /content/params.json spec.params (also as PARAM_<UPPER_SNAKE_KEY> env vars)

Bucket prefixes are mounted with the GCS FUSE CSI driver under the tenant's Workload Identity service account;
GPUs become an `nvidia.com/gpu` limit, the accelerator node selector, and the tolerations of the pools.

The pod mounts no Kubernetes API token: the workload never calls the API (its service account has no RBAC), and
neither Google credential path needs the pod's token. The GKE metadata server fetches a token for the pod's service
account itself when the workload asks it for Google credentials (cloud.google.com/kubernetes-engine/docs/concepts/
workload-identity, "How Workload Identity Federation for GKE works"), and the GCS FUSE CSI driver gets one from the
kubelet in the volume's publish call (CSIDriver `tokenRequests`; GoogleCloudPlatform/gcs-fuse-csi-driver
pkg/cloud_provider/auth/token_manager.go reads `csi.storage.k8s.io/serviceAccount.tokens`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from modelplane.api.common import SECRET_REF, Workload, quantity, quantity_value
from modelplane.cluster import ClusterFacts
from modelplane.layout import ACCELERATOR_LABEL, GPU_RESOURCE, GPU_TAINT, SPOT_TAINT

WORKLOAD_CONTAINER = "main"  # the container that runs the user's image (beside the platform's sidecars)
CONTENT = "/content"
ARTIFACTS_PATH = f"{CONTENT}/artifacts"
MODEL_PATH = f"{CONTENT}/model"
DATA_PATH = f"{CONTENT}/data"
CHECKPOINTS_PATH = f"{CONTENT}/checkpoints"
PARAMS_PATH = f"{CONTENT}/params.json"
PARAMS_KEY = "params.json"
USER_ID = 1000
FUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
SPOT_TOLERATION = SPOT_TAINT.toleration()
GPU_TOLERATION = GPU_TAINT.toleration(any_value=True)
CACHE_SHARE = Decimal("0.5")  # of the pod's ephemeral storage, for the inputs' file cache (file_cache_mib)
_SECRET = re.compile(SECRET_REF)


def container_security() -> dict[str, Any]:
    """Every container of a workload pod: no privilege escalation, no capabilities, not root (Pod Security)."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}


@dataclass(frozen=True)
class Mount:
    """A bucket prefix at a path in the container."""

    name: str
    prefix: str
    path: str
    read_only: bool


def file_cache_mib(spec: Workload, mounts: list[Mount]) -> int:
    """Each input's share of the file cache, in MiB: half the pod's `resources.disk`, split evenly among the
    read-only mounts (gcsfuse evicts the least recently used files beyond it).

    Why bounded, and by `disk`: the cache lives in the GCS FUSE sidecar's emptyDir (`gke-gcsfuse-cache`, on the
    node's boot disk, gcs-fuse-csi-driver pkg/webhook/sidecar_spec.go), and the kubelet evicts a pod whose emptyDirs
    and container writes together pass the sum of its containers' ephemeral-storage limits (pkg/kubelet/eviction,
    podEphemeralStorageLimitEviction). The sidecar has no limit
    of its own (`gke-gcsfuse/ephemeral-storage-limit: "0"`), so that sum is the workload container's `disk`: cache
    and scratch share it. An unbounded cache (`max-size-mb:-1`) grows until the node's disk is full, and gets the pod
    evicted as soon as an input outgrows `disk`; half leaves the other half to the workload's own files."""
    inputs = sum(1 for mount in mounts if mount.read_only) or 1
    return int(quantity_value(spec.resources.disk) * CACHE_SHARE / inputs) // 2**20


def fuse_volume(bucket: str, mount: Mount, cache_mib: int) -> dict[str, Any]:
    """An inline GCS FUSE volume scoped to one prefix (`only-dir`); inputs read through the parallel file cache,
    of at most `cache_mib`."""
    options = ["implicit-dirs", f"only-dir={mount.prefix.rstrip('/')}", f"uid={USER_ID}", f"gid={USER_ID}"]
    if mount.read_only:
        options += [f"file-cache:max-size-mb:{cache_mib}", "file-cache:cache-file-for-range-read:true",
                    "file-cache:enable-parallel-downloads:true", "metadata-cache:ttl-secs:-1"]
    return {"name": mount.name, "csi": {"driver": FUSE_DRIVER, "readOnly": mount.read_only,
                                        "volumeAttributes": {"bucketName": bucket, "mountOptions": ",".join(options)}}}


def param_env(params: dict[str, Any]) -> list[dict[str, str]]:
    """`{"learningRate": 0.1}` -> PARAM_LEARNING_RATE=0.1; non-string values as JSON."""
    def upper_snake(key: str) -> str:
        key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
        return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()

    return [{"name": f"PARAM_{upper_snake(key)}", "value": value if isinstance(value, str) else json.dumps(value)}
            for key, value in sorted(params.items())]


def user_env(env: dict[str, str]) -> list[dict[str, Any]]:
    """`${{ secrets.NAME.KEY }}` becomes a secretKeyRef; everything else is a literal."""
    result: list[dict[str, Any]] = []
    for name, value in sorted(env.items()):
        secret = _SECRET.match(value)
        if secret:
            ref = {"name": secret.group(1), "key": secret.group(3)}
            result.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        else:
            result.append({"name": name, "value": value})
    return result


def resources(spec: Workload) -> dict[str, Any]:
    r = spec.resources
    requests = {"cpu": quantity(r.cpu), "memory": quantity(r.memory), "ephemeral-storage": quantity(r.disk)}
    limits = {"memory": quantity(r.memory), "ephemeral-storage": quantity(r.disk)}
    if r.gpu:
        limits[GPU_RESOURCE] = str(r.gpu.count)
    return {"requests": requests, "limits": limits}


def placement(spec: Workload, cluster: ClusterFacts) -> dict[str, Any]:
    """nodeSelector and tolerations for the requested GPU type (none for CPU work)."""
    gpu = spec.resources.gpu
    if gpu is None:
        return {}
    tolerations = [GPU_TOLERATION]
    if any(pool.spot for pool in cluster.pools_of(gpu.type)):
        tolerations.append(SPOT_TOLERATION)
    return {"nodeSelector": {ACCELERATOR_LABEL: gpu.type}, "tolerations": tolerations}


def gpu_problem(spec: Workload, cluster: ClusterFacts) -> str | None:
    """Why no node of this cluster can ever run the pod, or None. A refusal beats a Pod Pending forever."""
    gpu = spec.resources.gpu
    if gpu is None:
        return None
    pools = cluster.pools_of(gpu.type)
    if not pools:
        offered = ", ".join(cluster.gpu_types) or "none"
        return f"spec.resources.gpu.type {gpu.type} is not offered by this cluster; offered GPU types: {offered}"
    most = max(pool.gpus_per_node for pool in pools)
    if gpu.count > most:
        return (f"spec.resources.gpu.count {gpu.count} exceeds the {most} {gpu.type} GPUs per node of this cluster's "
                f"pools ({', '.join(pool.name for pool in pools)})")
    return None


def pod_template(*, labels: dict[str, str], image: str, spec: Workload, cluster: ClusterFacts, mounts: list[Mount],
                 params_config_map: str, args: list[str] | None = None, ports: list[dict[str, Any]] | None = None,
                 probe: dict[str, Any] | None = None, restart_policy: str = "Never",
                 annotations: dict[str, str] | None = None, files: list[str] | None = None,
                 sidecars: list[dict[str, Any]] | None = None,
                 sidecar_mounts: list[Mount] | None = None) -> dict[str, Any]:
    """The pod template for `spec`, running `image` with `mounts`; `files` are keys of the params ConfigMap that
    appear as /content/<key> too (a run's data diff). `sidecars` are the platform's own containers beside the
    workload (the capture proxy), with the bucket prefixes they alone mount."""
    container: dict[str, Any] = {
        "name": WORKLOAD_CONTAINER,
        "image": image,
        "env": param_env(spec.params) + user_env(spec.env),
        "resources": resources(spec),
        "volumeMounts": [{"name": m.name, "mountPath": m.path, "readOnly": m.read_only} for m in mounts]
        + [{"name": "params", "mountPath": f"{CONTENT}/{key}", "subPath": key, "readOnly": True}
           for key in [PARAMS_KEY, *(files or [])]],
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.command:
        container["command"] = list(spec.command)
    if args:
        container["args"] = args
    if ports:
        container["ports"] = ports
    if probe:
        container["readinessProbe"] = probe
    cache_mib = file_cache_mib(spec, mounts)
    return {
        "metadata": {
            "labels": labels,
            "annotations": {
                "gke-gcsfuse/volumes": "true",
                # "0" lifts the sidecar's limits so large models load at full speed; its file cache is bounded
                # within the pod's ephemeral storage all the same (file_cache_mib).
                "gke-gcsfuse/cpu-limit": "0", "gke-gcsfuse/memory-limit": "0",
                "gke-gcsfuse/ephemeral-storage-limit": "0",
                **(annotations or {}),
            },
        },
        "spec": {
            "serviceAccountName": cluster.workload_service_account,
            "automountServiceAccountToken": False,  # the workload never calls the Kubernetes API (see above)
            "restartPolicy": restart_policy,
            "securityContext": {"runAsNonRoot": True, "runAsUser": USER_ID, "runAsGroup": USER_ID,
                                "fsGroup": USER_ID, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container, *(sidecars or [])],
            "volumes": [fuse_volume(cluster.bucket, m, cache_mib) for m in [*mounts, *(sidecar_mounts or [])]]
            + [{"name": "params", "configMap": {"name": params_config_map}}],
            **placement(spec, cluster),
        },
    }


CONFIG_MAP_LIMIT = 1024 * 1024  # bytes of data a ConfigMap may hold (the API server refuses more)
ENV_VALUE_LIMIT = 128 * 1024  # the kernel's limit on one environment string (MAX_ARG_STRLEN): exec fails above


def params_problem(params: dict[str, Any]) -> str | None:
    """Why these params cannot be handed to a container, or None.

    The CRD cannot bound free-form JSON by size, so the operator refuses it with a reason instead of failing
    to create the ConfigMap (or a pod that cannot exec) on every sync.
    """
    size = len(_params_json(params).encode())
    if size > CONFIG_MAP_LIMIT:
        return (f"spec.params is {size} bytes as JSON; at most {CONFIG_MAP_LIMIT} fit in its ConfigMap: "
                "put large inputs in a Dataset and pass their path instead")
    for var in param_env(params):
        if len(var["name"]) + len(var["value"].encode()) + 1 > ENV_VALUE_LIMIT:
            return (f"spec.params value for {var['name']} is over {ENV_VALUE_LIMIT // 1024} KiB, too large for an "
                    "environment variable: put it in a Dataset and pass its path instead")
    return None


def _params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, indent=2, sort_keys=True)


def params_config_map(metadata: dict[str, Any], params: dict[str, Any],
                      files: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {PARAMS_KEY: _params_json(params), **(files or {})}}
