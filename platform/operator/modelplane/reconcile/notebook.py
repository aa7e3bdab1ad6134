"""Reconcile a Notebook: wait for its inputs, run (or suspend) Jupyter, tell the CLI how to reach it, and suspend it
when it has been idle for spec.idle (reconcile/idle.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NotebookSpec
from modelplane.api.reasons import Reason
from modelplane.builders.notebook import PORT, notebook_children, token_secret_name
from modelplane.cluster import ClusterFacts
from modelplane.layout import activity_prefix, workspace_prefix
from modelplane.meta import Owner
from modelplane.reconcile.build import BuildObserved, begin
from modelplane.reconcile.common import (
    Outcome,
    PodsStartup,
    RefState,
    RolloutState,
    pod_refusal_reason,
    soonest,
    startup_fields,
    startup_poll,
)
from modelplane.reconcile.idle import IdleDecision, IdleObserved, merge_patch, suspended_for_idleness, watch_idle
from modelplane.reconcile.inputs import mount_inputs


@dataclass(frozen=True)
class NotebookObserved:
    refs: dict[str, RefState] = field(default_factory=dict)  # "model", "dataset"
    pods: RolloutState | None = None  # the StatefulSet's replicas
    new_token: str = ""  # a fresh random token while the notebook has no StatefulSet (and so no Secret) yet
    build: BuildObserved = field(default_factory=BuildObserved)
    pods_refused: str = ""  # why the StatefulSet controller cannot create the pod (a FailedCreate event), or ""
    startup: PodsStartup | None = None  # while the pod is not ready: where it is
    idle: IdleObserved = field(default_factory=IdleObserved)  # with spec.idle, or once suspended for idleness


def reconcile_notebook(owner: Owner, spec: NotebookSpec, status: dict[str, Any], cluster: ClusterFacts,
                       observed: NotebookObserved, now: str) -> Outcome:
    idle = _idle(spec, status, observed, now)
    result = _notebook(owner, spec, status, cluster, observed, now, idle)
    suspended = spec.suspend or bool(observed.idle.suspended_at) or bool(idle and idle.suspend)
    startup = None if suspended else observed.startup
    extra = {"idle": idle.status} if idle else {"idle": None} if "idle" in status else {}
    return replace(result, status={**result.status, **startup_fields(status, startup), **extra},
                   requeue_after=soonest(startup_poll(startup), idle.requeue_after if idle else None),
                   annotations={IDLE_SUSPENDED_ANNOTATION: now} if idle and idle.suspend else {})


def _idle(spec: NotebookSpec, status: dict[str, Any], observed: NotebookObserved, now: str) -> IdleDecision | None:
    """status.idle and whether to suspend now; None when idleness is not watched (and nothing was suspended)."""
    before = status.get("idle") or {}
    if observed.idle.suspended_at:
        return suspended_for_idleness(before, observed.idle.suspended_at)
    if spec.idle is None:
        return None
    if spec.suspend:
        return IdleDecision(merge_patch(before, dict.fromkeys(("since", "lastActivity", "suspendAt", "suspendedAt"))))
    ready = bool(observed.pods and observed.pods.ready)
    return watch_idle(spec.idle, before, observed.idle, ready, now)


def _notebook(owner: Owner, spec: NotebookSpec, status: dict[str, Any], cluster: ClusterFacts,
              observed: NotebookObserved, now: str, idle: IdleDecision | None) -> Outcome:
    outcome, built, early = begin(owner, spec, status, cluster, observed.build, now)
    if early:
        return early
    inputs, (reason, message) = mount_inputs(spec, owner.namespace, observed.refs)
    if reason:
        return outcome(False, reason, message)
    if spec.idle and not cluster.runtime_image:
        return outcome(False, Reason.INVALID_SPEC, "spec.idle needs the activity sidecar, in the stack's runtime "
                                                   "image, which this cluster lacks: set images.runtime in the stack "
                                                   "(or let it build the image), or remove spec.idle")

    image = built or cluster.notebook_image
    idle_suspended = observed.idle.suspended_at or (now if idle and idle.suspend else "")
    children = notebook_children(owner, spec, image, default_image=not (spec.image or spec.build), inputs=inputs,
                                 cluster=cluster, token=observed.new_token,
                                 suspended=spec.suspend or bool(idle_suspended))
    fields: dict[str, Any] = {"image": image, "port": PORT, "tokenSecret": token_secret_name(owner),
              "workspace": f"gs://{cluster.bucket}/{workspace_prefix(owner)}"}
    if spec.idle or "activity" in status:
        fields["activity"] = f"gs://{cluster.bucket}/{activity_prefix(owner)}" if spec.idle else None
    if spec.suspend:
        return outcome(False, Reason.SUSPENDED, "suspended: no pod, no GPU; the workspace stays in the bucket",
                       children, pod=None, **fields)
    if idle_suspended:
        return outcome(False, Reason.IDLE_SUSPENDED,
                       f"suspended for idleness at {idle_suspended}: no pod, no GPU; the workspace stays in the "
                       f"bucket; `kubectl notebook {owner.name}` resumes it", children, pod=None, **fields)
    pod = f"{owner.name}-0"
    if observed.pods and observed.pods.ready:
        return outcome(True, Reason.RUNNING, f"kubectl port-forward pod/{pod} {PORT}:{PORT}", children, pod=pod,
                       **fields)
    if observed.pods_refused:
        reason = pod_refusal_reason(observed.pods_refused)
        hint = "; suspend another notebook or ask for more quota" if reason == Reason.QUOTA_EXCEEDED else ""
        return outcome(False, reason, observed.pods_refused + hint, children, pod=pod, **fields)
    waiting = f"{observed.startup.phase}: {observed.startup.message}" if observed.startup else "waiting to be ready"
    return outcome(False, Reason.STARTING, f"pod {pod}: {waiting}", children, pod=pod, **fields)
