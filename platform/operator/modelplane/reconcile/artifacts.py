"""Reconcile a Dataset or a Model: the kinds whose run writes data into their own bucket prefix.

`reconcile` is pure: from the object, the cluster facts and what was observed (the run's Job, the referenced
objects, the bucket listing) it returns the children that must exist and the status to record. The kopf handlers
only gather the observations and apply the outcome, so every branch here is a unit test away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelplane.api.common import Artifacts, Workload
from modelplane.api.kinds import kind_for
from modelplane.builders.job import job_name, run_children
from modelplane.builders.workload import ARTIFACTS_PATH, Mount
from modelplane.cluster import ClusterFacts
from modelplane.conditions import find
from modelplane.meta import Owner
from modelplane.reconcile.build import BuildObserved, begin
from modelplane.reconcile.common import READY, JobState, Outcome, RefState, pod_refusal_reason
from modelplane.reconcile.inputs import mount_inputs, references

TERMINAL_REASONS = {"Loaded", "Imported", "Trained", "JobFailed", "BuildFailed"}


@dataclass(frozen=True)
class Observed:
    job: JobState | None = None
    refs: dict[str, RefState] = field(default_factory=dict)  # by Reference.field
    artifacts: Artifacts | None = None
    build: BuildObserved = field(default_factory=BuildObserved)
    pods_refused: str = ""  # why the Job controller cannot create the run's pods (a FailedCreate event), or ""


def prefix(owner: Owner) -> str:
    """`<namespace>/<plural>/<name>/gen-<generation>/`: readable, deterministic, a fresh prefix per run."""
    return f"{owner.namespace}/{kind_for(owner.kind).plural}/{owner.name}/gen-{owner.generation}/"


def object_root(owner: Owner) -> str:
    """Everything the object ever wrote (what `onDelete: Delete` removes)."""
    return f"{owner.namespace}/{kind_for(owner.kind).plural}/{owner.name}/"


def source(spec: Workload) -> str:
    """A short answer to "where did this data come from?" for `kubectl get`."""
    refs = references(spec)
    if refs:
        return "trained from " + " + ".join(ref.name for ref in refs)
    if spec.build and spec.build.git:
        return f"git {spec.build.git.url}@{spec.build.git.ref}"
    if spec.build:
        return "upload"
    return f"image {spec.image}"


def settled(owner: Owner, status: dict[str, Any]) -> bool:
    """This generation's run is over (succeeded or failed): it never runs twice into the same prefix."""
    ready = find(status.get("conditions") or [], READY)
    return bool(status.get("observedGeneration") == owner.generation and ready
                and ready.get("reason") in TERMINAL_REASONS)


def reconcile(owner: Owner, spec: Workload, status: dict[str, Any], cluster: ClusterFacts, observed: Observed,
              now: str) -> Outcome:
    if settled(owner, status):
        return Outcome([], status)
    fields = {"source": source(spec), **({"image": spec.image} if spec.image else {})}
    outcome, image, early = begin(owner, spec, status, cluster, observed.build, now, **fields)
    if early:
        return early
    assert image is not None  # Dataset and Model specs parse only with exactly one of image or build

    mounts = [Mount("artifacts", prefix(owner), ARTIFACTS_PATH, read_only=False)]
    # A run starts only from inputs that are Ready now (a base model being retrained is waited for).
    inputs, (reason, message) = mount_inputs(spec, owner.namespace, observed.refs, require_ready=True)
    if reason:
        return outcome(False, reason, message)
    mounts += inputs

    job = observed.job
    name = job_name(owner)
    if job is None:  # the ConfigMap is applied before the Job, so an existing Job means both exist
        doing = "Training" if references(spec) else "Loading"
        return outcome(False, doing, f"job {name} started", run_children(owner, spec, image, cluster, mounts))
    if not (job.succeeded or job.failed):
        if observed.pods_refused:
            return outcome(False, pod_refusal_reason(observed.pods_refused), observed.pods_refused)
        return outcome(False, "Training" if references(spec) else "Loading", f"job {name} is running")
    if job.failed:
        return outcome(False, "JobFailed", job.message or f"job {name} failed")
    artifacts = observed.artifacts or Artifacts(url=f"gs://{cluster.bucket}/{prefix(owner)}")
    reason = "Loaded" if owner.kind == "Dataset" else "Trained" if references(spec) else "Imported"
    message = f"{artifacts.count} files, {artifacts.size} in {artifacts.url}"
    return outcome(True, reason, message, artifacts=artifacts.model_dump(by_alias=True))
