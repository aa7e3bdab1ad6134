"""Idle notebooks (spec.idle), decided purely: warned, then suspended, after the timeout; a busy one never; the
workspace stays; the mark holds until removed; the statuses stay within the CRD's schema."""
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelplane.activity.report import ActivityReport
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NotebookSpec
from modelplane.operator.controllers import idle_mark_changed
from modelplane.operator.metrics import Metrics
from modelplane.reconcile.common import Outcome, RolloutState
from modelplane.reconcile.idle import IdleObserved
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from modelplane.reconcile.notices import notices
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.pruning import pruned, status_schema

SPEC = NotebookSpec.model_validate({"idle": {"timeoutMinutes": 60, "warningMinutes": 10},
                                    "resources": {"gpu": {"type": "nvidia-l4"}}})
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
RUNNING = RolloutState(1, 1, 1)


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(last_minutes: float, reported_minutes: float, busy: bool = False) -> ActivityReport:
    return ActivityReport(reported_at=START + timedelta(minutes=reported_minutes), started=START,
                          last_activity=START + timedelta(minutes=last_minutes), busy=busy, kernels=1)
NOTHING = IdleObserved()


def sync(status: dict[str, Any], minutes: float, idle: IdleObserved = NOTHING) -> Outcome:
    return reconcile_notebook(owner("Notebook", "nb"), SPEC, status, DEV_CLUSTER,
                              NotebookObserved(pods=RUNNING, idle=idle), at(minutes))


def statefulset(outcome: Outcome) -> dict[str, Any]:
    (sts,) = [c for c in outcome.children if c["kind"] == "StatefulSet"]
    return sts


def reasons(before: dict[str, Any], after: dict[str, Any], minutes: float) -> list[str]:
    return [n.reason for n in notices(before, after, at(0), at(minutes))]


def run_idle(idle: IdleObserved) -> list[tuple[float, Outcome]]:
    """Syncs at the times the operator asks for (requeue_after), from the pod's first Ready, for three hours."""
    outcomes: list[tuple[float, Outcome]] = []
    status: dict[str, Any] = {}
    minutes = 0.0
    while minutes < 180:
        outcome = sync(status, minutes, idle)
        outcomes.append((minutes, outcome))
        if outcome.annotations or outcome.requeue_after is None:
            break
        status = {k: v for k, v in outcome.status.items() if v is not None}
        minutes += outcome.requeue_after / 60
    return outcomes


def test_an_idle_notebook_is_warned_then_suspended_and_keeps_its_workspace() -> None:
    # Jupyter's kernel last did something 5 minutes after the start; the sidecar keeps reporting it.
    outcomes = run_idle(IdleObserved(report=report(5, 0)))
    times = [minutes for minutes, _ in outcomes]
    assert times == [0, 55, 65]  # the clock starts at Ready; warned at 65 - 10; suspended at 5 + 60
    (_, first), (_, warned), (_, suspended) = outcomes
    assert first.status["idle"] == {"since": at(0), "lastActivity": at(5)} and first.requeue_after == 55 * 60
    assert warned.status["idle"]["suspendAt"] == at(65) and not warned.annotations
    assert statefulset(warned)["spec"]["replicas"] == 1
    assert reasons(first.status, warned.status, 55) == ["IdleWarning"]

    assert suspended.annotations == {IDLE_SUSPENDED_ANNOTATION: at(65)}
    assert statefulset(suspended)["spec"]["replicas"] == 0
    assert suspended.status["conditions"][0]["reason"] == "IdleSuspended" and suspended.status["pod"] is None
    assert "kubectl notebook nb" in suspended.status["conditions"][0]["message"]
    assert [n.reason for n in notices(warned.status, suspended.status, at(0), at(65))] == ["IdleSuspended"]
    # The workspace is the same read-write bucket mount, and the object says where it is.
    running_volumes, suspended_volumes = (statefulset(o)["spec"]["template"]["spec"]["volumes"]
                                          for o in (first, suspended))
    assert running_volumes == suspended_volumes
    assert suspended.status["workspace"] == f"gs://{DEV_CLUSTER.bucket}/ml/notebooks/nb/workspace/"


def test_the_suspension_is_counted() -> None:
    metrics = Metrics()
    outcomes = run_idle(IdleObserved(report=report(5, 0)))
    for (_, before), (minutes, after) in itertools.pairwise(outcomes):
        for notice in notices(before.status, after.status, at(0), at(minutes)):
            metrics.noticed("Notebook", notice)
    assert metrics.registry.get_sample_value("modelplane_notebook_culls_total") == 1.0


def test_once_marked_it_stays_suspended_until_the_mark_is_removed_then_counts_from_ready() -> None:
    marked = IdleObserved(suspended_at=at(65))
    held = sync({"idle": {"lastActivity": at(5), "suspendAt": at(65)}}, 300, marked)
    assert statefulset(held)["spec"]["replicas"] == 0 and held.requeue_after is None
    assert held.status["idle"] == {"lastActivity": at(5), "suspendedAt": at(65), "suspendAt": None}
    assert idle_mark_changed({"metadata": {"name": "nb", "annotations": {IDLE_SUSPENDED_ANNOTATION: at(65)}},
                              "status": {"idle": {"suspendedAt": at(65)}}}) == []
    # `kubectl notebook nb` removed the mark: the watch event alone (no new generation) queues the notebook.
    stored = {**held.status, "idle": {"lastActivity": at(5), "suspendedAt": at(65)}}
    assert idle_mark_changed({"metadata": {"name": "nb"}, "status": stored}) == [("Notebook", "nb")]
    starting = reconcile_notebook(owner("Notebook", "nb"), SPEC, stored, DEV_CLUSTER,
                                  NotebookObserved(pods=RolloutState(), idle=IdleObserved(report=report(5, 60))),
                                  at(300))
    assert statefulset(starting)["spec"]["replicas"] == 1 and not starting.annotations
    assert starting.status["idle"]["suspendedAt"] is None and "since" not in starting.status["idle"]
    # Ready again: the old report (idle since minute 5) does not suspend it; a full timeout starts now.
    ready = sync({**starting.status, "idle": {"lastActivity": at(5)}}, 302, IdleObserved(report=report(5, 60)))
    assert ready.status["idle"]["since"] == at(302) and ready.requeue_after == 50 * 60


@pytest.mark.parametrize("case", ["a kernel busy", "recent kernel or terminal activity",
                                  "a recent kubectl notebook sync"])
def test_a_busy_notebook_is_not_suspended(case: str) -> None:
    status: dict[str, Any] = {}
    for minutes in range(0, 240, 5):  # the operator syncs more often than it asks to: nothing changes that
        if case == "a kernel busy":  # busy as of each report (a silent computation moves no last_activity)
            idle = IdleObserved(report=report(5, minutes, busy=True))
        elif case == "recent kernel or terminal activity":
            idle = IdleObserved(report=report(max(minutes - 20, 0), minutes))
        else:
            idle = IdleObserved(report=report(5, minutes), heartbeat=START + timedelta(minutes=minutes - 1))
        outcome = sync(status, minutes, idle)
        assert not outcome.annotations and statefulset(outcome)["spec"]["replicas"] == 1, (case, minutes)
        assert "IdleWarning" not in reasons(status, outcome.status, minutes), (case, minutes)
        status = {k: v for k, v in outcome.status.items() if v is not None}


def test_activity_after_the_warning_lifts_it() -> None:
    warned = sync({"idle": {"since": at(0), "lastActivity": at(5)}}, 56, IdleObserved(report=report(5, 55)))
    assert warned.status["idle"]["suspendAt"] == at(66)  # warned late: still the full ten minutes
    back = sync(warned.status, 60, IdleObserved(report=report(59, 60)))
    assert back.status["idle"]["suspendAt"] is None and not back.annotations
    assert back.requeue_after == 49 * 60


def test_a_pod_not_ready_yet_is_not_idle() -> None:
    waiting = reconcile_notebook(owner("Notebook", "nb"), SPEC, {}, DEV_CLUSTER,
                                 NotebookObserved(pods=RolloutState(1, 0, 0)), at(500))
    assert waiting.status["idle"] == {} and waiting.requeue_after is None and not waiting.annotations


def test_the_sidecar_is_there_only_when_idleness_is_watched() -> None:
    watched = statefulset(sync({}, 0))["spec"]["template"]["spec"]
    activity = next(c for c in watched["containers"] if c["name"] == "activity")
    assert activity["image"] == DEV_CLUSTER.runtime_image and activity["args"] == ["-m", "modelplane.activity"]
    assert activity["env"] == [{"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "notebook-nb-token", "key": "token"}}}]
    mounts = {v["name"]: v["csi"]["volumeAttributes"]["mountOptions"] for v in watched["volumes"] if "csi" in v}
    assert "only-dir=ml/notebooks/nb/activity" in mounts["activity"]  # inside the tenant's prefix, not the workspace
    main = next(c for c in watched["containers"] if c["name"] == "main")
    assert "activity" not in {m["name"] for m in main["volumeMounts"]}
    plain = NotebookSpec.model_validate({})
    unwatched = reconcile_notebook(owner("Notebook", "nb"), plain, {}, DEV_CLUSTER,
                                   NotebookObserved(pods=RUNNING), at(0))
    assert [c["name"] for c in statefulset(unwatched)["spec"]["template"]["spec"]["containers"]] == ["main"]
    assert "idle" not in unwatched.status and "activity" not in unwatched.status


def test_idle_statuses_stay_within_the_crd_schema() -> None:
    schema = status_schema("notebooks")
    outcomes = [o for _, o in run_idle(IdleObserved(report=report(5, 0)))]
    for outcome in outcomes:
        assert pruned(schema, {k: v for k, v in outcome.status.items() if v is not None}) == []
    held = sync(outcomes[-1].status, 70, IdleObserved(suspended_at=at(65)))
    assert pruned(schema, held.status) == []
