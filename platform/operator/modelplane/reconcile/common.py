"""What every reconciler shares: the outcome type, what is known of a referenced object, and the status shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelplane.api.reasons import Phase, Reason
from modelplane.conditions import condition

READY = "Ready"
# Status fields that stay true while a new generation or run is in progress, kept by an answer that does not set
# them (an early one: a Model not found, a build under way): what was made and served, and the pod still running
# (a notebook's token, workspace and activity; a server's url and replicas). A status write is a patch of what
# changed: a field left out here would be deleted.
KEPT = ("artifacts", "buildUpload", "image", "builtFrom", "latestVersion", "versions", "load", "champion", "run",
        "target", "lastGood", "rejected", "servedVersion", "monitoring", "url", "replicas", "readyReplicas", "pod",
        "port", "tokenSecret", "workspace", "activity")


@dataclass(frozen=True)
class Outcome:
    """What a sync must make true: children applied, children that must not exist (kind, name), the status, and
    bucket objects to write (name -> bytes: manifests, lineage) and prefixes to delete (a load that changed nothing)
    before the status says so; annotations to set on the object (the mark of a notebook suspended for idleness,
    which its user removes to resume)."""

    children: list[dict[str, Any]]
    status: dict[str, Any]
    absent: list[tuple[str, str]] = field(default_factory=list)
    writes: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    requeue_after: float | None = None  # sync again in this many seconds, unasked (a Dataset's next scheduled load)
    annotations: dict[str, str] = field(default_factory=dict)  # set on the object itself (an idle notebook's)


@dataclass(frozen=True)
class JobState:
    succeeded: bool = False
    failed: bool = False
    active: int = 0  # pods created and not finished (0 while the Job controller cannot create them)
    message: str = ""  # the tail of the failed pod's termination message
    queued: str = ""  # while Kueue holds the Job (suspended): why, as its Workload says, or ""
    disruptions: int = 0  # its pods that a disruption took (spot preemption, a drain): each one a resume

    @property
    def podless(self) -> bool:
        """Running without a pod: the Job controller may be refused them (the events then say why)."""
        return not (self.succeeded or self.failed or self.active or self.queued)




def pod_refusal_reason(message: str) -> str:
    """The reason for a FailedCreate message: quota is told apart, since freeing quota is the user's fix."""
    return Reason.QUOTA_EXCEEDED if "exceeded quota" in message else Reason.PODS_REFUSED


def failed_status(status: dict[str, Any], generation: int, reason: str, message: str, now: str) -> dict[str, Any]:
    """Ready=False for this generation with `reason`, everything else of the status kept (a refusal or an invalid
    spec stops progress; it does not erase what was built or served before)."""
    return {**status, "ready": False, "observedGeneration": generation, "conditions": [
        condition(READY, False, reason, message, generation, now, status.get("conditions") or []),
        *(c for c in status.get("conditions") or [] if c.get("type") != READY)]}


@dataclass(frozen=True)
class RolloutState:
    """Replica counts of a Deployment or StatefulSet."""

    replicas: int = 0
    ready: int = 0
    available: int = 0
    complete: bool = False  # the Deployment controller: the latest template is rolled out (NewReplicaSetAvailable)
    stuck: bool = False  # the Deployment controller gave up on it (ProgressDeadlineExceeded)


@dataclass(frozen=True)
class PodsStartup:
    """Where the pods of a server or notebook are on their way to ready (api.common.Startup's phases)."""

    phase: Phase
    message: str

    def as_status(self) -> dict[str, str]:
        return {"phase": self.phase, "message": self.message[:1024]}


STARTUP_POLL_SECONDS = 15.0  # pods are not watched: a pod on its way to ready is looked at again this often


def startup_fields(status: dict[str, Any], startup: PodsStartup | None) -> dict[str, Any]:
    """status.startup while pods are on their way; None deletes it once they are ready (a merge patch)."""
    if startup and startup.phase != Phase.READY:
        return {"startup": startup.as_status()}
    return {"startup": None} if "startup" in status else {}


def startup_poll(startup: PodsStartup | None) -> float | None:
    return STARTUP_POLL_SECONDS if startup and startup.phase != Phase.READY else None


def soonest(*delays: float | None) -> float | None:
    """The earliest of several requeue delays (None: not asked)."""
    return min((d for d in delays if d is not None), default=None)


@dataclass(frozen=True)
class RefState:
    """A referenced Model or Dataset as observed."""

    found: bool
    ready: bool = False
    url: str | None = None  # its status.artifacts.url: the last weights or data that were Ready
    version: int | None = None  # the version that url holds: a Dataset's latest, a Model's champion
    digest: str = ""  # a Dataset version's manifest digest


def prefix_of_url(url: str) -> str:
    """`gs://bucket/a/b/` -> `a/b/`."""
    return url.removeprefix("gs://").split("/", 1)[1]


def summarise(status: dict[str, Any], generation: int, ok: bool, reason: str, message: str, now: str,
              stage: Stage | None = None, **fields: Any) -> dict[str, Any]:
    """The new status: the Ready condition for this generation (after a build stage's), kept facts, own fields."""
    new = {key: status[key] for key in KEPT if key in status}
    conditions = [condition(READY, ok, reason, message, generation, now, status.get("conditions") or [])]
    if stage:
        new.update(stage.fields)
        conditions.append(condition(stage.type, stage.ok, stage.reason, stage.message, generation, now,
                                    status.get("conditions") or []))
    new.update(ready=ok, observedGeneration=generation, conditions=conditions, **fields)
    return new


@dataclass(frozen=True)
class Stage:
    """A step before the workload (the image build): its own condition, children, status fields and outcome."""

    type: str
    ok: bool
    reason: str
    message: str
    children: list[dict[str, Any]]
    fields: dict[str, Any]
    image: str | None = None  # the image to run once the stage is done


@dataclass(frozen=True)
class Reply:
    """Builds a reconciler's Outcome: the build stage's children and condition come along with every answer."""

    generation: int
    status: dict[str, Any]
    now: str
    stage: Stage | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # status fields every answer carries

    @property
    def waiting_for_build(self) -> bool:
        return self.stage is not None and self.stage.image is None

    def __call__(self, ok: bool, reason: str, message: str, children: list[dict[str, Any]] | None = None,
                 absent: list[tuple[str, str]] | None = None, **fields: Any) -> Outcome:
        before = self.stage.children if self.stage else []
        return Outcome([*before, *(children or [])], summarise(self.status, self.generation, ok, reason, message,
                                                               self.now, self.stage, **{**self.fields, **fields}),
                       absent or [])

    def build_wait(self) -> Outcome:
        """Ready=False with the build's own reason (Building, AwaitingUpload, BuildFailed)."""
        assert self.stage is not None
        return self(False, self.stage.reason, self.stage.message)
