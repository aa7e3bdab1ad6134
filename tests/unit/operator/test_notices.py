"""Notices (Events and metrics) from a status change: each once, on the sync that makes the change."""

from typing import Any

from modelplane.api.reasons import EventReason, Reason
from modelplane.reconcile.notices import notices


def ready(ok: bool, reason: str, since: str) -> dict[str, Any]:
    return {"type": "Ready", "status": "True" if ok else "False", "reason": reason, "message": "m",
            "lastTransitionTime": since}


def test_becoming_ready_counts_the_wait_since_it_stopped_being_ready() -> None:
    before = {"conditions": [ready(False, Reason.TRAINING, "2026-12-03T07:00:00Z")]}
    after = {"conditions": [ready(True, Reason.TRAINED, "2026-12-03T07:05:30Z")], "latestVersion": 2,
             "champion": 2}
    found = notices(before, after, "2026-12-01T00:00:00Z", "2026-12-03T07:05:30Z")
    assert [(n.reason, n.type) for n in found] == [(EventReason.READY, "Normal"),
                                                  (EventReason.VERSION_CREATED, "Normal"),
                                                  (EventReason.PROMOTED, "Normal")]
    assert found[0].seconds == 330.0


def test_a_first_status_counts_from_creation() -> None:
    after = {"conditions": [ready(True, Reason.SERVING, "2026-12-03T07:00:10Z")]}
    (notice,) = notices({}, after, "2026-12-03T07:00:00Z", "2026-12-03T07:00:10Z")
    assert notice.seconds == 10.0


def test_nothing_changed_or_still_ready_is_no_notice() -> None:
    status = {"conditions": [ready(True, Reason.SERVING, "2026-12-03T07:00:00Z")], "latestVersion": 3,
              "champion": 2}
    assert notices(status, {**status}, None, "2026-12-03T08:00:00Z") == []


def test_a_version_that_is_not_promoted_is_a_version_only() -> None:
    before = {"conditions": [ready(True, Reason.TRAINED, "t")], "latestVersion": 2, "champion": 2}
    after = {**before, "latestVersion": 3}
    assert [n.reason for n in notices(before, after, None, "2026-12-03T08:00:00Z")] == [EventReason.VERSION_CREATED]


def test_a_rollback_is_a_warning_once() -> None:
    before = {"conditions": [ready(False, Reason.DEPLOYING, "2026-12-03T07:00:00Z")]}
    after = {"conditions": [ready(True, Reason.ROLLED_BACK, "2026-12-03T07:10:00Z")]}
    found = notices(before, after, None, "2026-12-03T07:10:00Z")
    assert [(n.reason, n.type) for n in found] == [(EventReason.READY, "Normal"), (EventReason.ROLLED_BACK, "Warning")]
    assert [n.reason for n in notices(after, {**after}, None, "2026-12-03T07:11:00Z")] == []


def test_drift_is_a_warning_per_report_and_a_drift_run_is_noticed() -> None:
    report = {"run": 4, "drift": True, "message": "drift in 1 of 5 features: support_calls"}
    before = {"monitoring": {"lastReport": {"run": 3, "drift": False, "message": "no drift"}}}
    after = {"monitoring": {"lastReport": report}}
    (notice,) = notices(before, after, None, "2026-12-03T08:00:00Z")
    assert (notice.reason, notice.type, notice.message) == (EventReason.DRIFT_DETECTED, "Warning", report["message"])
    assert notices(after, {"monitoring": {"lastReport": dict(report)}}, None, "2026-12-03T08:01:00Z") == []
    run = {"version": 5, "trigger": "drift reported by ModelServer clf (monitor run 4)"}
    (retrain,) = notices({"run": {"version": 4, "trigger": "new data"}}, {"run": run}, None, "2026-12-03T08:02:00Z")
    assert retrain.reason == EventReason.DRIFT_RETRAIN
