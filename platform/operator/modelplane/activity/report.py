"""What the activity sidecar writes and the operator reads: one model, so the two halves cannot disagree on it.

The operator cannot ask Jupyter itself: the tenant's NetworkPolicy keeps it out of the notebook pod, and it may not
read the token Secret. So a sidecar in the pod asks Jupyter Server on the pod's loopback and writes this report to
the notebook's activity prefix in the bucket, where the `kubectl notebook` sync's heartbeat is written too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

ACTIVITY_DIR = "/content/activity"  # the sidecar's mount of the activity prefix (read-write, the sidecar's only)
JUPYTER_REPORT = "jupyter.json"  # the sidecar's report
SYNC_HEARTBEAT = "sync.json"  # written by `kubectl notebook` while it syncs: {"time": ...}
POLL_SECONDS = 60.0  # how often the sidecar asks Jupyter (Kubeflow's culler checks every minute too)


class ActivityReport(BaseModel):
    """Jupyter's activity as of `reported_at`: the newest time a kernel or terminal did something, and whether a
    kernel was busy then (a long computation that prints nothing moves no `last_activity`)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    reported_at: datetime = Field(alias="reportedAt")
    started: datetime = Field(description="When Jupyter Server started (/api/status `started`).")
    last_activity: datetime = Field(alias="lastActivity")
    busy: bool = False
    kernels: int = Field(default=0, ge=0)
    terminals: int = Field(default=0, ge=0)


class SyncHeartbeat(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    time: datetime


def utc(moment: datetime) -> datetime:
    """A naive time is UTC (Jupyter writes `Z`; a heartbeat from an old client might not)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
