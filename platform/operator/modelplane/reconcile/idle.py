"""When an idle-watched notebook is warned, and when it is suspended (pure: the handlers read the reports).

Activity is the newest of: Jupyter's kernels and terminals (the sidecar's report, modelplane.activity), a busy kernel
(active as of the report that saw it busy), the last `kubectl notebook` sync (its heartbeat), and `since`, when
Jupyter last became ready (a resumed notebook starts with a full timeout, whatever the old reports say). The clock
runs only while the pod is ready: a pod waiting for a GPU node is not idle, it has not started.

As Kubeflow's culler (notebook-controller/pkg/culler/culler.go) the time of the last activity is kept on the object
and the notebook suspended once it is older than the timeout; unlike it, a Warning Event comes first, and at least
`warningMinutes` before: the warning is a status change (`idle.suspendAt` set, reconcile/notices.py), and the
suspension happens only at a later sync, at or after that time, and never before the timeout since the last
activity. Activity after the warning clears it. The notebook is synced again at the next of these times
(`requeue_after`), so nothing needs an event to be noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelplane.activity.report import ActivityReport, utc
from modelplane.api.common import TIME_FORMAT
from modelplane.api.notebook import IdleCulling

MIN_REQUEUE_SECONDS = 1.0


@dataclass(frozen=True)
class IdleObserved:
    suspended_at: str = ""  # the Notebook's IDLE_SUSPENDED_ANNOTATION: suspended for idleness until it is removed
    report: ActivityReport | None = None  # the sidecar's last report, if any
    heartbeat: datetime | None = None  # the last `kubectl notebook` sync


@dataclass(frozen=True)
class IdleDecision:
    status: dict[str, Any]  # status.idle as a merge patch: a key that is gone is None
    suspend: bool = False  # suspend now (the operator annotates the Notebook)
    requeue_after: float | None = None


def parse(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


def stamp(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def merge_patch(before: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """`wanted` with None only for keys `before` has (a merge patch deletes those; others need no deleting, and an
    unchanged status then compares equal and is not written again)."""
    return {key: value for key, value in wanted.items() if value is not None or key in before}


def last_activity(since: datetime, observed: IdleObserved) -> datetime:
    report = observed.report
    times = [since, *([report.last_activity] if report else []), *([report.reported_at] if report and report.busy
                                                                   else []),
             *([observed.heartbeat] if observed.heartbeat else [])]
    return max(utc(t) for t in times)


def suspended_for_idleness(before: dict[str, Any], suspended_at: str) -> IdleDecision:
    """The annotation holds it suspended: nothing is counted until `kubectl notebook NAME` removes it."""
    return IdleDecision(merge_patch(before, {"since": None, "lastActivity": before.get("lastActivity"),
                                             "suspendAt": None, "suspendedAt": suspended_at}))


def watch_idle(idle: IdleCulling, before: dict[str, Any], observed: IdleObserved, ready: bool,
               now: str) -> IdleDecision:
    """The notebook runs (not suspended): count its idleness, warn, or suspend it."""
    t_now = parse(now)
    kept = before.get("since") if not before.get("suspendedAt") else None  # a resume starts a new count
    since = kept or (now if ready else None)
    if since is None:
        return IdleDecision(merge_patch(before, {"since": None, "lastActivity": None, "suspendAt": None,
                                                 "suspendedAt": None}))
    last = last_activity(parse(since), observed)
    deadline = last + timedelta(minutes=idle.timeout_minutes)
    warn_at = deadline - timedelta(minutes=idle.warning_minutes)
    warned = parse(before["suspendAt"]) if before.get("suspendAt") else None
    suspend_at = None
    if t_now >= warn_at:  # a first warning gives the full warning time; activity since may only push it later
        suspend_at = max(warned or t_now + timedelta(minutes=idle.warning_minutes), deadline)
    if warned and suspend_at and t_now >= suspend_at:
        return IdleDecision({**merge_patch(before, {"since": None, "suspendAt": None}), "lastActivity": stamp(last),
                             "suspendedAt": now}, suspend=True)
    wanted = {"since": since, "lastActivity": stamp(last), "suspendAt": stamp(suspend_at) if suspend_at else None,
              "suspendedAt": None}
    wake = suspend_at or warn_at
    return IdleDecision(merge_patch(before, wanted),
                        requeue_after=max(MIN_REQUEUE_SECONDS, (wake - t_now).total_seconds()))
