"""GPU queueing with Kueue: the pinned release the stack installs, and the queues it configures from the stack config.

Kueue (kubernetes-sigs/kueue) holds a labelled Job suspended until its ClusterQueue has quota for it, then admits it
onto a ResourceFlavor (a set of nodes). The shape here:

- a ResourceFlavor per GPU pool, selecting the pool's nodes (`cloud.google.com/gke-nodepool`) and carrying its taints
  as `nodeTaints`: Kueue assigns a flavor only to a pod that tolerates them, so a pod the operator did not let onto
  spot nodes never gets a spot flavor; and one flavor without labels for CPU-only work;
- a ClusterQueue per GPU type (`names.cluster_queue`), its flavors that type's pools, on-demand before spot (Kueue
  tries flavors in order: on-demand capacity first, spot when it is used up), and a `modelplane-cpu` one;
- every ClusterQueue in one cohort, so quota one queue leaves idle can be borrowed by another that shares the flavor;
- in each tenant namespace a LocalQueue per ClusterQueue, named `names.local_queue(...)`: the queue the operator
  labels each Job with.

Quota: a pool's nominal quota is what its nodes hold at `maxNodes` (GPUs, vCPUs, memory, boot disk), unless
`queueing.pools.<pool>` sets it. Every resource a workload pod requests must be covered, or Kueue never admits it
("resource ... unavailable in ClusterQueue", pkg/scheduler/flavorassigner/flavorassigner.go at v0.19.2), and the
operator's pods request cpu, memory and ephemeral-storage (builders/workload.py), so every queue covers those too.

Per-tenant GPU caps (`tenantGpuQuota`) replace the ResourceQuota the stack used before Kueue: a ResourceQuota is
checked when pods are created, after Kueue admitted the Job, so a Job over it held cluster quota with pods that could
never start. Instead each tenant gets a ClusterQueue per GPU type in the cohort with no quota of its own and a
`borrowingLimit` of that many GPUs on each of the type's flavors: it runs on what the shared queue lends, never more
than its cap. Kueue's fair sharing would divide GPUs by weight but caps nobody, which is not what the key promises.
"""

from __future__ import annotations

from typing import Any

from infra.config import GpuPoolSettings, StackConfig
from infra.gke.catalogue import machine_shape
from modelplane.deploy import PART_OF, TENANT_LABEL
from modelplane.layout import GPU_RESOURCE, NODE_POOL_LABEL
from modelplane.names import cluster_queue, local_queue

KUEUE_VERSION = "v0.19.2"  # the current release (kubernetes-sigs/kueue site/hugo.toml); serves and stores v1beta2
KUEUE_MANIFESTS = f"https://github.com/kubernetes-sigs/kueue/releases/download/{KUEUE_VERSION}/manifests.yaml"
KUEUE_IMAGE = f"registry.k8s.io/kueue/kueue:{KUEUE_VERSION}"  # the controller the manifests run (Makefile IMAGE_TAG)
API_VERSION = "kueue.x-k8s.io/v1beta2"
# JobSet runs multi-node training as one gang (builders/jobset.py); Kueue's default configuration integrates it
# (`jobset.x-k8s.io/jobset` in integrations.frameworks), admitting a JobSet's pods all together or none.
JOBSET_VERSION = "v0.12.0"  # the release whose API the operator writes (tests/support/jobset.py ports its rules)
JOBSET_MANIFESTS = f"https://github.com/kubernetes-sigs/jobset/releases/download/{JOBSET_VERSION}/manifests.yaml"
JOBSET_IMAGE = f"registry.k8s.io/jobset/jobset:{JOBSET_VERSION}"

GPU, CPU, MEMORY, DISK = GPU_RESOURCE, "cpu", "memory", "ephemeral-storage"
CPU_FLAVOR = "modelplane-cpu-nodes"
# Queued provisioning (GKE's Dynamic Workload Scheduler) through Kueue's built-in ProvisioningRequest admission check.
QUEUED_PROVISIONING = "modelplane-queued-provisioning"
PROVISIONING_CONTROLLER = "kueue.x-k8s.io/provisioning-request"
QUEUED_PROVISIONING_CLASS = "queued-provisioning.gke.io"


def flavor_name(pool: str) -> str:
    return f"modelplane-pool-{pool}"


def tenant_cluster_queue(tenant: str, gpu_type: str) -> str:
    """A tenant's own ClusterQueue for a GPU type, when tenants are capped (`tenantGpuQuota`)."""
    return f"modelplane-{tenant}-{local_queue(gpu_type)}"


def _object(kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(PART_OF)}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _gigabytes(amount: float) -> str:
    return f"{int(amount)}G" if float(amount).is_integer() else f"{round(amount * 1000)}M"


def pool_quota(pool: GpuPoolSettings, config: StackConfig) -> dict[str, str]:
    """The pool's nominal quota, each resource as a Kubernetes quantity: as configured, else the pool at maxNodes."""
    vcpus, memory = machine_shape(pool.machine_type)
    set_ = config.queueing.pools.get(pool.name)
    return {
        GPU: str(set_.gpus if set_ and set_.gpus else pool.max_nodes * pool.gpus_per_node),
        CPU: str(set_.cpu if set_ and set_.cpu else pool.max_nodes * vcpus),
        MEMORY: _gigabytes(set_.memory_gb if set_ and set_.memory_gb else pool.max_nodes * memory),
        DISK: _gigabytes(pool.max_nodes * pool.disk_size_gb),
    }


def _resource_group(quotas: dict[str, dict[str, str]], borrowing: dict[str, str] | None = None) -> dict[str, Any]:
    """One resource group over `quotas` (flavor -> resource -> nominal quota, in flavor order), every flavor covering
    the same resources (the CRD requires it); `borrowing` limits what may be borrowed per resource."""
    covered = list(next(iter(quotas.values())))
    return {"coveredResources": covered, "flavors": [
        {"name": flavor, "resources": [{"name": resource, "nominalQuota": quota[resource],
                                        **({"borrowingLimit": borrowing[resource]}
                                           if borrowing and resource in borrowing else {})}
                                       for resource in covered]}
        for flavor, quota in quotas.items()]}


def _pools_in_order(config: StackConfig, gpu_type: str) -> list[GpuPoolSettings]:
    """A GPU type's pools, on-demand (queued provisioning last among them) before spot, then as configured."""
    pools = [pool for pool in config.gpu_pools if pool.gpu_type == gpu_type]
    return sorted(pools, key=lambda pool: (pool.spot, pool.queued_provisioning))


def _checks(pools: list[GpuPoolSettings]) -> dict[str, Any]:
    queued = [flavor_name(pool.name) for pool in pools if pool.queued_provisioning]
    if not queued:
        return {}
    return {"admissionChecksStrategy": {"admissionChecks": [{"name": QUEUED_PROVISIONING, "onFlavors": queued}]}}


def _cluster_queue(name: str, config: StackConfig, group: dict[str, Any], namespaces: dict[str, Any],
                   checks: dict[str, Any]) -> dict[str, Any]:
    return _object("ClusterQueue", name, {
        "cohortName": config.queueing.cohort, "namespaceSelector": namespaces, "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [group], **checks})


def flavors(config: StackConfig) -> list[dict[str, Any]]:
    """A ResourceFlavor per GPU pool, and the one of CPU-only work (any node: CPU pods go where they fit)."""
    return [_object("ResourceFlavor", CPU_FLAVOR, {}), *(
        _object("ResourceFlavor", flavor_name(pool.name), {
            "nodeLabels": {NODE_POOL_LABEL: pool.name},
            "nodeTaints": [taint.on_node() for taint in pool.facts.taints]})
        for pool in config.gpu_pools)]


def cpu_quota(config: StackConfig) -> dict[str, str]:
    """CPU-only work runs on the system pool, the one pool without a taint: its nodes at maxNodes."""
    vcpus, memory = machine_shape(config.system_pool.machine_type)
    nodes = config.system_pool.max_nodes
    return {CPU: str(nodes * vcpus), MEMORY: _gigabytes(nodes * memory),
            DISK: _gigabytes(nodes * config.system_pool.disk_size_gb)}


def queues(config: StackConfig) -> list[dict[str, Any]]:
    """Every Kueue object of the stack: flavors, the queued-provisioning check when a pool uses it, ClusterQueues and
    the tenants' LocalQueues. Applied after Kueue is installed and its webhook serves (infra/platform.py)."""
    tenants_only = {"matchLabels": {TENANT_LABEL: "true"}}
    manifests = flavors(config)
    if any(pool.queued_provisioning for pool in config.gpu_pools):
        manifests += [
            _object("ProvisioningRequestConfig", QUEUED_PROVISIONING, {
                "provisioningClassName": QUEUED_PROVISIONING_CLASS, "managedResources": [GPU]}),
            _object("AdmissionCheck", QUEUED_PROVISIONING, {
                "controllerName": PROVISIONING_CONTROLLER,
                "parameters": {"apiGroup": "kueue.x-k8s.io", "kind": "ProvisioningRequestConfig",
                               "name": QUEUED_PROVISIONING}}),
        ]
    manifests.append(_cluster_queue(cluster_queue(None), config, _resource_group({CPU_FLAVOR: cpu_quota(config)}),
                                    tenants_only, {}))
    targets: dict[tuple[str, str | None], str] = {(tenant, None): cluster_queue(None) for tenant in config.tenant_names}
    for gpu_type in config.gpu_types:
        pools = _pools_in_order(config, gpu_type)
        quotas = {flavor_name(pool.name): pool_quota(pool, config) for pool in pools}
        manifests.append(_cluster_queue(cluster_queue(gpu_type), config, _resource_group(quotas), tenants_only,
                                        _checks(pools)))
        for tenant in config.tenant_names:
            targets[tenant, gpu_type] = cluster_queue(gpu_type)
            if config.tenant_gpu_quota:
                # No quota of its own: it borrows from the cohort, at most the cap of GPUs on each flavor.
                zero = {flavor: {resource: "0" for resource in quota} for flavor, quota in quotas.items()}
                manifests.append(_cluster_queue(
                    tenant_cluster_queue(tenant, gpu_type), config,
                    _resource_group(zero, {GPU: str(config.tenant_gpu_quota)}),
                    {"matchLabels": {"kubernetes.io/metadata.name": tenant}}, _checks(pools)))
                targets[tenant, gpu_type] = tenant_cluster_queue(tenant, gpu_type)
    manifests += [_object("LocalQueue", local_queue(gpu_type), {"clusterQueue": target}, namespace=tenant)
                  for (tenant, gpu_type), target in targets.items()]
    return manifests
