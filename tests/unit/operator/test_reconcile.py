"""The reconciler of Datasets and Models, branch by branch: pure data in, children and status out."""

import json
from typing import Any

import pytest

from modelplane.api.common import Artifacts
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import ModelSpec
from modelplane.operator.kube import job_seen, job_state
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import JobState, Outcome, RefState
from tests.support.facts import DEV_CLUSTER, owner

NOW, LATER = "2026-11-24T10:00:00Z", "2026-11-24T10:05:00Z"
LOADER = DatasetSpec.model_validate({"image": "loader:1", "params": {"name": "squad"}})
FINE_TUNE = ModelSpec.model_validate({"image": "trainer:1", "baseModel": {"name": "base"},
                                      "dataset": {"name": "squad"}})
READY_REFS = {"baseModel": RefState(found=True, ready=True, url="gs://b/ml/models/base/v1/"),
              "dataset": RefState(found=True, ready=True, url="gs://b/ml/datasets/squad/v1/")}


def started(kind: str, name: str, spec: ModelSpec | DatasetSpec, generation: int = 1,
            status: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status once the first sync started the object's run (what the next syncs see)."""
    return reconcile(owner(kind, name, generation), spec, status or {}, DEV_CLUSTER, Observed(refs=READY_REFS),
                     NOW).status


def ready_of(outcome: Outcome) -> dict[str, Any]:
    (ready,) = [c for c in outcome.status["conditions"] if c["type"] == "Ready"]
    return dict(ready)


def test_new_dataset_starts_one_loader_job() -> None:
    outcome = reconcile(owner("Dataset", "squad"), LOADER, {}, DEV_CLUSTER, Observed(), NOW)
    assert [c["kind"] for c in outcome.children] == ["ConfigMap", "Job"]
    assert outcome.status["ready"] is False and outcome.status["observedGeneration"] == 1
    assert ready_of(outcome)["reason"] == "Loading" and ready_of(outcome)["observedGeneration"] == 1
    assert outcome.status["source"] == "image loader:1"


def test_succeeded_job_makes_the_dataset_ready_with_its_artifacts() -> None:
    artifacts = Artifacts(url="gs://b/ml/datasets/squad/v1/", files=["train.jsonl"], count=1, size="1.5Ki",
                          bytes=1536)
    before = reconcile(owner("Dataset", "squad"), LOADER, {}, DEV_CLUSTER, Observed(), NOW).status
    outcome = reconcile(owner("Dataset", "squad"), LOADER, before, DEV_CLUSTER,
                        Observed(job=JobState(succeeded=True), artifacts=artifacts), LATER)
    assert outcome.status["ready"] is True
    assert ready_of(outcome)["reason"] == "Loaded" and ready_of(outcome)["lastTransitionTime"] == LATER
    assert outcome.status["artifacts"] == {"url": "gs://b/ml/datasets/squad/v1/", "files": ["train.jsonl"],
                                           "count": 1, "size": "1.5Ki", "bytes": 1536}
    assert ready_of(outcome)["message"] == "version 1: 1 files, 1.5Ki in gs://b/ml/datasets/squad/v1/"


def test_a_settled_generation_never_runs_again() -> None:
    ready = reconcile(owner("Dataset", "squad"), LOADER, started("Dataset", "squad", LOADER), DEV_CLUSTER,
                      Observed(job=JobState(succeeded=True)), NOW).status
    again = reconcile(owner("Dataset", "squad"), LOADER, ready, DEV_CLUSTER, Observed(job=None), LATER)
    assert again == Outcome([], ready)  # the Job may be gone (TTL): still no second load into the prefix


def test_failed_job_reports_the_termination_message_and_stops() -> None:
    outcome = reconcile(owner("Model", "m"), FINE_TUNE, started("Model", "m", FINE_TUNE), DEV_CLUSTER,
                        Observed(job=JobState(failed=True, message="CUDA out of memory"), refs=READY_REFS), NOW)
    assert ready_of(outcome)["reason"] == "JobFailed" and ready_of(outcome)["message"] == "CUDA out of memory"
    again = reconcile(owner("Model", "m"), FINE_TUNE, outcome.status, DEV_CLUSTER, Observed(refs=READY_REFS), LATER)
    assert again.children == []  # no retry storm


def test_a_retraining_run_that_failed_stays_failed_once_its_job_is_gone_and_new_data_retrains() -> None:
    """A Job is deleted 7 days after it finished (its TTL), or by a user. A retraining Model whose last run failed
    then observes no Job: that is not a run just started (it said "Training: job started", with no Job, for good,
    and new data, drift or a request could start nothing more: a run starts only from a final reason). Its outcome
    stays as recorded, and new data starts the next run."""
    retrain = ModelSpec.model_validate({"image": "trainer:1", "baseModel": {"name": "base"},
                                        "dataset": {"name": "squad"}, "retrain": {"cooldownSeconds": 0}})
    failed = reconcile(owner("Model", "m"), retrain, started("Model", "m", retrain), DEV_CLUSTER,
                       Observed(job=JobState(failed=True, message="CUDA out of memory"), refs=READY_REFS), NOW)
    gone = reconcile(owner("Model", "m"), retrain, failed.status, DEV_CLUSTER, Observed(refs=READY_REFS), LATER)
    assert ready_of(gone) == ready_of(failed) and gone.children == []
    newer = {**READY_REFS, "dataset": RefState(found=True, ready=True, url="gs://b/ml/datasets/squad/v2/", version=2)}
    retrained = reconcile(owner("Model", "m"), retrain, gone.status, DEV_CLUSTER, Observed(refs=newer), LATER)
    assert ready_of(retrained)["reason"] == "Training" and "Job" in [c["kind"] for c in retrained.children]


def test_a_new_spec_starts_a_new_run_into_a_new_version() -> None:
    first = reconcile(owner("Model", "m"), FINE_TUNE, started("Model", "m", FINE_TUNE), DEV_CLUSTER,
                      Observed(job=JobState(succeeded=True), refs=READY_REFS), NOW)
    changed = FINE_TUNE.model_copy(update={"params": {"epochs": 2}})
    second = reconcile(owner("Model", "m", generation=2), changed, first.status, DEV_CLUSTER,
                       Observed(refs=READY_REFS), LATER)
    assert ready_of(second)["reason"] == "Training" and second.status["observedGeneration"] == 2
    assert second.children[1]["metadata"]["name"] == "model-m-2"
    (job,) = [c for c in second.children if c["kind"] == "Job"]
    artifacts = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}["artifacts"]
    assert "only-dir=ml/models/m/v2," in artifacts["csi"]["volumeAttributes"]["mountOptions"] + ","
    assert second.status["artifacts"] == first.status["artifacts"]  # the last good weights stay visible


def test_fine_tune_waits_for_missing_and_unready_inputs() -> None:
    missing = reconcile(owner("Model", "m"), FINE_TUNE, {}, DEV_CLUSTER, Observed(), NOW)
    assert ready_of(missing)["reason"] == "BaseModelNotFound" and missing.children == []
    assert "Model 'base' does not exist in namespace ml" in ready_of(missing)["message"]
    waiting = reconcile(owner("Model", "m"), FINE_TUNE, {}, DEV_CLUSTER, Observed(refs={
        "baseModel": READY_REFS["baseModel"], "dataset": RefState(found=True, ready=False)}), NOW)
    assert ready_of(waiting)["reason"] == "DatasetNotReady" and waiting.children == []


def test_fine_tune_mounts_its_inputs_read_only() -> None:
    outcome = reconcile(owner("Model", "m"), FINE_TUNE, {}, DEV_CLUSTER, Observed(refs=READY_REFS), NOW)
    volumes = {v["name"]: v["csi"] for v in outcome.children[1]["spec"]["template"]["spec"]["volumes"]
               if "csi" in v}
    assert "only-dir=ml/models/base/v1" in volumes["basemodel"]["volumeAttributes"]["mountOptions"]
    assert volumes["basemodel"]["readOnly"] and volumes["dataset"]["readOnly"]
    assert not volumes["artifacts"]["readOnly"]
    assert outcome.status["source"] == "trained from base + squad"


def test_gpu_type_the_cluster_lacks_is_refused() -> None:
    spec = DatasetSpec.model_validate({"image": "x", "resources": {"gpu": {"type": "nvidia-h100-80gb"}}})
    outcome = reconcile(owner("Dataset", "d"), spec, {}, DEV_CLUSTER, Observed(), NOW)
    assert outcome.children == [] and ready_of(outcome)["reason"] == "GPUNotOffered"
    assert "offered GPU types: nvidia-l4, nvidia-tesla-a100" in ready_of(outcome)["message"]


@pytest.mark.parametrize("image", [f"{DEV_CLUSTER.registry}-other/model-m:main",
                                   f"{DEV_CLUSTER.registry}/modelplane-operator:0.1.0"])
def test_an_image_from_another_tenants_or_the_platforms_repository_is_refused(image: str) -> None:
    """Nodes may pull from every repository of the stack, so the operator is what keeps tenant ml off them."""
    outcome = reconcile(owner("Dataset", "d"), DatasetSpec.model_validate({"image": image}), {}, DEV_CLUSTER,
                        Observed(), NOW)
    assert outcome.children == [] and ready_of(outcome)["reason"] == "InvalidSpec"
    assert f"not in this namespace's repository {DEV_CLUSTER.registry}-ml" in ready_of(outcome)["message"]


def test_an_image_from_the_tenants_own_repository_runs() -> None:
    spec = DatasetSpec.model_validate({"image": f"{DEV_CLUSTER.registry}-ml/loader:v1"})
    assert reconcile(owner("Dataset", "d"), spec, {}, DEV_CLUSTER, Observed(), NOW).children


def test_transition_time_stays_while_status_does_not_flip() -> None:
    first = reconcile(owner("Dataset", "d"), LOADER, {}, DEV_CLUSTER, Observed(), NOW)
    second = reconcile(owner("Dataset", "d"), LOADER, first.status, DEV_CLUSTER, Observed(job=JobState()), LATER)
    assert ready_of(second)["lastTransitionTime"] == NOW


def test_model_import_is_reported_as_imported() -> None:
    spec = ModelSpec.model_validate({"image": "loader:1", "params": {"name": "tiiuae/falcon-7b"}})
    outcome = reconcile(owner("Model", "falcon"), spec, started("Model", "falcon", spec), DEV_CLUSTER,
                        Observed(job=JobState(succeeded=True)), NOW)
    assert ready_of(outcome)["reason"] == "Imported" and outcome.status["ready"] is True
    assert outcome.status["champion"] == 1  # no evaluation: the first version is the champion
    (record,) = [c for c in outcome.children if c["kind"] == "ModelVersion"]
    assert record["metadata"]["name"] == "falcon-v1" and record["spec"]["version"] == 1
    assert outcome.writes.keys() == {"ml/models/falcon/v1/lineage.json"}


def test_a_run_held_back_by_quota_says_so() -> None:
    outcome = reconcile(owner("Model", "m"), FINE_TUNE, started("Model", "m", FINE_TUNE), DEV_CLUSTER,
                        Observed(job=JobState(), refs=READY_REFS, pods_refused="exceeded quota: modelplane-gpus"), NOW)
    assert ready_of(outcome)["reason"] == "QuotaExceeded" and "modelplane-gpus" in ready_of(outcome)["message"]


@pytest.mark.parametrize("status", [
    {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
    {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                  "message": "Job has reached the specified backoff limit"}]},
    {"active": 1},
    {"startTime": "2026-11-24T10:00:00Z", "completionTime": "2026-11-24T10:05:00Z", "succeeded": 1, "ready": 0,
     "terminating": 0, "uncountedTerminatedPods": {},
     "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": "2026-11-24T10:05:00Z",
                     "lastTransitionTime": "2026-11-24T10:05:00Z"},
                    {"type": "Complete", "status": "True", "lastProbeTime": "2026-11-24T10:05:00Z",
                     "lastTransitionTime": "2026-11-24T10:05:00Z"}]},
], ids=["complete", "failed", "running", "as-the-job-controller-writes-it"])
def test_what_the_watch_keeps_of_a_job_reads_as_the_job_itself(status: dict[str, Any]) -> None:
    """The operator keeps a slim copy of each Job from its watch events (kube.job_seen) and reads it instead of a
    GET: it must give the same outcome, keep what else Kube.job reads, and drop the pod template."""
    (job,) = [c for c in reconcile(owner("Dataset", "squad"), LOADER, {}, DEV_CLUSTER, Observed(), NOW).children
              if c["kind"] == "Job"]
    job = {**job, "metadata": {**job["metadata"], "uid": "u-1"}, "spec": {**job["spec"], "suspend": True},
           "status": status}
    kept = job_seen(job)
    assert job_state(kept) == job_state(job)
    assert kept["metadata"]["uid"] == "u-1" and kept["spec"]["suspend"] is True
    assert "template" not in kept["spec"] and len(json.dumps(kept)) * 4 < len(json.dumps(job))
