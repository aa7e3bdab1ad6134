"""Versions, promotion and rollback, branch by branch: the pure reconcilers of the retraining loop."""

from typing import Any

import pytest
from kubernetes.client import (
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodTemplateSpec,
)

from modelplane.api.common import Artifacts
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import Evaluation
from modelplane.operator.kube import rollout_state
from modelplane.operator.observe.artifacts import finite_metrics
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import JobState, RefState, RolloutState
from modelplane.reconcile.server import ServerObserved, reconcile_server
from modelplane.reconcile.versions import diff, digest, judge
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.scenarios import (
    DATA_V1,
    DATA_V2,
    FEED,
    FILES,
    MORE,
    NIGHTLY,
    SERVER,
    T0,
    T1,
    T2,
    TRAINER,
    load,
    ready_of,
    reloading,
    run,
    serve,
)
from tests.support.wire import wire


def test_each_load_is_a_version_and_an_unchanged_load_is_none() -> None:
    first = load({}, 1, FILES, T0)
    assert ready_of(first)["reason"] == "Loaded" and first.status["latestVersion"] == 1
    assert first.status["versions"][0]["digest"] == digest(FILES) and first.writes.keys() == {
        "ml/datasets/feed/v1.manifest.json"}
    same = load(first.status, 2, list(reversed(FILES)), T1)  # the same files, listed in another order
    assert ready_of(same)["reason"] == "Unchanged" and same.status["latestVersion"] == 1
    assert same.deletes == ["ml/datasets/feed/v2/"] and same.writes == {}
    changed = load(same.status, 3, MORE, T2)
    assert changed.status["latestVersion"] == 2 and [v["version"] for v in changed.status["versions"]] == [1, 2]
    assert changed.status["artifacts"]["url"] == "gs://modelplane-dev-artifacts/ml/datasets/feed/v2/"


def test_keep_last_deletes_old_versions_no_model_was_trained_on() -> None:
    status: dict[str, Any] = {}
    spec = FEED.model_copy(update={"keep_last": 2})
    deleted: list[str] = []
    for generation in (1, 2, 3, 4):
        who = owner("Dataset", "feed", generation)
        started = reconcile(who, reloading(spec, f"r{generation}"), status, DEV_CLUSTER, Observed(), T0).status
        manifest = [{"name": "train.csv", "size": generation, "md5": str(generation)}]
        done = reconcile(who, spec, started, DEV_CLUSTER, Observed(job=JobState(succeeded=True), manifest=manifest,
                                                                    in_use=frozenset({1})), T0)
        status, deleted = done.status, [*deleted, *done.deletes]
    assert [v["version"] for v in status["versions"]] == [3, 4]
    assert deleted == ["ml/datasets/feed/v2/"]  # v1 stays: a Model version was trained on it


def test_the_diff_between_versions_names_what_changed() -> None:
    assert diff(FILES, MORE, 1, 2) == {"from": 1, "to": 2, "added": ["extra.csv"], "changed": ["train.csv"],
                                       "removed": []}
    assert diff(None, FILES, None, 1)["added"] == ["eval.csv", "train.csv"]


@pytest.mark.parametrize(("candidate", "champion", "promoted", "why"), [
    ({"accuracy": 0.8}, None, True, "first version"),
    ({"accuracy": 0.9}, {"accuracy": 0.8}, True, "beats the champion's 0.8"),
    ({"accuracy": 0.7}, {"accuracy": 0.8}, False, "against the champion's 0.8"),
    ({"accuracy": 0.4}, None, False, "misses the threshold 0.5"),
    ({"loss": 0.1}, None, False, "metrics.json has no 'accuracy'"),
])
def test_promotion_needs_thresholds_and_a_better_first_metric(candidate: dict[str, float],
                                                              champion: dict[str, float] | None, promoted: bool,
                                                              why: str) -> None:
    verdict = judge(TRAINER.evaluation, candidate, champion)
    assert verdict.promote is promoted and why in verdict.reason


def test_a_margin_and_a_metric_to_minimize() -> None:
    evaluation = Evaluation.model_validate({"metrics": [{"name": "loss", "goal": "minimize"}],
                                            "minImprovement": 0.05})
    assert not judge(evaluation, {"loss": 0.48}, {"loss": 0.5}).promote  # better, but by less than the margin
    assert judge(evaluation, {"loss": 0.4}, {"loss": 0.5}).promote


def test_new_data_retrains_from_the_champion_and_only_a_better_version_is_promoted() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    assert first.status["champion"] == 1 and ready_of(first)["reason"] == "Trained"
    (record,) = [c for c in first.children if c["kind"] == "ModelVersion"]
    assert record["spec"]["dataset"] == {"name": "feed", "version": 1, "digest": "d1"}
    idle = reconcile(owner("Model", "clf"), TRAINER, first.status, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}),
                     T1)
    assert idle.children == []  # no new data: no run

    started, better = run(first.status, DATA_V2, {"accuracy": 0.9}, T1)
    job = next(c for c in started.children if c["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "only-dir=ml/models/clf/v1" in volumes[mounts["/content/model"]["name"]]["csi"]["volumeAttributes"][
        "mountOptions"]  # warm start from the champion
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert (env["MODELPLANE_MODEL_VERSION"], env["MODELPLANE_PARENT_VERSION"], env["MODELPLANE_DATASET_VERSION"]) \
        == ("2", "1", "2")
    assert better.status["champion"] == 2 and better.status["artifacts"]["url"] == "gs://b/ml/models/clf/v2/"

    _, worse = run(better.status, RefState(**{**DATA_V2.__dict__, "version": 3, "digest": "d3"}),
                   {"accuracy": 0.6}, T2)
    assert worse.status["latestVersion"] == 3 and worse.status["champion"] == 2
    assert worse.status["artifacts"]["url"] == "gs://b/ml/models/clf/v2/"  # servers keep the champion
    assert "not promoted" in worse.status["versions"][-1]["verdict"]


def test_a_pinned_champion_rolls_back_without_a_run() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    _, second = run(first.status, DATA_V2, {"accuracy": 0.9}, T1)
    pinned = TRAINER.model_copy(update={"champion": 1})
    back = reconcile(owner("Model", "clf", 2), pinned, second.status, DEV_CLUSTER, Observed(
        refs={"dataset": DATA_V2}, pinned=Artifacts(url="gs://b/ml/models/clf/v1/")), T2)
    assert back.children == [] and back.status["champion"] == 1
    assert back.status["artifacts"]["url"] == "gs://b/ml/models/clf/v1/"


def test_the_server_follows_the_champion_and_rolls_back_a_stuck_rollout() -> None:
    done = RolloutState(1, 1, 1, complete=True)
    v1 = serve(serve({}, 1, RolloutState()).status, 1, done)
    assert v1.status["servedVersion"] == 1 and v1.status["lastGood"]["version"] == 1
    rolling = serve(v1.status, 2, RolloutState(1, 1, 1, complete=True))  # complete: the old template, still
    assert rolling.status["lastGood"]["version"] == 1
    assert rolling.status["servedVersion"] == 2 and ready_of(rolling)["reason"] == "Serving"
    deployment = next(c for c in rolling.children if c["kind"] == "Deployment")
    assert deployment["spec"]["progressDeadlineSeconds"] == 600
    stuck = serve(rolling.status, 2, RolloutState(2, 1, 1, stuck=True))
    assert ready_of(stuck)["reason"] == "RolledBack" and stuck.status["servedVersion"] == 1
    assert stuck.status["rejected"] == [2] and "version 2 did not become ready within 600s" in ready_of(stuck)[
        "message"]
    again = serve(stuck.status, 2, done)
    assert again.status["servedVersion"] == 1 and ready_of(again)["reason"] == "RolledBack"  # 2 is not retried
    newer = serve(again.status, 3, RolloutState(1, 1, 1))
    assert newer.status["servedVersion"] == 3  # a new champion is rolled to


def test_a_finished_run_is_recorded_before_a_new_spec_starts_the_next() -> None:
    who = owner("Model", "clf")
    started = reconcile(who, TRAINER, {}, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}), T0)
    changed = TRAINER.model_copy(update={"params": {"epochs": 9}})
    first = reconcile(owner("Model", "clf", 2), changed, started.status, DEV_CLUSTER, Observed(
        job=JobState(succeeded=True), refs={"dataset": DATA_V1}, metrics={"accuracy": 0.8}), T1)
    assert first.status["latestVersion"] == 1 and any(c["kind"] == "ModelVersion" for c in first.children)
    second = reconcile(owner("Model", "clf", 2), changed, first.status, DEV_CLUSTER,
                       Observed(refs={"dataset": DATA_V1}), T1)
    assert second.status["run"]["version"] == 2 and second.status["run"]["trigger"] == "the spec changed"


def test_a_schedule_loads_once_when_due_even_after_days_of_downtime() -> None:
    first = load({}, 1, FILES, "2026-11-24T10:00:00+00:00")
    idle = reconcile(owner("Dataset", "feed"), NIGHTLY, first.status, DEV_CLUSTER, Observed(),
                     "2026-11-24T12:00:00+00:00")
    assert idle.children == [] and idle.requeue_after == 14 * 3600  # 03:00 in Berlin is 02:00 UTC, 14h after 12:00
    late = reconcile(owner("Dataset", "feed"), NIGHTLY, first.status, DEV_CLUSTER, Observed(),
                     "2026-11-28T09:00:00+00:00")  # four nights missed: one load, not four
    assert [c["kind"] for c in late.children] == ["ConfigMap", "Job"]
    assert late.status["load"]["trigger"] == "schedule 0 3 * * *" and late.status["load"]["number"] == 2
    while_running = reconcile(owner("Dataset", "feed"), NIGHTLY, late.status, DEV_CLUSTER,
                              Observed(job=JobState(active=1)), "2026-11-29T09:00:00+00:00")
    assert while_running.children == []  # one load at a time


@pytest.mark.parametrize(("schedule", "named"), [({"cron": "0 25 * * *"}, "spec.schedule"),
                                                 ({"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}, "Mars")])
def test_a_schedule_the_operator_cannot_follow_is_an_invalid_spec(schedule: dict[str, str], named: str) -> None:
    spec = DatasetSpec.model_validate({"image": "loader:1", "schedule": schedule})
    outcome = reconcile(owner("Dataset", "feed"), spec, {}, DEV_CLUSTER, Observed(), T0)
    assert ready_of(outcome)["reason"] == "InvalidSpec" and named in ready_of(outcome)["message"]
    assert outcome.children == []


# Regressions from review: each once let the loop lose its way.

def test_a_pin_moves_the_champion_even_when_the_last_runs_job_is_gone() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    _, second = run(first.status, DATA_V2, {"accuracy": 0.9}, T1)
    pinned = TRAINER.model_copy(update={"champion": 1})
    back = reconcile(owner("Model", "clf", 2), pinned, second.status, DEV_CLUSTER, Observed(
        job=None, refs={"dataset": DATA_V2}, pinned=Artifacts(url="gs://b/ml/models/clf/v1/")), T2)  # TTL took it
    assert back.status["champion"] == 1 and ready_of(back)["status"] == "True" and back.children == []


def test_a_second_load_waits_for_the_first() -> None:
    who = owner("Dataset", "feed")
    loading = reconcile(who, FEED, {}, DEV_CLUSTER, Observed(), T0).status
    edited = reconcile(owner("Dataset", "feed", 2), FEED, loading, DEV_CLUSTER, Observed(job=JobState(active=1)), T1)
    assert edited.children == [] and edited.status["load"]["number"] == 1  # no second Job into the same prefix


def test_a_failed_load_leaves_no_files_for_the_next() -> None:
    who = owner("Dataset", "feed")
    loading = reconcile(who, FEED, {}, DEV_CLUSTER, Observed(), T0).status
    failed = reconcile(who, FEED, loading, DEV_CLUSTER, Observed(job=JobState(failed=True)), T1)
    assert ready_of(failed)["reason"] == "JobFailed" and failed.deletes == ["ml/datasets/feed/v1/"]


def test_the_champions_summary_outlives_the_newest_fifty() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.9}, T0)
    status = first.status
    for version in range(2, 60):
        data = RefState(found=True, ready=True, url=f"gs://b/ml/datasets/feed/v{version}/", version=version)
        status = run(status, data, {"accuracy": 0.5 + version / 1000}, T0)[1].status  # never better than v1
    assert status["champion"] == 1 and status["versions"][0]["version"] == 1 and len(status["versions"]) == 50


def test_the_server_keeps_its_rollback_state_through_an_early_answer() -> None:
    v1 = serve(serve({}, 1, RolloutState()).status, 1, RolloutState(1, 1, 1, complete=True))
    stuck = serve(serve(v1.status, 2, RolloutState(1, 1, 1)).status, 2, RolloutState(2, 1, 1, stuck=True))
    gone = reconcile_server(owner("ModelServer", "srv"), SERVER, stuck.status, DEV_CLUSTER,
                            ServerObserved(model=RefState(found=False)), T1)
    assert gone.status["rejected"] == [2] and gone.status["lastGood"]["version"] == 1


def test_the_lineage_names_the_digest_of_the_version_trained_on() -> None:
    started, _ = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    newer = RefState(**{**DATA_V1.__dict__, "version": 2, "digest": "d2"})  # v2 arrived while v1 trained
    done = reconcile(owner("Model", "clf"), TRAINER, started.status, DEV_CLUSTER, Observed(
        job=JobState(succeeded=True), refs={"dataset": newer}, metrics={"accuracy": 0.8},
        data_manifests={1: FILES}), T1)
    (record,) = [c for c in done.children if c["kind"] == "ModelVersion"]
    assert record["spec"]["dataset"] == {"name": "feed", "version": 1, "digest": digest(FILES)}


def test_nan_metrics_are_dropped_before_promotion() -> None:
    assert finite_metrics({"accuracy": float("nan"), "loss": float("inf"), "f1": 0.5, "ok": True}) == {"f1": 0.5}
    assert not judge(TRAINER.evaluation, finite_metrics({"accuracy": float("nan")}), None).promote


def deployment(generation: int, observed: int, reason: str) -> dict[str, Any]:
    """A Deployment as the API server sends it (the client's typed model, serialised)."""
    return wire(V1Deployment(metadata=V1ObjectMeta(generation=generation), spec=V1DeploymentSpec(
        selector=V1LabelSelector(), template=V1PodTemplateSpec()), status=V1DeploymentStatus(
        observed_generation=observed, replicas=1, ready_replicas=1, available_replicas=1,
        conditions=[V1DeploymentCondition(type="Progressing", status="False", reason=reason)])))


@pytest.mark.parametrize(("generation", "observed", "reason", "complete", "stuck"), [
    (3, 3, "NewReplicaSetAvailable", True, False),
    (3, 3, "ProgressDeadlineExceeded", False, True),
    (4, 3, "ProgressDeadlineExceeded", False, False),  # the controller has not seen the new template yet
    (4, 3, "NewReplicaSetAvailable", False, False),  # done, but with the old template
    (3, 3, "ReplicaSetUpdated", False, False),  # still rolling
])
def test_a_rollout_is_read_as_kubectl_rollout_status_reads_it(generation: int, observed: int, reason: str,
                                                              complete: bool, stuck: bool) -> None:
    state = rollout_state(deployment(generation, observed, reason))
    assert (state.complete, state.stuck) == (complete, stuck)
