"""What an edit of a Dataset's or Model's spec starts: a new load or run only when it changes what is loaded or
trained. Any other edit (onDelete, keepLast, a schedule), and a refusal fixed since, keep how the last one ended,
even once its Job is gone (its 7-day TTL): no Job restarts, no GPU trains the same thing again."""

from typing import Any

import pytest

from modelplane.api.dataset import DatasetSpec
from modelplane.api.reasons import Reason
from modelplane.reconcile.artifacts import Observed, reconcile
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
