"""What a sync changed that people and alerts care about, read from the status before and after it (pure).

The handlers post each notice as a Kubernetes Event on the object and count it in the operator's metrics, so `kubectl
describe`, `kubectl get events` and a dashboard tell the same story: a version was made, promoted, rolled back, the
traffic drifted, a notebook is about to be (or was) suspended for idleness. Derived from the status rather than
reported by each reconciler, so that no branch of a reconciler can change the status without its Event, and a sync
that writes nothing new posts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelplane.api.reasons import EventReason, Reason
from modelplane.conditions import find
from modelplane.reconcile.common import READY

DRIFT_TRIGGER = "drift"  # how a Model run's trigger begins when a server's drift started it


@dataclass(frozen=True)
class Notice:
    type: Literal["Normal", "Warning"]
    reason: EventReason
    message: str
    seconds: float | None = None  # for READY: how long the object took to become Ready


def _seconds_between(start: str | None, end: str) -> float | None:
    if not start:
        return None
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def notices(before: dict[str, Any], after: dict[str, Any], created: str | None, now: str) -> list[Notice]:
    """The notices of one status change; `created` is the object's creationTimestamp (the start of its first wait
    for Ready)."""
    found: list[Notice] = []
    was, ready = find(before.get("conditions") or [], READY), find(after.get("conditions") or [], READY)
    if ready and ready.get("status") == "True" and (not was or was.get("status") != "True"):
        since = was.get("lastTransitionTime") if was else created  # when it last stopped being Ready
        found.append(Notice("Normal", EventReason.READY, f"{ready.get('reason')}: {ready.get('message')}",
                            _seconds_between(since, now)))
    latest = after.get("latestVersion")
    if latest and latest != before.get("latestVersion"):
        found.append(Notice("Normal", EventReason.VERSION_CREATED, f"version {latest}"))
    champion = after.get("champion")
    if champion and champion != before.get("champion"):
        found.append(Notice("Normal", EventReason.PROMOTED, f"version {champion} is the champion"))
    if ready and ready.get("reason") == Reason.ROLLED_BACK and (not was or was.get("reason") != Reason.ROLLED_BACK):
        found.append(Notice("Warning", EventReason.ROLLED_BACK, str(ready.get("message"))))
    report = (after.get("monitoring") or {}).get("lastReport") or {}
    if report.get("drift") and report.get("run") != ((before.get("monitoring") or {}).get("lastReport") or {}).get(
            "run"):
        found.append(Notice("Warning", EventReason.DRIFT_DETECTED, str(report.get("message"))))
    idle, was_idle = after.get("idle") or {}, before.get("idle") or {}
    if idle.get("suspendAt") and not was_idle.get("suspendAt"):
        found.append(Notice("Warning", EventReason.IDLE_WARNING,
                            f"idle since {idle.get('lastActivity')}: suspended at {idle['suspendAt']} unless a kernel "
                            "or terminal is used or `kubectl notebook` syncs"))
    if ready and ready.get("reason") == Reason.IDLE_SUSPENDED and (
            not was or was.get("reason") != Reason.IDLE_SUSPENDED):
        found.append(Notice("Normal", EventReason.IDLE_SUSPENDED, str(ready.get("message"))))
    run = after.get("run") or {}
    if run and run != before.get("run") and str(run.get("trigger", "")).startswith(DRIFT_TRIGGER):
        found.append(Notice("Normal", EventReason.DRIFT_RETRAIN, f"version {run.get('version')}: {run['trigger']}"))
    return found
