"""Node pools: an always-on system pool, a build pool and one GPU pool per configured entry (both from zero).

GPU nodes carry GKE's `nvidia.com/gpu` taint, spot nodes a `cloud.google.com/gke-spot` taint, so only workloads
that ask for them land there; the operator adds the matching tolerations. The `modelplane.dev/gpu-pool` label lets
it pin a workload to one pool.

The build pool runs image builds, tenants' untrusted Dockerfiles, and nothing else: GKE Sandbox (gVisor) nodes,
with a label and taint of their own that only build pods select and tolerate (GKE adds its own sandbox taint,
which the `gvisor` RuntimeClass tolerates). GKE Sandbox needs COS with containerd and a non-sandbox pool beside it
(the system pool, where GKE's own pods run).

A `queuedProvisioning` GPU pool gets its nodes only through ProvisioningRequests (GKE's Dynamic Workload Scheduler,
which Kueue files for a Job: infra/queueing.py), with the settings GKE requires of such a pool
(cloud.google.com/kubernetes-engine/docs/how-to/provisioningrequest, "Create a node pool": queued provisioning on,
no reservation consumed, autoscaling from zero with the ANY location policy, auto-repair off so that a repair does not
take down nodes a gang of pods was provisioned with; Spot VMs are refused, infra/config.py).
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import container

from infra.config import CpuPool, GpuPoolSettings, StackConfig
from infra.gke.cluster import hardened_node_config
from modelplane.layout import BUILD_POOL, BUILD_POOL_LABEL, BUILD_TAINT, GPU_POOL_LABEL, SYSTEM_POOL, Taint


def node_taint(taint: Taint) -> container.NodePoolNodeConfigTaintArgsDict:
    """A taint as GKE's node pool API spells it (the node shows `NoSchedule`)."""
    return {"key": taint.key, "value": taint.value, "effect": "NO_SCHEDULE"}


def gpu_node_config(pool: GpuPoolSettings, service_account: pulumi.Input[str]) -> container.NodePoolNodeConfigArgsDict:
    config: container.NodePoolNodeConfigArgsDict = {
        **hardened_node_config(service_account),
        "machine_type": pool.machine_type,
        "disk_size_gb": pool.disk_size_gb,
        "disk_type": pool.disk_type,
        "image_type": "COS_CONTAINERD",
        "spot": pool.spot,
        "guest_accelerators": [{
            "type": pool.gpu_type,
            "count": pool.gpus_per_node,
            "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
        }],
        "taints": [node_taint(taint) for taint in pool.facts.taints],
        "labels": {GPU_POOL_LABEL: pool.name},
        "gcfs_config": {"enabled": True},  # image streaming: multi-GB training images start in seconds
        "gvnic": {"enabled": True},
        "kubelet_config": {"insecure_kubelet_readonly_port_enabled": "FALSE"},
    }
    if pool.queued_provisioning:
        config["reservation_affinity"] = {"consume_reservation_type": "NO_RESERVATION"}
    if pool.local_ssd_count:
        # Local SSDs back emptyDir and the GCS FUSE file cache, which lives in the sidecar's ephemeral storage.
        config["ephemeral_storage_local_ssd_config"] = {"local_ssd_count": pool.local_ssd_count}
    return config


@dataclass(frozen=True)
class NodePoolsArgs:
    config: StackConfig
    cluster: container.Cluster
    node_service_account: pulumi.Input[str]


class NodePools(pulumi.ComponentResource):
    system: container.NodePool
    builds: container.NodePool
    gpu: dict[str, container.NodePool]

    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:NodePools", name, None, opts)
        c = args.config
        child = pulumi.ResourceOptions(parent=self, ignore_changes=["initial_node_count"])
        management: container.NodePoolManagementArgsDict = {"auto_repair": True, "auto_upgrade": True}

        def cpu_pool(pool_name: str, pool: CpuPool, initial: int, location_policy: str,
                     node: container.NodePoolNodeConfigArgsDict | None = None) -> container.NodePool:
            return container.NodePool(
                f"{name}-{pool_name}",
                name=pool_name,
                node_locations=list(c.zones),
                initial_node_count=initial,
                autoscaling={"total_min_node_count": pool.min_nodes, "total_max_node_count": pool.max_nodes,
                             "location_policy": location_policy},
                upgrade_settings={"strategy": "SURGE", "max_surge": 1, "max_unavailable": 0},
                node_config={**hardened_node_config(args.node_service_account),
                             "machine_type": pool.machine_type, "disk_size_gb": pool.disk_size_gb,
                             "image_type": "COS_CONTAINERD", "gcfs_config": {"enabled": True},
                             "kubelet_config": {"insecure_kubelet_readonly_port_enabled": "FALSE"}, **(node or {})},
                cluster=args.cluster.id,
                location=c.region,
                management=management,
                opts=child,
            )

        self.system = cpu_pool(SYSTEM_POOL, c.system_pool, 1, "BALANCED")
        # ANY: a build starts in whichever zone has capacity; from zero, a node exists only while builds run.
        self.builds = cpu_pool(BUILD_POOL, c.build_pool, 0, "ANY", {
            "sandbox_config": {"sandbox_type": "gvisor"}, "labels": {BUILD_POOL_LABEL: BUILD_POOL},
            "taints": [node_taint(BUILD_TAINT)]})
        self.gpu = {
            pool.name: container.NodePool(
                f"{name}-{pool.name}",
                name=pool.name,
                node_locations=list(pool.zones),
                initial_node_count=0,
                # ANY: take whichever zone has GPUs now; total_* counts span zones, so 0 means truly idle.
                autoscaling={"total_min_node_count": pool.min_nodes, "total_max_node_count": pool.max_nodes,
                             "location_policy": "ANY"},
                upgrade_settings={"strategy": "SURGE", "max_surge": 0 if pool.max_nodes == 1 else 1,
                                  "max_unavailable": 1 if pool.max_nodes == 1 else 0},
                node_config=gpu_node_config(pool, args.node_service_account),
                cluster=args.cluster.id,
                location=c.region,
                management={"auto_repair": False, "auto_upgrade": True} if pool.queued_provisioning else management,
                queued_provisioning={"enabled": True} if pool.queued_provisioning else None,
                opts=child,
            )
            for pool in c.gpu_pools
        }
        self.register_outputs({"system": self.system.name, "builds": self.builds.name,
                               "gpu": {k: v.name for k, v in self.gpu.items()}})
