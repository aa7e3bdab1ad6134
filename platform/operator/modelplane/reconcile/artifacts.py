"""Reconcile a Dataset or a Model: the kinds whose runs write versions of data into their own bucket prefix.

`reconcile` is pure: from the object, the cluster facts and what was observed (the run's Job, the referenced
objects, the bucket listing) it returns the children that must exist, the status to record and the bucket objects
to write or delete. The operator (operator/) only gathers the observations and applies the outcome, so every branch
here is a unit test away.

A Dataset loads once per generation (creation, a new `spec.reload.requestID`) into version `latestVersion + 1`; a
load that found the data unchanged makes no version. A Model runs once per generation, and with `retrain` again
for each new version of its Dataset (or a new `retrain.requestID`); each run is version `run.version + 1`, recorded
as a ModelVersion, and promoted to champion only when evaluation says it is better.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, get_args

from modelplane.api.common import Artifacts, OnDelete, Workload
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import MAX_VERSIONS, ModelSpec
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.api.reasons import FAILED, TERMINAL, Reason
from modelplane.builders.job import run_children
from modelplane.builders.jobset import MAX_JOBSET_NAME, run_jobset
from modelplane.builders.workload import ARTIFACTS_PATH, CHECKPOINTS_PATH, MODEL_PATH, Mount
from modelplane.cluster import ClusterFacts
from modelplane.conditions import find
from modelplane.layout import checkpoints_prefix, manifest_object, version_prefix
from modelplane.meta import MAX_NAME, Owner, child_name, metadata
from modelplane.reconcile.build import BuildObserved, begin
from modelplane.reconcile.common import (
    READY,
    JobState,
    Outcome,
    RefState,
    Reply,
    failed_status,
    pod_refusal_reason,
)
from modelplane.reconcile.inputs import mount_inputs, references
from modelplane.reconcile.notices import DRIFT_TRIGGER
from modelplane.reconcile.schedule import next_fire, schedule_problem
from modelplane.reconcile.versions import Manifest, diff, digest, judge

LINEAGE = "lineage.json"
METRICS = "metrics.json"


@dataclass(frozen=True)
class DriftSignal:
    """A server's report of drift, asking its Model to retrain (`monitoring.onDrift: Retrain`)."""

    server: str
    run: int  # the monitor run that found it
    time: str  # when the operator read its report


@dataclass(frozen=True)
class Observed:
    job: JobState | None = None  # the Job of the current load or run
    refs: dict[str, RefState] = field(default_factory=dict)  # by Reference.field
    artifacts: Artifacts | None = None  # the listing of the run's prefix, once its Job succeeded
    build: BuildObserved = field(default_factory=BuildObserved)
    pods_refused: str = ""  # why the Job controller cannot create the run's pods (a FailedCreate event), or ""
    manifest: Manifest | None = None  # a Dataset load's files (name, size, md5), once its Job succeeded
    metrics: dict[str, float] | None = None  # a Model run's metrics.json, once its Job succeeded
    data_manifests: dict[int, Manifest] = field(default_factory=dict)  # Dataset versions a new run compares
    pinned: Artifacts | None = None  # the listing of spec.champion's version, when the user pins another one
    in_use: frozenset[int] = frozenset()  # a Dataset's versions that a ModelVersion was trained on: kept
    drift: DriftSignal | None = None  # the newest drift a server of a retraining Model reported


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
    """This generation's run is over (succeeded or failed). (A Model that retrains is never settled: new data can
    start a run at any time.)"""
    ready = find(status.get("conditions") or [], READY)
    return bool(status.get("observedGeneration") == owner.generation and ready
                and ready.get("reason") in TERMINAL)


def at_rest(owner: Owner, spec: dict[str, Any], status: dict[str, Any]) -> bool:
    """Settled, and nothing can start another load or run: no `schedule` (a Dataset), no `retrain` (a Model). Its
    reconciler would return the status as it is, having read nothing. Judged on the spec as stored, not validated
    again: a generation whose work is done is not re-judged by rules that came later (as the API server ratchets a
    CRD's validation: an unchanged field that was valid stays valid), and the handlers judge every event cheaply."""
    return settled(owner, status) and spec.get("schedule") is None and spec.get("retrain") is None


def ended(record: dict[str, Any]) -> tuple[bool, str, str] | None:
    """How a load or run (its record: status.load, status.run) ended, as (ok, reason, message), or None while it
    runs: its record says, from the answer that ended it (finish), or from stamp_endings for a record an earlier
    operator wrote."""
    if "ended" not in record:
        return None
    reason = record["ended"]["reason"]
    return reason not in FAILED, reason, record["ended"].get("message", "")


def stamp_endings(status: dict[str, Any]) -> dict[str, Any]:
    """The status with `ended` in the records an earlier operator wrote without it: a load or run whose Ready
    condition still says how it ended (Loaded, Unchanged, Imported, Trained, JobFailed) ended so. Done before
    anything else reads or writes the status (sync.py), so that a refusal the same sync records, which replaces
    Ready, does not hide it. Not BuildFailed: a build for the next generation failing ends no load or run. A record
    whose Ready a refusal had replaced before the upgrade stays as it is (read as running: its Job tells)."""
    ready = find(status.get("conditions") or [], READY)
    reason = ready.get("reason") if ready else None
    if reason not in TERMINAL - {Reason.BUILD_FAILED}:
        return status
    assert ready is not None
    stamped = dict(status)
    for name in ("load", "run"):
        record = status.get(name)
        if isinstance(record, dict) and "ended" not in record:
            stamped[name] = {**record, "ended": {"reason": reason, "message": ready.get("message", "")}}
    return stamped


def finish(reply: Reply, name: str, record: dict[str, Any], ok: bool, reason: str, message: str,
           children: list[dict[str, Any]] | None = None, **fields: Any) -> Outcome:
    """The answer that ends a load or run: Ready says how it ended, and so does its record (status.`name`)."""
    return reply(ok, reason, message, children,
                 **{**fields, name: {**record, "ended": {"reason": reason, "message": message}}})


def run_job_name(owner: Owner, status: dict[str, Any]) -> str:
    """The Job (or JobSet) of the object's current load or run (what the handler observes)."""
    if owner.kind == "Dataset":
        return child_name(owner, (status.get("load") or {}).get("number", 1))
    return run_name(owner, status.get("run") or {"version": 1})


def run_name(owner: Owner, run: dict[str, Any]) -> str:
    """The name of a Model run's Job, or of its JobSet when it runs on several nodes (`run.nodes`, as it was
    started: a spec changed since does not rename it), whose pods' names must fit in 63 characters too."""
    return child_name(owner, run["version"], limit=MAX_JOBSET_NAME if run.get("nodes") else MAX_NAME)


def reconcile(owner: Owner, spec: Workload, status: dict[str, Any], cluster: ClusterFacts, observed: Observed,
              now: str) -> Outcome:
    if isinstance(spec, DatasetSpec):
        return reconcile_dataset(owner, spec, status, cluster, observed, now)
    assert isinstance(spec, ModelSpec)
    return reconcile_model(owner, spec, status, cluster, observed, now)


def _load_trigger(owner: Owner, spec: DatasetSpec, status: dict[str, Any], now: str) -> str | None:
    load = status.get("load")
    if not load:
        return "created"
    over = _load_ended(status, load) is not None
    if _edited_since(owner, spec, load):  # one load at a time: a second one would write the same version's prefix
        return ("reload requested" if spec.reload else "the spec changed") if over else None
    due = next_fire(spec.schedule, load["started"])
    if due and due <= datetime.fromisoformat(now) and over:
        return f"schedule {spec.schedule.cron if spec.schedule else ''}"
    return None


def _load_ended(status: dict[str, Any], load: dict[str, Any]) -> tuple[bool, str, str] | None:
    """How the load ended (ended), or, its record not saying, Loaded if the status lists its version: a load
    recorded is never read again as one that just succeeded (its data would be taken for an unchanged load's, and
    deleted)."""
    if (last := ended(load)) is not None:
        return last
    if load.get("version", 0) <= (status.get("latestVersion") or 0):
        return True, Reason.LOADED, f"version {load['version']} loaded"
    return None


def _edited_since(owner: Owner, spec: DatasetSpec, load: dict[str, Any]) -> bool:
    """Whether the spec asks for another load than `load`: what it loads changed since (load_digest; for a load an
    earlier operator recorded without a digest, any edit, as then)."""
    if load.get("generation") == owner.generation:
        return False
    return load_digest(spec) != load["specDigest"] if load.get("specDigest") else True


def load_digest(spec: DatasetSpec) -> str:
    """What a load loads: the spec without its schedule, keepLast and onDelete (when it loads again, what
    status.versions lists, what becomes of the data), so that changing those loads nothing."""
    relevant = spec.model_dump(by_alias=True, exclude={"schedule", "keep_last", "on_delete"})
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def reconcile_dataset(owner: Owner, spec: DatasetSpec, status: dict[str, Any], cluster: ClusterFacts,
                      observed: Observed, now: str) -> Outcome:
    if settled(owner, status) and not spec.schedule:
        return Outcome([], status)
    problem = schedule_problem(spec.schedule, "spec.schedule")
    if problem:
        return Outcome([], failed_status(status, owner.generation, Reason.INVALID_SPEC, problem, now))
    fields = {"source": source(spec), **({"image": spec.image} if spec.image else {})}
    outcome, image, early = begin(owner, spec, status, cluster, observed.build, now, **fields)
    if early:
        return early
    assert image is not None  # Dataset specs parse only with exactly one of image or build
    trigger = _load_trigger(owner, spec, status, now)
    if trigger:
        load = {"number": (status.get("load") or {}).get("number", 0) + 1, "generation": owner.generation,
                "version": (status.get("latestVersion") or 0) + 1, "trigger": trigger, "started": now,
                "specDigest": load_digest(spec), "image": image}
        name = child_name(owner, load["number"])
        mounts = [Mount("artifacts", version_prefix(owner, load["version"]), ARTIFACTS_PATH, read_only=False)]
        versioned = spec.model_copy(update={"env": {**spec.env, "MODELPLANE_DATASET_VERSION": str(load["version"])}})
        return outcome(False, Reason.LOADING, f"job {name} started: loading version {load['version']} ({trigger})",
                       run_children(owner, versioned, image, cluster, mounts, name), load=load)
    load = status["load"]
    prefix, name = version_prefix(owner, load["version"]), child_name(owner, load["number"])
    due = next_fire(spec.schedule, load["started"])
    again = max(1.0, (due - datetime.fromisoformat(now)).total_seconds()) if due else None
    if settled(owner, status):  # only the schedule can start the next load: come back when it fires
        return replace(Outcome([], status), requeue_after=again)
    last = _load_ended(status, load)
    if last:  # a change that loads nothing new (a schedule, keepLast, onDelete), or a refusal since fixed
        return replace(finish(outcome, "load", load, *last), requeue_after=again)
    if _edited_since(owner, spec, load):
        # Edited while it loads: its ending is its own generation's, so the edit is still to do (the status reflects
        # an older generation, and the next sync starts the next load), and so is the image it ran.
        image = load.get("image", image)
        outcome = replace(outcome, generation=load["generation"], fields={**outcome.fields, "image": image})
    job = observed.job
    if job is None:
        return outcome(False, Reason.LOADING, f"job {name} started: loading version {load['version']}")
    running = _running(job, observed.pods_refused, name, Reason.LOADING)
    if running:
        return outcome(*running)
    if job.failed:  # its partial files go: the next load writes the same version
        failed = finish(outcome, "load", load, False, Reason.JOB_FAILED, job.message or f"job {name} failed")
        return replace(failed, deletes=[prefix], requeue_after=again)
    manifest = observed.manifest or []
    versions = list(status.get("versions") or [])
    latest = versions[-1] if versions else None
    if latest and latest["digest"] == digest(manifest):
        done = finish(outcome, "load", load, True, Reason.UNCHANGED,
                      f"load {load['number']} found the data of v{latest['version']} unchanged; no new version")
        return replace(done, deletes=[prefix], requeue_after=again)
    entry = {"version": load["version"], "digest": digest(manifest), "files": len(manifest),
             "bytes": sum(f["size"] for f in manifest), "time": now, "image": image}
    artifacts = observed.artifacts or Artifacts(url=f"gs://{cluster.bucket}/{prefix}")
    kept = [*versions, entry][-spec.keep_last:]
    # Versions past keepLast go, data and all, unless a Model version was trained on them (its lineage needs them).
    dropped = [v["version"] for v in versions if v not in kept and v["version"] not in observed.in_use]
    done = finish(outcome, "load", load, True, Reason.LOADED,
                  f"version {load['version']}: {artifacts.count} files, {artifacts.size} in {artifacts.url}",
                  artifacts=artifacts.model_dump(by_alias=True), latestVersion=load["version"], versions=kept)
    return replace(done, writes={manifest_object(owner, load["version"]): json.dumps(manifest, indent=1).encode()},
                   deletes=[version_prefix(owner, v) for v in dropped], requeue_after=again)


def _running(job: JobState, pods_refused: str, name: str, doing: str) -> tuple[bool, str, str] | None:
    """The (ok, reason, message) of a Job still running, or None once it ended."""
    if job.succeeded or job.failed:
        return None
    if job.queued:
        return False, Reason.QUEUED, f"job {name} is queued: {job.queued}"
    if pods_refused:
        return False, pod_refusal_reason(pods_refused), pods_refused
    return False, doing, f"job {name} is running"


def spec_digest(spec: ModelSpec) -> str:
    """What a run is made from: the spec without the fields that choose between versions, ask for runs or say what
    becomes of the data, so that pinning a champion (a rollback), a retrain request or a new `onDelete` does not
    count as a new spec (and does not train again, on GPUs)."""
    return _digest(spec, on_delete="Retain")


def made_from(spec: ModelSpec, recorded: str) -> bool:
    """Whether a run whose record says `recorded` was made from this spec. Digests recorded before `onDelete` was
    left out hashed the onDelete of their day in; spec_digest hashes in the default ("Retain") in its place, so a
    digest under either value is this spec's (an upgrade starts no run, and nor does a later onDelete change)."""
    return recorded in {_digest(spec, on_delete) for on_delete in get_args(OnDelete)}


def _digest(spec: ModelSpec, on_delete: OnDelete) -> str:
    relevant = spec.model_dump(by_alias=True, exclude={"champion": True, "retrain": {"request_id"}})
    relevant["onDelete"] = on_delete
    if spec.resources.nodes == 1:  # the default, as before the field existed: a Model's runs stay its own
        del relevant["resources"]["nodes"]
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _trigger(spec: ModelSpec, status: dict[str, Any], dataset: RefState | None, drift: DriftSignal | None,
             now: str) -> str | None:
    """Why a new run starts now, or None: a new spec, new data or drift (after the cooldown), or a request."""
    run = status.get("run")
    if not run:
        return "created"
    if not made_from(spec, run.get("specDigest", "")):
        return "the spec changed"
    if not spec.retrain or ended(run) is None:
        return None  # no retraining, or the current run is not over
    if cooldown_left(spec, run, now):
        return None
    if spec.retrain.request_id and spec.retrain.request_id != run.get("requestID"):
        return f"retrain requested ({spec.retrain.request_id})"
    if drift and datetime.fromisoformat(drift.time) > datetime.fromisoformat(run["started"]):
        return f"{DRIFT_TRIGGER} reported by ModelServer {drift.server} (monitor run {drift.run})"
    if dataset and dataset.version and dataset.version > (run.get("datasetVersion") or 0):
        return f"new data: {spec.dataset.name if spec.dataset else 'dataset'} v{dataset.version}"
    return None


def cooldown_left(spec: ModelSpec, run: dict[str, Any], now: str) -> float:
    """Seconds until retrain.cooldownSeconds have passed since the last run started (0: none left)."""
    if not spec.retrain:
        return 0.0
    elapsed = (datetime.fromisoformat(now) - datetime.fromisoformat(run["started"])).total_seconds()
    return max(0.0, spec.retrain.cooldown_seconds - elapsed)


def _parent(spec: ModelSpec, status: dict[str, Any]) -> int | None:
    """The version a retrain warm-starts from (retrain.from), or None for a run from the base model alone."""
    if not spec.retrain or spec.retrain.from_ == "base":
        return None
    champion = spec.champion or status.get("champion")  # a pin (a rollback) is the champion at once
    chosen = champion if spec.retrain.from_ == "champion" else status.get("latestVersion")
    return int(chosen) if chosen else None


def _pinned(spec: ModelSpec, status: dict[str, Any], observed: Observed) -> dict[str, Any]:
    """The status fields of a champion the user pinned (a manual promotion or a rollback)."""
    if not spec.champion or spec.champion == status.get("champion") or observed.pinned is None:
        return {}
    return {"champion": spec.champion, "artifacts": observed.pinned.model_dump(by_alias=True)}


def reconcile_model(owner: Owner, spec: ModelSpec, status: dict[str, Any], cluster: ClusterFacts,
                    observed: Observed, now: str) -> Outcome:
    if settled(owner, status) and not spec.retrain:
        return Outcome([], status)
    fields = {"source": source(spec), **_pinned(spec, status, observed),
              **({"image": spec.image} if spec.image else {})}
    reply, image, early = begin(owner, spec, status, cluster, observed.build, now, **fields)
    if early:  # a run starts only once its image is built: no run is recorded before
        return early
    assert image is not None  # Model specs parse only with exactly one of image or build
    doing = Reason.TRAINING if references(spec) else Reason.LOADING
    current = status.get("run")
    if current and observed.job and observed.job.succeeded and status.get("latestVersion") != current["version"]:
        # A run that ended is recorded before anything starts another (even a new spec): no version is lost.
        return _recorded(owner, spec, status, cluster, observed, now, current, image, reply)
    dataset = observed.refs.get("dataset")
    trigger = _trigger(spec, status, dataset, observed.drift, now)
    if trigger:
        # A run starts only from inputs that are Ready now (a base model being retrained is waited for).
        inputs, (reason, message) = mount_inputs(spec, owner.namespace, observed.refs, require_ready=True)
        if reason:
            return reply(False, reason, message)
        previous = status.get("run") or {}
        run = {"version": previous.get("version", 0) + 1, "generation": owner.generation, "trigger": trigger,
               "specDigest": spec_digest(spec), "started": now,
               **({"datasetVersion": dataset.version} if dataset and dataset.version else {}),
               **({"nodes": spec.resources.nodes} if spec.resources.nodes > 1 else {}),
               **({"parent": parent} if (parent := _parent(spec, status)) else {}),
               **({"requestID": spec.retrain.request_id} if spec.retrain and spec.retrain.request_id else {})}
        name = run_name(owner, run)
        return reply(False, doing, f"job {name} started: version {run['version']} ({trigger})",
                     _run_children(owner, spec, status, run, image, cluster, observed, inputs, name), run=run)
    run = status["run"]
    version, name = run["version"], run_name(owner, run)
    job = observed.job
    last = ended(run)
    if status.get("latestVersion") == version:  # recorded already; only a pin may have moved the champion
        if last:
            return replace(reply(*last), requeue_after=cooldown_left(spec, run, now) or None)
        # Recorded by an earlier operator, and a refusal replaced its Ready before the upgrade: its version is its
        # ending.
        done = finish(reply, "run", run, True, Reason.TRAINED if references(spec) else Reason.IMPORTED,
                      f"version {version} recorded")
        return replace(done, requeue_after=cooldown_left(spec, run, now) or None)
    if job is None and last:  # it ended (failed) and is recorded; its Job went since (TTL, a user)
        return reply(*last)
    if job is None:  # the run's Job was not seen yet (just created): nothing to add
        return reply(False, doing, f"job {name} started: version {version} ({run['trigger']})")
    if job.disruptions != run.get("resumes", 0):  # a spot node was preempted (or drained) under it: it resumes
        run = {**run, "resumes": job.disruptions}
        reply = replace(reply, fields={**reply.fields, "run": run})
    running = _running(job, observed.pods_refused, name, doing)
    if running:
        return reply(*running)
    if job.failed:
        return finish(reply, "run", run, False, Reason.JOB_FAILED, job.message or f"job {name} failed")
    return _recorded(owner, spec, status, cluster, observed, now, run, image, reply)


def _run_children(owner: Owner, spec: ModelSpec, status: dict[str, Any], run: dict[str, Any], image: str,
                  cluster: ClusterFacts, observed: Observed, inputs: list[Mount], name: str) -> list[dict[str, Any]]:
    """The run's Job (a JobSet on several nodes): its version's prefix, its inputs (the parent version replaces the
    base model at /content/model), the data diff since the parent's dataset version, and the versions in its
    environment. A training run gets its checkpoints too: a pod that replaces a preempted one resumes from them."""
    mounts = [Mount("artifacts", version_prefix(owner, run["version"]), ARTIFACTS_PATH, read_only=False)]
    if references(spec):
        mounts.append(Mount("checkpoints", checkpoints_prefix(owner, run["version"]), CHECKPOINTS_PATH,
                            read_only=False))
    parent = run.get("parent")
    if parent:
        inputs = [m for m in inputs if m.path != MODEL_PATH]
        mounts.append(Mount("parent", version_prefix(owner, parent), MODEL_PATH, read_only=True))
    env = {"MODELPLANE_MODEL_VERSION": str(run["version"]), "MODELPLANE_PARENT_VERSION": str(parent or ""),
           **({"MODELPLANE_CHECKPOINT_DIR": CHECKPOINTS_PATH} if references(spec) else {}),
           "MODELPLANE_DATASET_VERSION": str(run.get("datasetVersion") or "")}
    files: dict[str, str] = {}
    data_version = run.get("datasetVersion")
    if data_version and data_version in observed.data_manifests:
        seen = _summary(status, parent).get("datasetVersion") if parent else None
        files["data-diff.json"] = json.dumps(diff(observed.data_manifests.get(seen) if seen else None,
                                                  observed.data_manifests[data_version], seen, data_version))
    versioned = spec.model_copy(update={"env": {**spec.env, **env}})
    if run.get("nodes"):
        return run_jobset(owner, versioned, image, cluster, [*mounts, *inputs], name, run["nodes"], files)
    return run_children(owner, versioned, image, cluster, [*mounts, *inputs], name, files)


def _summary(status: dict[str, Any], version: int) -> dict[str, Any]:
    return next((v for v in status.get("versions") or [] if v["version"] == version), {})


def _recorded(owner: Owner, spec: ModelSpec, status: dict[str, Any], cluster: ClusterFacts, observed: Observed,
              now: str, run: dict[str, Any], image: str, outcome: Reply) -> Outcome:
    """The run succeeded: its ModelVersion and lineage, its verdict, and the champion that follows."""
    version = run["version"]
    prefix = version_prefix(owner, version)
    metrics = observed.metrics or {}
    champion = status.get("champion")
    verdict = judge(spec.evaluation, metrics, _summary(status, champion).get("metrics") if champion else None)
    versions = [v for v in status.get("versions") or [] if v["version"] != version]
    versions.append({"version": version, "datasetVersion": run.get("datasetVersion"), "metrics": metrics,
                     "verdict": verdict.reason})
    # A champion pinned by the user stays: promotion and rollback are theirs.
    new_champion = spec.champion or (version if verdict.promote else champion)
    artifacts = observed.artifacts or Artifacts(url=f"gs://{cluster.bucket}/{prefix}")
    dataset = observed.refs.get("dataset")
    lineage = {
        "model": owner.name, "version": version, "artifacts": artifacts.url,
        **({"dataset": {"name": spec.dataset.name, "version": run["datasetVersion"],
                        "digest": digest(observed.data_manifests[run["datasetVersion"]])
                        if run["datasetVersion"] in observed.data_manifests else dataset.digest}}
           if spec.dataset and dataset and run.get("datasetVersion") else {}),
        **({"parent": run["parent"]} if run.get("parent") else {}),
        **({"baseModel": spec.base_model.name} if spec.base_model else {}),
        "image": image, "paramsDigest": hashlib.sha256(json.dumps(spec.params, sort_keys=True).encode()).hexdigest(),
        "job": run_name(owner, run), "started": run["started"], "finished": now, "metrics": metrics,
        **({"resumes": run["resumes"]} if run.get("resumes") else {}),
    }
    record = {"apiVersion": MODEL_VERSION.api_version, "kind": MODEL_VERSION.kind,
              "metadata": metadata(owner, f"{owner.name}-v{version}"), "spec": lineage}
    reason = Reason.TRAINED if references(spec) else Reason.IMPORTED
    # The newest summaries, and the champion's whatever its age: promotion compares against its metrics.
    recent = versions[-(MAX_VERSIONS - 1):]
    kept = [v for v in versions if v["version"] == new_champion and v not in recent] + recent
    fields: dict[str, Any] = {"latestVersion": version, "versions": kept}
    if new_champion:
        fields["champion"] = new_champion
    if new_champion == version:  # what servers, notebooks and fine-tunes read: only ever the champion
        fields["artifacts"] = artifacts.model_dump(by_alias=True)
    message = f"version {version}: {artifacts.count} files, {artifacts.size}; {verdict.reason}"
    done = finish(outcome, "run", run, True, reason, message, [record], **fields)
    # The checkpoints were for resuming this run: it is over, and the version holds what it made.
    return replace(done, writes={f"{prefix}{LINEAGE}": json.dumps(lineage, indent=1, sort_keys=True).encode()},
                   deletes=[checkpoints_prefix(owner, version)] if references(spec) else [])

