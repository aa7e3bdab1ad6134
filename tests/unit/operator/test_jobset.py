"""Multi-node training: a Model with `resources.nodes` > 1 runs as one JobSet (N Indexed pods, torchrun's
rendezvous in their environment, Kueue's queue on it), checked against JobSet's own schema and webhook
(tests/support/jobset.py)."""
from __future__ import annotations

import copy
from typing import Any

from modelplane.api.model import ModelSpec
from modelplane.builders.jobset import MASTER_PORT, MAX_JOBSET_NAME
from modelplane.names import QUEUE_LABEL
from modelplane.operator.kube import jobset_state
from modelplane.reconcile.artifacts import Observed, reconcile, spec_digest
from modelplane.reconcile.common import JobState, RefState
from tests.support import jobset as upstream
from tests.support.facts import DEV_CLUSTER, NAMESPACE, owner

NOW = "2026-12-03T10:00:00Z"
REFS = {field: RefState(found=True, ready=True, url=f"gs://{DEV_CLUSTER.bucket}/{NAMESPACE}/{field}/v1/")
        for field in ("baseModel", "dataset")}


def training(nodes: int, gpus: int = 1, **more: Any) -> ModelSpec:
    return ModelSpec.model_validate({"image": "trainer:1", "baseModel": {"name": "b"}, "dataset": {"name": "d"},
                                     "resources": {"nodes": nodes, "gpu": {"type": "nvidia-l4", "count": gpus}},
                                     **more})


def started(name: str, spec: ModelSpec) -> list[dict[str, Any]]:
    return reconcile(owner("Model", name), spec, {}, DEV_CLUSTER, Observed(refs=REFS), NOW).children


def test_a_multi_node_model_runs_as_one_jobset_that_upstream_accepts() -> None:
    children = started("ft", training(nodes=4, env={"MASTER_PORT": "1"}))
    assert [c["kind"] for c in children] == ["ConfigMap", "JobSet"]  # no Job: the JobSet is the run
    jobset = children[1]
    assert upstream.problems(jobset) == []
    assert jobset["metadata"]["name"] == "model-ft-1"
    assert jobset["metadata"]["labels"][QUEUE_LABEL] == "gpu-nvidia-l4"  # Kueue admits the whole JobSet, or none
    spec = jobset["spec"]
    assert spec["network"] == {"enableDNSHostnames": True}
    (node,) = spec["replicatedJobs"]
    assert node["replicas"] == 1
    job = node["template"]["spec"]
    assert (job["parallelism"], job["completions"], job["completionMode"]) == (4, 4, "Indexed")
    # A disruption fails the Job at once and restarts the gang without counting; anything else counts.
    assert job["backoffLimit"] == 0
    assert job["podFailurePolicy"] == {"rules": [{"action": "FailJob", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]}]}
    assert spec["failurePolicy"] == {"maxRestarts": 2, "rules": [
        {"name": "disruption", "action": "RestartJobSetAndIgnoreMaxRestarts",
         "onJobFailureReasons": ["PodFailurePolicy"]}]}

    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    env = {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}
    assert len(env) == len(container["env"])  # the rendezvous replaced the user's MASTER_PORT: no duplicate names
    rank = {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    assert {key: env[key] for key in ("MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK", "NPROC_PER_NODE",
                                      "WORLD_SIZE")} == {
        "MASTER_ADDR": "model-ft-1-node-0-0.model-ft-1",  # rank 0's pod under the JobSet's headless Service
        "MASTER_PORT": str(MASTER_PORT), "NNODES": "4", "NODE_RANK": rank, "NPROC_PER_NODE": "1",
        "WORLD_SIZE": "4"}
    assert {env["PET_NNODES"], env["PET_NODE_RANK"] == rank, env["PET_MASTER_ADDR"]} == {
        "4", True, "model-ft-1-node-0-0.model-ft-1"}
    # The single-node run's pod otherwise: GPUs, placement, checkpoints.
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert env["MODELPLANE_CHECKPOINT_DIR"] == "/content/checkpoints"
    (single,) = [c for c in started("ft", training(nodes=1)) if c["kind"] == "Job"]
    assert single["spec"]["template"]["metadata"] == job["template"]["metadata"]
    assert single["spec"]["template"]["spec"]["volumes"] == pod["volumes"]


def test_a_long_model_name_still_gives_pod_names_jobset_accepts() -> None:
    name = "a" * 63
    (jobset,) = [c for c in started(name, training(nodes=64)) if c["kind"] == "JobSet"]
    assert len(jobset["metadata"]["name"]) <= MAX_JOBSET_NAME
    assert upstream.problems(jobset) == []
    (container,) = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"]
    (master,) = [var["value"] for var in container["env"] if var["name"] == "MASTER_ADDR"]
    assert master == f"{jobset['metadata']['name']}-node-0-0.{jobset['metadata']['name']}"


def test_the_port_refuses_what_upstream_refuses() -> None:
    (jobset,) = [c for c in started("ft", training(nodes=2)) if c["kind"] == "JobSet"]

    def changed(path: str, value: Any) -> dict[str, Any]:
        broken = copy.deepcopy(jobset)
        *parents, last = path.split(".")
        target = broken
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
        return broken

    assert "name" in " ".join(upstream.problems(changed("spec.replicatedJobs.0.name", None)))
    assert upstream.problems(changed("spec.failurePolicy.rules.0.action", "Retry"))
    assert upstream.problems(changed("spec.failurePolicy.rules.0.onJobFailureReasons", ["Evicted"]))
    assert upstream.problems(changed("spec.failurePolicy.rules.0.name", "1st"))
    assert not upstream.problems(changed("metadata.name", "x" * 48))  # 2 nodes: `-node-0-1-abcde` fits in 63
    assert upstream.problems(changed("metadata.name", "x" * 49))  # its pods' names would pass 63 characters
    assert upstream.problems(changed("spec.network.dns", True))  # pruned
    assert upstream.problems(changed("spec.replicatedJobs.0.template.spec.parallelism", "two"))  # a Job's schema


def test_a_jobsets_status_reads_as_a_runs_job_state() -> None:
    def state(**status: Any) -> JobState:
        return jobset_state({"status": status})

    assert state() == JobState()
    assert state(replicatedJobsStatus=[{"name": "node", "active": 1, "ready": 0, "succeeded": 0, "failed": 0,
                                        "suspended": 0}]).active == 1
    # Two restarts, one of them counted (a failure): the other was a disruption, a resume.
    assert state(restarts=2, restartsCountTowardsMax=1).disruptions == 1
    done = state(conditions=[{"type": "Completed", "status": "True", "reason": "AllJobsCompleted"}])
    assert done.succeeded and not done.failed
    failed = state(conditions=[{"type": "Failed", "status": "True", "reason": "ReachedMaxRestarts",
                                "message": "jobset failed due to reaching max number of restarts"}])
    assert failed.failed and failed.message == \
        "ReachedMaxRestarts: jobset failed due to reaching max number of restarts"


def test_a_run_started_on_several_nodes_is_observed_as_its_jobset_whatever_the_spec_says_since() -> None:
    first = reconcile(owner("Model", "ft"), training(nodes=2), {}, DEV_CLUSTER, Observed(refs=REFS), NOW)
    assert first.status["run"]["nodes"] == 2
    # Succeeded: recorded under the JobSet's name even though the spec went back to one node.
    done = reconcile(owner("Model", "ft"), training(nodes=1), first.status, DEV_CLUSTER,
                     Observed(job=JobState(succeeded=True), refs=REFS), "2026-12-03T11:00:00Z")
    (record,) = [c for c in done.children if c["kind"] == "ModelVersion"]
    assert record["spec"]["job"] == "model-ft-1"
    assert done.status["latestVersion"] == 1


def test_a_model_without_nodes_keeps_the_spec_digest_it_had_before_the_field() -> None:
    """An operator that knows `nodes` starts no new run of a Model that does not set it: its digest is the one the
    operator before the field computed (commit 9cdcf5f, for this spec)."""
    plain = ModelSpec.model_validate({"image": "trainer:1", "baseModel": {"name": "b"}, "dataset": {"name": "d"}})
    assert spec_digest(plain) == "d66ab54989b1fd6a"
    assert spec_digest(training(nodes=2)) != spec_digest(training(nodes=1))
