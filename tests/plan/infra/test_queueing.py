"""Kueue's objects from the stack config: flavors per pool, queues per GPU type, LocalQueues per tenant, tenant caps,
queued provisioning; each held to Kueue's own CRD rules (tests/support/kueue.py)."""

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
from tests.support.queueing import DWS_POOLS, by_kind, config


def tolerates(tolerations: list[dict[str, str]], taint: dict[str, str]) -> bool:
    """Kubernetes' ToleratesTaint, for the Equal and Exists tolerations the operator writes."""
    return any(t["key"] == taint["key"] and t["effect"] == taint["effect"]
               and (t["operator"] == "Exists" or t.get("value") == taint["value"]) for t in tolerations)


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
