"""What an edit of a Dataset's or Model's spec starts: a new load or run only when it changes what is loaded or
trained. Any other edit (onDelete, keepLast, a schedule), and a refusal fixed since, keep how the last one ended,
even once its Job is gone (its 7-day TTL): no Job restarts, no GPU trains the same thing again."""

from typing import Any

import pytest

from modelplane.api.dataset import DatasetSpec
from modelplane.api.reasons import Reason
from modelplane.reconcile.artifacts import Observed, reconcile, settled, stamp_endings
from modelplane.reconcile.build import BuildObserved
from modelplane.reconcile.common import JobState, Outcome, failed_status
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.scenarios import (
    DATA_V1,
    DATA_V2,
    FEED,
    FILES,
    NIGHTLY,
    T0,
    T1,
    T2,
    TRAINER,
    load,
    ready_of,
    reloading,
    run,
)


def kinds(outcome: Outcome) -> list[str]:
    return [child["kind"] for child in outcome.children]


def ready_of_status(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def loaded_feed() -> dict[str, Any]:
    first = load({}, 1, FILES, T0)
    assert ready_of(first)["reason"] == Reason.LOADED
    return first.status


@pytest.mark.parametrize("edit", [{"on_delete": "Delete"}, {"keep_last": 3}, {"schedule": NIGHTLY.schedule}])
def test_a_dataset_edit_that_loads_nothing_new_keeps_its_version(edit: dict[str, Any]) -> None:
    status = loaded_feed()
    after = reconcile(owner("Dataset", "feed", 2), FEED.model_copy(update=edit), status, DEV_CLUSTER, Observed(), T1)
    assert kinds(after) == [] and after.writes == {} and after.deletes == []
    assert ready_of(after)["status"] == "True" and ready_of(after)["reason"] == Reason.LOADED
    assert after.status["observedGeneration"] == 2 and after.status["load"] == status["load"]


@pytest.mark.parametrize(("spec", "trigger"), [
    (FEED.model_copy(update={"params": {"source": "/other"}}), "the spec changed"),
    (reloading(FEED, "r1"), "reload requested")])
def test_a_dataset_loads_again_when_what_it_loads_changes(spec: DatasetSpec, trigger: str) -> None:
    again = reconcile(owner("Dataset", "feed", 2), spec, loaded_feed(), DEV_CLUSTER, Observed(), T1)
    assert kinds(again) == ["ConfigMap", "Job"]
    assert again.status["load"]["number"] == 2 and again.status["load"]["trigger"] == trigger


def test_a_load_recorded_before_loads_had_a_digest_loads_again_at_any_edit_as_then() -> None:
    status = loaded_feed()
    before = {**status, "load": {k: v for k, v in status["load"].items() if k not in ("specDigest", "ended")}}
    edited = FEED.model_copy(update={"on_delete": "Delete"})
    assert kinds(reconcile(owner("Dataset", "feed", 2), edited, before, DEV_CLUSTER, Observed(), T1)) == [
        "ConfigMap", "Job"]


def test_a_dataset_schedule_fixed_after_a_refusal_loads_nothing_and_says_loaded_again() -> None:
    status = loaded_feed()
    wrong = DatasetSpec.model_validate({**FEED.model_dump(by_alias=True), "schedule": {"cron": "0 25 * * *"}})
    refused = reconcile(owner("Dataset", "feed", 2), wrong, status, DEV_CLUSTER, Observed(), T1)
    assert ready_of(refused)["reason"] == Reason.INVALID_SPEC
    fixed = reconcile(owner("Dataset", "feed", 3), NIGHTLY, refused.status, DEV_CLUSTER, Observed(), T2)
    assert kinds(fixed) == [] and ready_of(fixed)["reason"] == Reason.LOADED
    assert ready_of(fixed)["message"] == ready_of(load({}, 1, FILES, T0))["message"]


def test_a_models_on_delete_is_not_a_new_spec_even_in_a_digest_recorded_before() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    deleting = TRAINER.model_copy(update={"on_delete": "Delete"})
    flipped = reconcile(owner("Model", "clf", 2), deleting, first.status, DEV_CLUSTER,
                        Observed(refs={"dataset": DATA_V1}), T1)  # the run's Job is gone
    assert kinds(flipped) == [] and ready_of(flipped)["reason"] == Reason.TRAINED
    assert flipped.status["observedGeneration"] == 2 and flipped.status["run"] == first.status["run"]
    # The digest the operator before this change (commit 9495e98) recorded for TRAINER with onDelete: Delete:
    before = {**first.status, "run": {**first.status["run"], "specDigest": "bf595874e16396a6"}}
    for spec in (deleting, TRAINER):
        assert kinds(reconcile(owner("Model", "clf", 3), spec, before, DEV_CLUSTER,
                               Observed(refs={"dataset": DATA_V1}), T1)) == []
    retuned = TRAINER.model_copy(update={"params": {"epochs": 9}})
    again = reconcile(owner("Model", "clf", 3), retuned, before, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}), T1)
    assert kinds(again) == ["ConfigMap", "Job"] and again.status["run"]["trigger"] == "the spec changed"


def test_a_refusal_fixed_since_does_not_hide_how_the_run_ended() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    refused = failed_status(first.status, 2, Reason.INVALID_SPEC, "spec.params: bad", T1)  # as sync() writes it
    fixed = reconcile(owner("Model", "clf", 3), TRAINER, refused, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}),
                      T2)
    assert kinds(fixed) == [] and ready_of(fixed)["status"] == "True"  # it said True with reason InvalidSpec
    assert (ready_of(fixed)["reason"], ready_of(fixed)["message"]) == (Reason.TRAINED, ready_of(first)["message"])


def test_a_failed_run_stays_failed_after_a_refusal_once_its_job_is_gone_and_new_data_retrains() -> None:
    who = owner("Model", "clf")
    started = reconcile(who, TRAINER, {}, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}), T0)
    failed = reconcile(who, TRAINER, started.status, DEV_CLUSTER, Observed(
        job=JobState(failed=True, message="OOMKilled"), refs={"dataset": DATA_V1}), T0)
    refused = failed_status(failed.status, 2, Reason.GPU_NOT_OFFERED, "no nvidia-h100-80gb here", T1)
    fixed = reconcile(owner("Model", "clf", 3), TRAINER, refused, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}),
                      T1)  # it read as a run just started ("job started"), for good: new data never retrained it
    assert kinds(fixed) == [] and (ready_of(fixed)["reason"], ready_of(fixed)["message"]) == (Reason.JOB_FAILED,
                                                                                          "OOMKilled")
    newer = reconcile(owner("Model", "clf", 3), TRAINER, fixed.status, DEV_CLUSTER,
                      Observed(refs={"dataset": DATA_V2}), T2)
    assert kinds(newer) == ["ConfigMap", "Job"] and newer.status["run"]["trigger"].startswith("new data")


# Regressions from review: loads and runs in progress, and records an earlier operator wrote.

RUNNING = JobState(active=1)


def test_an_invalid_spec_fixed_while_a_load_runs_starts_no_second_load_into_its_version() -> None:
    started = reconcile(owner("Dataset", "feed", 1), FEED, {}, DEV_CLUSTER, Observed(), T0).status
    refused = failed_status(started, 2, Reason.INVALID_SPEC, "spec.params: bad", T1)  # as sync() writes it
    fixed = FEED.model_copy(update={"params": {"source": "/other"}})
    again = reconcile(owner("Dataset", "feed", 3), fixed, refused, DEV_CLUSTER, Observed(job=RUNNING), T1)
    assert kinds(again) == [] and again.status["load"]["number"] == 1


def test_a_build_that_failed_and_was_reverted_while_a_load_runs_ends_nothing() -> None:
    """BuildFailed is the next generation's build's, not the running load's ending: reverted to the image built
    already, the load still runs, and is recorded when its Job ends."""
    built = DatasetSpec.model_validate({"build": {"git": {"url": "https://g/x", "ref": "a"}}, "params": {"s": 1}})
    broken = DatasetSpec.model_validate({"build": {"git": {"url": "https://g/x", "ref": "b"}}, "params": {"s": 1}})
    who = owner("Dataset", "feed", 1)
    status = reconcile(who, built, {}, DEV_CLUSTER, Observed(), T0).status
    status = reconcile(who, built, status, DEV_CLUSTER, Observed(build=BuildObserved(job=JobState(succeeded=True))),
                       T0).status
    edited = owner("Dataset", "feed", 2)
    status = reconcile(edited, broken, status, DEV_CLUSTER, Observed(job=RUNNING), T1).status
    status = reconcile(edited, broken, stamp_endings(status), DEV_CLUSTER,
                       Observed(job=RUNNING, build=BuildObserved(job=JobState(failed=True))), T1).status
    assert ready_of_status(status)["reason"] == Reason.BUILD_FAILED
    reverted = owner("Dataset", "feed", 3)
    running = reconcile(reverted, built, stamp_endings(status), DEV_CLUSTER, Observed(job=RUNNING), T2)
    assert ready_of(running)["reason"] == Reason.LOADING and not settled(reverted, running.status)
    done = reconcile(reverted, built, running.status, DEV_CLUSTER,
                     Observed(job=JobState(succeeded=True), manifest=FILES), T2)
    assert ready_of(done)["reason"] == Reason.LOADED and done.status["latestVersion"] == 1


@pytest.mark.parametrize("started_by_an_earlier_operator", [False, True])
def test_an_edit_while_a_load_runs_is_loaded_once_it_ends(started_by_an_earlier_operator: bool) -> None:
    """The load that ran is recorded as its own generation's (observedGeneration 1, not 2: not settled, not at
    rest), with the image it ran, and the next sync loads the edit. A load without a digest (an earlier operator's)
    takes any edit for one, as its trigger does."""
    started = reconcile(owner("Dataset", "feed", 1), FEED, {}, DEV_CLUSTER, Observed(), T0).status
    if started_by_an_earlier_operator:
        started = earlier_operators(started)
    edited, who = FEED.model_copy(update={"params": {"source": "/other"}, "image": "loader:2"}), owner("Dataset",
                                                                                                       "feed", 2)
    running = reconcile(who, edited, started, DEV_CLUSTER, Observed(job=RUNNING), T1)
    assert kinds(running) == [] and running.status["observedGeneration"] == 1  # the edit waits: one load at a time
    done = reconcile(who, edited, running.status, DEV_CLUSTER, Observed(job=JobState(succeeded=True), manifest=FILES),
                     T1)
    assert done.status["latestVersion"] == 1 and done.status["observedGeneration"] == 1
    assert not settled(who, done.status)
    if not started_by_an_earlier_operator:  # it recorded no image
        assert done.status["versions"][0]["image"] == done.status["image"] == "loader:1"
    after = reconcile(who, edited, done.status, DEV_CLUSTER, Observed(), T2)
    assert kinds(after) == ["ConfigMap", "Job"] and after.status["load"]["version"] == 2
    assert after.status["observedGeneration"] == 2


def earlier_operators(status: dict[str, Any]) -> dict[str, Any]:
    """A status as the operator before records kept their ending and loads their digest wrote it."""
    return {**status, **{name: {k: v for k, v in status[name].items() if k not in ("specDigest", "ended")}
                         for name in ("load", "run") if name in status}}


@pytest.mark.parametrize("upgraded_first", [True, False])
def test_a_load_an_earlier_operator_recorded_keeps_its_data_through_a_refusal(upgraded_first: bool) -> None:
    """Recorded by the earlier operator, then an edit refused (GPUNotOffered replaces Ready: by this operator, which
    stamps the ending first as sync() does, or by the earlier one), then fixed: its Job, still there (7-day TTL),
    is not read again as a load that just succeeded (it was taken for an unchanged load, and v1's data deleted)."""
    status = earlier_operators(loaded_feed())
    refused = failed_status(stamp_endings(status) if upgraded_first else status, 2, Reason.GPU_NOT_OFFERED, "no h100",
                            T1)
    fixed = FEED.model_copy(update={"env": {"X": "1"}})
    out = reconcile(owner("Dataset", "feed", 3), fixed, stamp_endings(refused), DEV_CLUSTER,
                    Observed(job=JobState(succeeded=True), manifest=FILES), T2)
    assert out.deletes == [] and kinds(out) == ["ConfigMap", "Job"] and out.status["load"]["version"] == 2


def test_a_run_an_earlier_operator_recorded_is_stamped_with_its_ending_before_a_refusal_replaces_ready() -> None:
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    upgraded = stamp_endings(earlier_operators(first.status))
    assert upgraded["run"]["ended"] == {"reason": Reason.TRAINED, "message": ready_of(first)["message"]}
    building = {**first.status, "conditions": [{**ready_of(first), "reason": Reason.BUILD_FAILED}]}
    assert "ended" not in stamp_endings(earlier_operators(building))["run"]  # the next build's, not the run's
