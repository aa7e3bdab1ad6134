"""Kueue's objects from the stack config: flavors per pool, queues per GPU type, LocalQueues per tenant, tenant caps,
queued provisioning; each held to Kueue's own CRD rules (tests/support/kueue.py)."""
from typing import Any

import pytest

from infra.config import parse_stack_config
from infra.offline import read_stack_values
from infra.queueing import (
    flavor_name,
    queues,
    tenant_cluster_queue,
)
from modelplane.names import cluster_queue, local_queue
from tests.support import kueue
from tests.support.queueing import DWS_POOLS, by_kind, config


def quotas(cluster_queue_: dict[str, Any]) -> dict[str, dict[str, str]]:
    (group,) = cluster_queue_["spec"]["resourceGroups"]
    return {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}


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
