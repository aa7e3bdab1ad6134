"""A status write is a JSON merge patch: the API server merges it into the status it holds, so a key the patch
leaves out stays. What the operator sends must turn the status it read into the status it decided, exactly, merged
as the API server merges (tests/support/merge_patch.py, a port of the RFC's algorithm): the next run's record must
not inherit the last run's `ended`, `parent` or `nodes` (a single-node run read as a JobSet's, a lineage naming a
parent it never had)."""

from typing import Any

import pytest

from modelplane.api.model import ModelSpec
from modelplane.api.notebook import NotebookSpec
from modelplane.operator.kube import merge_patch
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import RefState, RolloutState
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.merge_patch import apply_merge_patch
from tests.support.scenarios import DATA_V1, DATA_V2, T0, T1, TRAINER, run


def next_run_from_base() -> tuple[dict[str, Any], dict[str, Any]]:
    """A retrain from the champion, recorded; then, retrain.from set to base, the next run starts with no parent."""
    _, first = run({}, DATA_V1, {"accuracy": 0.8}, T0)
    _, second = run(first.status, DATA_V2, {"accuracy": 0.9}, T1)
    assert second.status["run"]["parent"] == 1 and "ended" in second.status["run"]
    from_base = ModelSpec.model_validate({**TRAINER.model_dump(by_alias=True), "retrain": {"from": "base"}})
    started = reconcile(owner("Model", "clf", 2), from_base, second.status, DEV_CLUSTER,
                        Observed(refs={"dataset": DATA_V2}), T1)
    assert started.status["run"]["version"] == 3
    return second.status, started.status


def test_the_next_runs_record_keeps_nothing_of_the_last() -> None:
    before, after = next_run_from_base()
    assert apply_merge_patch(before, merge_patch(before, after)) == after
    whole = apply_merge_patch(before, after)  # the whole new status as the patch, as the operator sent it
    assert {"parent", "ended"} <= whole["run"].keys()


@pytest.mark.parametrize(("before", "after", "patch"), [
    ({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}, {}),
    ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}}, {"a": None, "b": {"d": None}}),
    ({"l": [1, 2], "n": {"x": 1}}, {"l": [2], "n": 5}, {"l": [2], "n": 5}),
    ({"n": 5}, {"n": {"x": 1}}, {"n": {"x": 1}}),
])
def test_a_patch_names_only_what_changed_and_none_for_what_went(before: dict[str, Any], after: dict[str, Any],
                                                                patch: dict[str, Any]) -> None:
    assert merge_patch(before, after) == patch
    assert apply_merge_patch(before, patch) == after


def test_an_early_answer_keeps_what_the_running_pod_is_in_the_status() -> None:
    """A notebook whose Model is missing a moment (renamed, recreated) keeps its pod running, and its status keeps
    what `kubectl notebook` reads of it: a patch of what changed would have deleted the token Secret, the workspace
    and the activity log the heartbeat writes to (and the notebook then suspended for idleness while in use)."""
    spec = NotebookSpec.model_validate({"model": {"name": "m"}, "idle": {"timeoutMinutes": 60}})
    model = {"model": RefState(found=True, ready=True, url="gs://b/ml/models/m/v1/")}
    running = reconcile_notebook(owner("Notebook", "nb"), spec, {}, DEV_CLUSTER,
                                 NotebookObserved(refs=model, pods=RolloutState(1, 1, 1)), T0).status
    assert {"pod", "port", "tokenSecret", "workspace", "activity"} <= running.keys()
    waiting = reconcile_notebook(owner("Notebook", "nb"), spec, running, DEV_CLUSTER, NotebookObserved(), T1).status
    assert not [key for key, value in merge_patch(running, waiting).items() if value is None]


def test_none_for_a_field_that_is_not_there_is_no_change() -> None:
    """A suspended notebook answers pod=None on every sync: with no pod in the status, that is nothing to write (it
    was a PATCH each time)."""
    assert merge_patch({"ready": False}, {"ready": False, "pod": None}) == {}
    assert merge_patch({"ready": False, "pod": "nb-0"}, {"ready": False, "pod": None}) == {"pod": None}
