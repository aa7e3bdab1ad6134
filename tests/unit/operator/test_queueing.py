"""Runs through Kueue as the reconciler builds them and the operator reads them: the queue by GPU type, the
checkpoint mount, disruptions ignored; the place in line from Kueue's visibility API; the poll while queued."""
from __future__ import annotations

import kubernetes_validate

from modelplane.api.model import ModelSpec
from modelplane.api.reasons import Reason
from modelplane.names import QUEUE_LABEL
from modelplane.operator.kube import QueuePosition, queue_position, waiting_for_quota, workload_wait
from modelplane.operator.sync import QUEUE_POLL_SECONDS, poll_after
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import JobState, Outcome, RefState
from tests.support.facts import DEV_CLUSTER, KUBERNETES_VERSION, NAMESPACE, owner

WAIT = ("couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default-flavor, "
        "2 more needed")


def test_a_training_run_queues_by_gpu_type_mounts_its_checkpoints_and_ignores_disruptions() -> None:
    spec = ModelSpec.model_validate({"image": "trainer:1", "baseModel": {"name": "b"}, "dataset": {"name": "d"},
                                     "resources": {"gpu": {"type": "nvidia-l4"}}})
    refs = {field: RefState(found=True, ready=True, url=f"gs://{DEV_CLUSTER.bucket}/{NAMESPACE}/{field}/v1/")
            for field in ("baseModel", "dataset")}
    started = reconcile(owner("Model", "ft"), spec, {}, DEV_CLUSTER, Observed(refs=refs), "2026-12-03T10:00:00Z")
    (job,) = [c for c in started.children if c["kind"] == "Job"]
    assert job["metadata"]["labels"][QUEUE_LABEL] == "gpu-nvidia-l4"
    assert job["spec"]["podFailurePolicy"] == {"rules": [{"action": "Ignore", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]}]}
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "MODELPLANE_CHECKPOINT_DIR", "value": "/content/checkpoints"} in container["env"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/content/checkpoints"]
    assert mount["readOnly"] is False
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "only-dir=ml/models/ft/checkpoints/v1," in volume["csi"]["volumeAttributes"]["mountOptions"]
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    # Recorded: the checkpoints go (the version holds what the run made).
    done = reconcile(owner("Model", "ft"), spec, started.status, DEV_CLUSTER,
                     Observed(job=JobState(succeeded=True), refs=refs), "2026-12-03T11:00:00Z")
    assert done.deletes == ["ml/models/ft/checkpoints/v1/"]


def test_a_queued_object_is_looked_at_again_without_an_event() -> None:
    """Nothing watches Kueue's Workloads: a queued run polls, and sooner than a later requeue the reconciler asks."""
    def outcome(reason: str, requeue_after: float | None = None) -> Outcome:
        return Outcome([], {"conditions": [{"type": "Ready", "reason": reason}]}, requeue_after=requeue_after)

    assert poll_after(outcome(Reason.QUEUED)) == QUEUE_POLL_SECONDS
    assert poll_after(outcome(Reason.QUEUED, requeue_after=3600.0)) == QUEUE_POLL_SECONDS
    assert poll_after(outcome(Reason.QUEUED, requeue_after=5.0)) == 5.0
    assert poll_after(outcome(Reason.LOADING)) is None


def test_the_place_in_line_is_read_from_kueues_pending_workloads_summary() -> None:
    held = {"metadata": {"name": "job-a-1"}, "spec": {"queueName": "gpu-nvidia-l4"},
            "status": {"conditions": [{"type": "QuotaReserved", "status": "False", "message": WAIT}]}}
    summary = {"items": [{"metadata": {"name": "job-b-2"}, "positionInLocalQueue": 0, "positionInClusterQueue": 0},
                         {"metadata": {"name": "job-a-1"}, "positionInLocalQueue": 3, "positionInClusterQueue": 7}]}
    assert waiting_for_quota(held)
    position = queue_position(summary, "job-a-1")
    assert position == QueuePosition(local_queue=3, cluster_queue=7)
    assert workload_wait(held, position) == f"{WAIT} (number 4 in queue gpu-nvidia-l4, 8 in its cluster queue)"
    assert queue_position(summary, "job-c-3") is None and queue_position({}, "job-a-1") is None
    admitted = {**held, "status": {"conditions": [{"type": "QuotaReserved", "status": "True"},
                                                  {"type": "Admitted", "status": "False", "message": "checks"}]}}
    assert not waiting_for_quota(admitted)  # holds quota: Kueue lists it no longer, and it has no place in line
