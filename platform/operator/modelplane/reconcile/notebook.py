"""Reconcile a Notebook: wait for its inputs, run (or suspend) Jupyter, and tell the CLI how to reach it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modelplane.api.notebook import NotebookSpec
from modelplane.api.reasons import Reason
from modelplane.builders.notebook import PORT, notebook_children, token_secret_name, workspace_prefix
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner
from modelplane.reconcile.build import BuildObserved, begin
from modelplane.reconcile.common import (
    Outcome,
    PodsStartup,
    RefState,
    RolloutState,
    pod_refusal_reason,
    startup_fields,
    startup_poll,
)
from modelplane.reconcile.inputs import mount_inputs


@dataclass(frozen=True)
class NotebookObserved:
    refs: dict[str, RefState] = field(default_factory=dict)  # "model", "dataset"
    pods: RolloutState | None = None  # the StatefulSet's replicas
    new_token: str = ""  # a fresh random token while the notebook has no StatefulSet (and so no Secret) yet
    build: BuildObserved = field(default_factory=BuildObserved)
    pods_refused: str = ""  # why the StatefulSet controller cannot create the pod (a FailedCreate event), or ""
    startup: PodsStartup | None = None  # while the pod is not ready: where it is


def reconcile_notebook(owner: Owner, spec: NotebookSpec, status: dict[str, Any], cluster: ClusterFacts,
                       observed: NotebookObserved, now: str) -> Outcome:
    result = _notebook(owner, spec, status, cluster, observed, now)
    startup = None if spec.suspend else observed.startup
    return replace(result, status={**result.status, **startup_fields(status, startup)},
                   requeue_after=startup_poll(startup))


def _notebook(owner: Owner, spec: NotebookSpec, status: dict[str, Any], cluster: ClusterFacts,
              observed: NotebookObserved, now: str) -> Outcome:
    outcome, built, early = begin(owner, spec, status, cluster, observed.build, now)
    if early:
        return early
    inputs, (reason, message) = mount_inputs(spec, owner.namespace, observed.refs)
    if reason:
        return outcome(False, reason, message)

    image = built or cluster.notebook_image
    children = notebook_children(owner, spec, image, default_image=not (spec.image or spec.build), inputs=inputs,
                                 cluster=cluster, token=observed.new_token)
    fields: dict[str, Any] = {"image": image, "port": PORT, "tokenSecret": token_secret_name(owner),
              "workspace": f"gs://{cluster.bucket}/{workspace_prefix(owner)}"}
    if spec.suspend:
        return outcome(False, Reason.SUSPENDED, "suspended: no pod, no GPU; the workspace stays in the bucket",
                       children, pod=None, **fields)
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
