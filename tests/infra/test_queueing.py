"""Kueue's objects from the stack config: flavors per pool, queues per GPU type, LocalQueues per tenant, tenant caps,
queued provisioning; each held to Kueue's own CRD rules (tests/support/kueue.py)."""

from typing import Any

import pytest

from infra.config import StackConfig, parse_stack_config
from infra.offline import Plan, read_stack_values, run_program
from infra.queueing import (
    PROVISIONING_CONTROLLER,
    QUEUED_PROVISIONING,
    QUEUED_PROVISIONING_CLASS,
    flavor_name,
    queues,
    tenant_cluster_queue,
)
from modelplane.builders.workload import GPU_TOLERATION, SPOT_TOLERATION
from modelplane.names import QUEUE_LABEL, cluster_queue, local_queue
from tests.support import kueue

# A100 on demand through queued provisioning, then spot: two flavors of one GPU type.
DWS_POOLS: list[dict[str, Any]] = [
    {"name": "l4", "gpuType": "nvidia-l4", "maxNodes": 2},
    {"name": "a100-dws", "gpuType": "nvidia-tesla-a100", "gpusPerNode": 8, "spot": False, "maxNodes": 2,
     "queuedProvisioning": True},
    {"name": "a100-spot", "gpuType": "nvidia-tesla-a100", "maxNodes": 3},
]


def config(**changes: Any) -> StackConfig:
    values = {k.split(":", 1)[1]: v for k, v in read_stack_values("dev").items()}
    return parse_stack_config(values | changes, "dev")


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}".lstrip("/"): o
            for o in objs if o["kind"] == kind}


def quotas(cluster_queue_: dict[str, Any]) -> dict[str, dict[str, str]]:
    (group,) = cluster_queue_["spec"]["resourceGroups"]
    return {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}


def tolerates(tolerations: list[dict[str, str]], taint: dict[str, str]) -> bool:
    """Kubernetes' ToleratesTaint, for the Equal and Exists tolerations the operator writes."""
    return any(t["key"] == taint["key"] and t["effect"] == taint["effect"]
               and (t["operator"] == "Exists" or t.get("value") == taint["value"]) for t in tolerations)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_passes_kueues_crd_rules(stack: str) -> None:
    values = {k.split(":", 1)[1]: v for k, v in read_stack_values(stack).items()}
    for c in (parse_stack_config(values, stack), config(gpuPools=DWS_POOLS, tenantGpuQuota=2)):
        assert [(o["metadata"]["name"], p) for o in queues(c) for p in kueue.problems(o)] == []


def test_the_port_refuses_what_kueue_refuses() -> None:
    """The port is not vacuous: each rule it carries fails an object that breaks it."""
    bad_quota = {"apiVersion": kueue.API_VERSION, "kind": "ClusterQueue", "metadata": {"name": "q"}, "spec": {
        "resourceGroups": [{"coveredResources": ["cpu", "memory"], "flavors": [
            {"name": "f", "resources": [{"name": "cpu", "nominalQuota": "two", "borrowingLimit": "1"}]}]}]}}
    assert set(kueue.problems(bad_quota)) == {
        "nominalQuota 'two': not a quantity", "borrowingLimit must be nil when cohort is empty",
        "flavors must have the same number of resources as the coveredResources"}
    assert kueue.problems({"apiVersion": kueue.API_VERSION, "kind": "LocalQueue",
                           "metadata": {"name": "gpu.l4", "namespace": "ml"}, "spec": {"clusterQueue": "Q"}}) == [
        "metadata.name 'gpu.l4' is not a valid name", "spec.clusterQueue 'Q': not a DNS subdomain"]
    assert kueue.problems({"apiVersion": kueue.API_VERSION, "kind": "ResourceFlavor", "metadata": {"name": "f"},
                           "spec": {"nodeTaints": [{"key": "k", "effect": "NoRun"}]}}) == [
        "spec.nodeTaints[]: supported taint effect values: ('NoSchedule', 'PreferNoSchedule', 'NoExecute')"]


def test_a_flavor_per_pool_selects_its_nodes_and_carries_its_taints(prod_plan: Plan) -> None:
    """The taints are the node pools' own (as GKE writes them on the nodes), and a GPU pod the operator places
    tolerates each of them, so Kueue never finds a pool's flavor out of its reach."""
    objs = queues(config(gpuPools=DWS_POOLS))
    flavors = by_kind(objs, "ResourceFlavor")
    assert set(flavors) == {"modelplane-cpu-nodes", *(flavor_name(p["name"]) for p in DWS_POOLS)}
    assert flavors["modelplane-cpu-nodes"]["spec"] == {}
    spot = flavors[flavor_name("a100-spot")]["spec"]
    assert spot["nodeLabels"] == {"cloud.google.com/gke-nodepool": "a100-spot"}
    assert [t["key"] for t in spot["nodeTaints"]] == ["nvidia.com/gpu", "cloud.google.com/gke-spot"]
    assert [t["key"] for t in flavors[flavor_name("a100-dws")]["spec"]["nodeTaints"]] == ["nvidia.com/gpu"]
    planned = {p.inputs["name"]: p.inputs["nodeConfig"]["taints"]
               for p in prod_plan.of_type("gcp:container/nodePool:NodePool") if p.inputs["name"] == "l4"}
    effects = {"NO_SCHEDULE": "NoSchedule"}
    prod_flavor = by_kind(queues(config_of("prod")), "ResourceFlavor")[flavor_name("l4")]["spec"]
    assert prod_flavor["nodeTaints"] == [{**t, "effect": effects[t["effect"]]} for t in planned["l4"]]
    assert all(tolerates([GPU_TOLERATION, SPOT_TOLERATION], taint) for taint in spot["nodeTaints"])


def config_of(stack: str) -> StackConfig:
    return parse_stack_config({k.split(":", 1)[1]: v for k, v in read_stack_values(stack).items()}, stack)


def test_a_cluster_queue_per_gpu_type_on_demand_first_in_one_cohort() -> None:
    objs = queues(config(gpuPools=DWS_POOLS, queueing={"cohort": "research"}))
    queues_ = by_kind(objs, "ClusterQueue")
    assert set(queues_) == {cluster_queue(None), cluster_queue("nvidia-l4"), cluster_queue("nvidia-tesla-a100")}
    assert {q["spec"]["cohortName"] for q in queues_.values()} == {"research"}
    a100 = queues_[cluster_queue("nvidia-tesla-a100")]
    # Flavors in order: on-demand capacity first; every pod resource covered (cpu, memory, ephemeral-storage).
    assert quotas(a100) == {
        flavor_name("a100-dws"): {"nvidia.com/gpu": "16", "cpu": "192", "memory": "1360G",
                                  "ephemeral-storage": "400G"},
        flavor_name("a100-spot"): {"nvidia.com/gpu": "3", "cpu": "36", "memory": "255G", "ephemeral-storage": "600G"}}
    assert quotas(queues_[cluster_queue(None)]) == {"modelplane-cpu-nodes": {
        "cpu": "12", "memory": "48G", "ephemeral-storage": "300G"}}  # the dev system pool: 3 x e2-standard-4
    assert all(q["spec"]["namespaceSelector"] == {"matchLabels": {"modelplane.dev/tenant": "true"}}
               for q in queues_.values())


def test_configured_quota_overrides_the_derived_one() -> None:
    objs = queues(config(queueing={"pools": {"l4": {"gpus": 1, "memoryGb": 20}}}))
    assert quotas(by_kind(objs, "ClusterQueue")[cluster_queue("nvidia-l4")])[flavor_name("l4")] == {
        "nvidia.com/gpu": "1", "cpu": "16", "memory": "20G", "ephemeral-storage": "400G"}


def test_each_tenant_has_the_local_queues_the_operator_labels_jobs_with(prod_plan: Plan) -> None:
    c = config_of("prod")
    local = by_kind(queues(c), "LocalQueue")
    assert set(local) == {f"{tenant}/{local_queue(gpu)}" for tenant in c.tenant_names
                          for gpu in (None, *c.gpu_types)}
    assert all(q["spec"]["clusterQueue"] == f"modelplane-{q['metadata']['name']}" for q in local.values())
    # What the operator writes on a Job is a label value: the LocalQueue's name must be one.
    assert QUEUE_LABEL == "kueue.x-k8s.io/queue-name"
    planned = {o["metadata"]["name"] for g in prod_plan.of_type("kubernetes:yaml/v2:ConfigGroup")
               if g.name == "queues" for o in g.inputs["objs"] if o["kind"] == "LocalQueue"}
    assert planned == {q.split("/")[1] for q in local}


def test_tenant_gpu_quota_caps_each_tenant_through_a_queue_of_its_own() -> None:
    """No quota of its own; it borrows at most the cap of GPUs per flavor from the cohort (the shared queue lends)."""
    objs = queues(config(tenantGpuQuota=4, tenants=["ml", "research"]))
    queues_ = by_kind(objs, "ClusterQueue")
    capped = queues_[tenant_cluster_queue("research", "nvidia-l4")]
    assert capped["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "research"}}
    assert capped["spec"]["cohortName"] == queues_[cluster_queue("nvidia-l4")]["spec"]["cohortName"]
    (flavor,) = capped["spec"]["resourceGroups"][0]["flavors"]
    assert {r["name"]: (r["nominalQuota"], r.get("borrowingLimit")) for r in flavor["resources"]} == {
        "nvidia.com/gpu": ("0", "4"), "cpu": ("0", None), "memory": ("0", None), "ephemeral-storage": ("0", None)}
    local = by_kind(objs, "LocalQueue")
    assert local[f"research/{local_queue('nvidia-l4')}"]["spec"]["clusterQueue"] == capped["metadata"]["name"]
    assert local[f"research/{local_queue(None)}"]["spec"]["clusterQueue"] == cluster_queue(None)
    assert set(queues_) - {cluster_queue(g) for g in (None, "nvidia-l4", "nvidia-tesla-a100")} == {
        tenant_cluster_queue(t, g) for t in ("ml", "research") for g in ("nvidia-l4", "nvidia-tesla-a100")}


def test_queued_provisioning_adds_the_check_on_its_flavor_and_the_node_pool_settings_gke_requires() -> None:
    objs = queues(config(gpuPools=DWS_POOLS, tenantGpuQuota=2))
    (prc,) = by_kind(objs, "ProvisioningRequestConfig").values()
    assert prc["spec"] == {"provisioningClassName": QUEUED_PROVISIONING_CLASS, "managedResources": ["nvidia.com/gpu"]}
    (check,) = by_kind(objs, "AdmissionCheck").values()
    assert check["spec"] == {"controllerName": PROVISIONING_CONTROLLER, "parameters": {
        "apiGroup": "kueue.x-k8s.io", "kind": "ProvisioningRequestConfig", "name": prc["metadata"]["name"]}}
    queues_ = by_kind(objs, "ClusterQueue")
    strategy = {"admissionChecks": [{"name": QUEUED_PROVISIONING, "onFlavors": [flavor_name("a100-dws")]}]}
    for name in (cluster_queue("nvidia-tesla-a100"), tenant_cluster_queue("ml", "nvidia-tesla-a100")):
        assert queues_[name]["spec"]["admissionChecksStrategy"] == strategy
    assert "admissionChecksStrategy" not in queues_[cluster_queue("nvidia-l4")]["spec"]
    # Without a queued pool, neither object exists.
    assert not by_kind(queues(config()), "AdmissionCheck")

    values = {**read_stack_values("dev"), "modelplane:gpuPools": DWS_POOLS}
    pools = {p.inputs["name"]: p.inputs for p in run_program("dev", values).of_type("gcp:container/nodePool:NodePool")}
    dws, spot = pools["a100-dws"], pools["a100-spot"]
    assert dws["queuedProvisioning"] == {"enabled": True}
    assert dws["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert dws["autoscaling"]["locationPolicy"] == "ANY" and dws["autoscaling"]["totalMinNodeCount"] == 0
    assert dws["management"]["autoRepair"] is False and dws["nodeConfig"]["spot"] is False
    assert "queuedProvisioning" not in spot and "reservationAffinity" not in spot["nodeConfig"]
    assert spot["management"]["autoRepair"] is True
