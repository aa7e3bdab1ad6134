"""The kopf wiring: thin event handlers that queue object keys, and workers that sync one key at a time.

    kopf run -m modelplane.operator.handlers --all-namespaces --liveness=http://0.0.0.0:8080/healthz

Every event that may change what an object needs (the object itself, its Job, Deployment or StatefulSet, an input
it waits for becoming Ready) queues the object's key; a worker then syncs it: reads it, observes its children,
calls a pure reconciler and applies the outcome. A failed sync, whatever started it, is retried with backoff until
it succeeds (`queue.WorkQueue`), and every object is synced again every RESYNC_SECONDS as a safety net. kopf only
watches: it writes no annotations and adds no finalizers of its own, so an object of any admitted size is handled.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import google.auth
import kopf
import kubernetes
from google.cloud import storage
from pydantic import ValidationError

from modelplane.activity.report import JUPYTER_REPORT, SYNC_HEARTBEAT, ActivityReport, SyncHeartbeat
from modelplane.api.common import GROUP, VERSION, Workload
from modelplane.api.dataset import DATASET, DatasetSpec
from modelplane.api.kinds import kind_for
from modelplane.api.model import MODEL, ModelSpec
from modelplane.api.modelserver import MODEL_SERVER, ModelServerSpec
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NOTEBOOK, NotebookSpec
from modelplane.api.reasons import Reason
from modelplane.api.resource import Kind
from modelplane.builders.build import UPLOAD_CONTENT_TYPE, build_job_name, upload_object
from modelplane.builders.jobset import child_job
from modelplane.builders.notebook import NOTEBOOK_LABEL, activity_prefix
from modelplane.builders.server import SERVER_LABEL
from modelplane.builders.workload import WORKLOAD_CONTAINER, params_problem
from modelplane.cluster import ClusterFacts
from modelplane.meta import KIND_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, NAMESPACE_LABEL, Owner
from modelplane.monitor.report import REPORT, DriftReport
from modelplane.operator.kube import JOBSET_GROUP, JOBSET_VERSION, Kube, RefusedError, TransientError
from modelplane.operator.metrics import Metrics
from modelplane.operator.queue import WorkQueue
from modelplane.operator.startup import startup
from modelplane.reconcile.artifacts import (
    METRICS,
    DriftSignal,
    Observed,
    manifest_object,
    object_root,
    reconcile,
    run_job_name,
    version_prefix,
)
from modelplane.reconcile.build import BuildObserved, SignedUpload, needs_signing
from modelplane.reconcile.common import (
    READY,
    Outcome,
    PodsStartup,
    RefState,
    RolloutState,
    failed_status,
)
from modelplane.reconcile.idle import IdleObserved
from modelplane.reconcile.inputs import references
from modelplane.reconcile.monitor import MonitorObserved, run_prefix
from modelplane.reconcile.monitor import run_job_name as monitor_job_name
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from modelplane.reconcile.notices import notices
from modelplane.reconcile.server import ServerObserved, reconcile_server
from modelplane.storage import ArtifactStore, UploadSigner

Key = tuple[str, str, str]  # (kind, namespace, name) of a custom resource
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
UPLOAD_POLL_SECONDS = 3.0  # GCS has no watch: an object awaiting its upload looks again this often
QUEUE_POLL_SECONDS = 30.0  # Kueue's Workloads are not watched: a queued run reads its reason and place this often
RESYNC_SECONDS = 600.0  # every object is synced (children re-applied) this often, whatever happened
WORKERS = 4  # syncs run at once (each in a thread: the Kubernetes and GCS clients are synchronous)
DATA_FINALIZER = f"{GROUP}/finalizer"  # only on objects with `onDelete: Delete`: deletion waits for the data
ABSENT = "absent"  # what `applied` records for a child that was deleted


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    # No cluster-wide scans of Namespaces and CRDs: the operator serves the namespaces it is given, where its RBAC
    # is (access.py), and finds its kinds once through discovery.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 270
    # Server-side filtering: the operator receives only the Jobs it created, not every Job of the cluster.
    for group, version, resource in (("batch", "v1", "jobs"), ("apps", "v1", "deployments"),
                                     ("apps", "v1", "statefulsets"), (JOBSET_GROUP, JOBSET_VERSION, "jobsets")):
        settings.watching.label_selectors[group, version, resource] = \
            f"{MANAGED_BY_LABEL}={MANAGED_BY[MANAGED_BY_LABEL]}"
    if "kube" not in memo:  # tests inject their own clients
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        memo.kube = Kube(kubernetes.client.ApiClient())
        memo.cluster = ClusterFacts.from_env(os.environ)
        client = storage.Client(project=memo.cluster.project)
        memo.store = ArtifactStore(client, memo.cluster.bucket)
        credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        memo.signer = UploadSigner(client.bucket(memo.cluster.bucket), credentials)
    if "metrics" not in memo:  # main() serves its own; tests that read them inject theirs
        memo.metrics = Metrics()
    memo.queue = WorkQueue[Key](metrics=memo.metrics)
    memo.known = set()  # every object of our kinds the watches have shown and not deleted
    # Per object, what the operator last applied to each child (kind, name) -> digest, or ABSENT once deleted:
    # an unchanged child is not sent again. Cleared at each resync, so drift is corrected within RESYNC_SECONDS.
    memo.applied = {}
    memo.tasks = [asyncio.create_task(work(memo, logger)) for _ in range(WORKERS)]
    memo.tasks.append(asyncio.create_task(resync(memo)))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.tasks:
        task.cancel()
    await asyncio.gather(*memo.tasks, return_exceptions=True)
    memo.queue.close()


async def work(memo: Any, logger: kopf.Logger) -> None:
    """Sync keys as they come; any failure is retried with backoff, so nothing is stuck after a transient fault."""
    while True:
        key = await memo.queue.get()
        started = time.perf_counter()
        try:
            again = await asyncio.to_thread(sync, memo, key, logger)
        except Exception as error:  # every failure, even a bug, is retried, never lost
            memo.metrics.reconciled(key[0], time.perf_counter() - started, error=True, requeue=False)
            delay = memo.queue.retry(key)
            logger.warning("syncing %s %s/%s failed, retrying in %.1fs: %s", *key, delay, error,
                           exc_info=not isinstance(error, RefusedError | TransientError))
        else:
            memo.metrics.reconciled(key[0], time.perf_counter() - started, error=False, requeue=again is not None)
            memo.queue.forget(key)
            if again is not None:
                memo.queue.add_after(key, again)
        finally:
            memo.queue.done(key)


async def resync(memo: Any) -> None:
    """The safety net: every object is synced, and its children re-applied, every RESYNC_SECONDS."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        for key in list(memo.known):
            memo.applied.pop(key, None)
            memo.queue.add(key)


def ref_state(memo: Any, kind: str, namespace: str, name: str) -> RefState:
    body = memo.kube.get_object(kind_for(kind), namespace, name)
    status = (body or {}).get("status") or {}
    version = status.get("latestVersion") if kind == DATASET.kind else status.get("champion")
    digest = next((v["digest"] for v in status.get("versions") or [] if v.get("version") == version
                   and "digest" in v), "")
    return RefState(found=body is not None, ready=bool(status.get("ready")),
                    url=(status.get("artifacts") or {}).get("url"), version=version, digest=digest)


def observe_build(memo: Any, owner: Owner, spec: Workload, status: dict[str, Any]) -> BuildObserved:
    """The build Job, whether the upload is in the bucket, and a signed URL when a new requestID asks for one."""
    build = spec.build
    if build is None:
        return BuildObserved()
    namespace, name = memo.cluster.build_namespace, build_job_name(owner, build)
    job = memo.kube.job(namespace, name)
    refusal = memo.kube.pod_refusal(namespace, name) if job and job.podless else ""
    if build.upload is None:
        return BuildObserved(job=job, pods_refused=refusal)
    upload = upload_object(owner, build.upload.md5)
    signed = None
    if needs_signing(build, status):
        url, expires = memo.signer.sign_put(upload, build.upload.md5, UPLOAD_CONTENT_TYPE, datetime.datetime.now(
            datetime.UTC))
        signed = SignedUpload(url=url, expires_at=expires.strftime(TIME_FORMAT))
    return BuildObserved(job=job, stored=memo.store.holds(upload, build.upload.md5), signed=signed,
                         pods_refused=refusal)


def observe_artifacts(memo: Any, owner: Owner, spec: Workload, status: dict[str, Any]) -> Observed:
    refs = {ref.field: ref_state(memo, ref.kind, owner.namespace, ref.name) for ref in references(spec)}
    name = run_job_name(owner, status)
    gang = bool((status.get("run") or {}).get("nodes"))  # a multi-node run: a JobSet, whose Job makes the pods
    job = memo.kube.jobset(owner.namespace, name) if gang else memo.kube.job(owner.namespace, name)
    refusal = memo.kube.pod_refusal(owner.namespace, child_job(name) if gang else name) if job and job.podless \
        else ""
    observed = Observed(job=job, refs=refs, build=observe_build(memo, owner, spec, status), pods_refused=refusal)
    if isinstance(spec, ModelSpec) and spec.retrain:
        observed = replace(observed, drift=drift_signal(memo, owner))
    if isinstance(spec, ModelSpec) and spec.champion and spec.champion != status.get("champion"):
        observed = replace(observed, pinned=memo.store.summarize(version_prefix(owner, spec.champion)))
    if not (job and job.succeeded):
        return observed
    if isinstance(spec, DatasetSpec):
        prefix = version_prefix(owner, (status.get("load") or {}).get("version", 1))
        manifest = memo.store.manifest(prefix)
        return replace(observed, artifacts=memo.store.summarize(prefix, manifest), manifest=manifest,
                       in_use=dataset_versions_in_use(memo, owner))
    assert isinstance(spec, ModelSpec)
    run = status.get("run") or {}
    data = refs.get("dataset")
    # A retraining Model syncs on every event of its Dataset: read the bucket only for what this sync may use.
    recorded = status.get("latestVersion") == run.get("version")  # metrics and weights are in the status already
    new_data = bool(data and data.version and data.version != run.get("datasetVersion"))  # a run may start: its diff
    if recorded and not new_data:
        return observed
    wanted = set() if recorded else {run.get("datasetVersion")}  # the lineage digests the version trained on
    if new_data and data:  # the diff: from the data a parent (the champion or the latest) saw, to the new version
        parents = {status.get("champion"), status.get("latestVersion")}
        wanted |= {data.version, *(v.get("datasetVersion") for v in status.get("versions") or []
                                   if v.get("version") in parents)}
    manifests = {v: m for v in wanted
                 if v and spec.dataset and (m := memo.store.read_json(
                     manifest_object(Owner(DATASET.kind, spec.dataset.name, owner.namespace, "", 0), v))) is not None}
    observed = replace(observed, data_manifests=manifests)
    if recorded:
        return observed
    prefix = version_prefix(owner, run.get("version", 1))
    return replace(observed, artifacts=memo.store.summarize(prefix),
                   metrics=finite_metrics(memo.store.read_json(prefix + METRICS)))


def drift_signal(memo: Any, owner: Owner) -> DriftSignal | None:
    """The newest drift that a server of this Model reported with `onDrift: Retrain`."""
    signals = [DriftSignal(server=server["metadata"]["name"], run=int(drift["run"]), time=str(drift["time"]))
               for server in memo.kube.list_objects(MODEL_SERVER, owner.namespace)
               if retrains_on_drift(server) == owner.name
               and (drift := ((server.get("status") or {}).get("monitoring") or {}).get("lastDrift"))]
    return max(signals, key=lambda signal: signal.time, default=None)


def retrains_on_drift(server: dict[str, Any]) -> str | None:
    """The Model a ModelServer asks to retrain when its traffic drifts, or None."""
    spec = server.get("spec") or {}
    if (spec.get("monitoring") or {}).get("onDrift") != "Retrain":
        return None
    return str((spec.get("model") or {}).get("name") or "") or None


def drift_retrains(server: dict[str, Any]) -> list[tuple[str, str]]:
    """The Model to sync when a server that retrains it on drift has reported drift."""
    model = retrains_on_drift(server)
    drifted = (((server.get("status") or {}).get("monitoring") or {}).get("lastDrift"))
    return [(MODEL.kind, model)] if model and drifted else []


def finite_metrics(found: Any) -> dict[str, float] | None:
    """metrics.json's numbers: a NaN or an infinity is dropped (it compares as nothing, and the API server refuses
    it in the ModelVersion and the status)."""
    if not isinstance(found, dict):
        return None
    return {key: float(value) for key, value in found.items()
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)}


def dataset_versions_in_use(memo: Any, owner: Owner) -> frozenset[int]:
    """The versions of a Dataset that a ModelVersion was trained on, or that a Model's run is training on now."""
    recorded = {record["spec"]["dataset"]["version"] for record in memo.kube.list_objects(MODEL_VERSION,
                                                                                          owner.namespace)
                if (record.get("spec", {}).get("dataset") or {}).get("name") == owner.name}
    running = {(model.get("status") or {}).get("run", {}).get("datasetVersion")
               for model in memo.kube.list_objects(MODEL, owner.namespace)
               if ((model.get("spec") or {}).get("dataset") or {}).get("name") == owner.name}
    return frozenset(v for v in recorded | running if v)


def observe_server(memo: Any, owner: Owner, spec: ModelServerSpec, status: dict[str, Any]) -> ServerObserved:
    pinned = None
    if spec.model.version:
        record = memo.kube.get_object(MODEL_VERSION, owner.namespace, f"{spec.model.name}-v{spec.model.version}")
        pinned = RefState(found=record is not None, ready=record is not None,
                          url=(record or {}).get("spec", {}).get("artifacts"), version=spec.model.version)
    deployment = memo.kube.deployment(owner.namespace, owner.name)
    return ServerObserved(model=ref_state(memo, MODEL.kind, owner.namespace, spec.model.name),
                          deployment=deployment, build=observe_build(memo, owner, spec, status), pinned=pinned,
                          monitor=observe_monitor(memo, owner, spec, status),
                          startup=observe_startup(memo, owner, deployment, {SERVER_LABEL: owner.name},
                                                  "loading the model: its readiness probe has not passed yet"))


def observe_startup(memo: Any, owner: Owner, pods: RolloutState | None, selector: dict[str, str],
                    loading: str) -> PodsStartup | None:
    """Where the pods are on their way to ready; listed only while a replica is not ready."""
    if pods is None or (pods.replicas and pods.ready >= pods.replicas):
        return None
    return startup(memo.kube.pods(owner.namespace, selector), WORKLOAD_CONTAINER, loading)


def observe_monitor(memo: Any, owner: Owner, spec: ModelServerSpec, status: dict[str, Any]) -> MonitorObserved:
    """The monitor run's Job and, once it succeeded, its report; between runs, the served version's training data
    (the default reference of the next run)."""
    if spec.monitoring is None:
        return MonitorObserved()
    monitoring = status.get("monitoring") or {}
    run = monitoring.get("run")
    if run and (monitoring.get("lastReport") or {}).get("run") != run["number"] \
            and monitoring.get("failedRun") != run["number"]:
        name = monitor_job_name(owner, run["number"])
        job = memo.kube.job(owner.namespace, name)
        refusal = memo.kube.pod_refusal(owner.namespace, name) if job and job.podless else ""
        if not (job and job.succeeded):
            return MonitorObserved(job=job, pods_refused=refusal)
        found = memo.store.read_json(run_prefix(owner, run["number"]) + REPORT)
        if found is None:
            return MonitorObserved(job=job, report_problem="the file is missing or is not JSON")
        try:
            return MonitorObserved(job=job, report=DriftReport.model_validate(found))
        except ValidationError as error:
            return MonitorObserved(job=job, report_problem=f"{error.error_count()} problem(s), first: "
                                                           f"{error.errors()[0]['msg']}")
    version = (status.get("target") or {}).get("version")
    if spec.monitoring.reference or not version:
        return MonitorObserved()
    record = memo.kube.get_object(MODEL_VERSION, owner.namespace, f"{spec.model.name}-v{version}")
    dataset = ((record or {}).get("spec") or {}).get("dataset") or {}
    trained_on = (dataset["name"], int(dataset["version"])) if dataset.get("name") and dataset.get("version") else None
    return MonitorObserved(trained_on=trained_on)


def observe_notebook(memo: Any, owner: Owner, spec: NotebookSpec, status: dict[str, Any]) -> NotebookObserved:
    refs = {ref.field: ref_state(memo, ref.kind, owner.namespace, ref.name) for ref in references(spec)}
    pods = memo.kube.stateful_set(owner.namespace, owner.name)
    podless = not spec.suspend and pods is not None and not pods.replicas
    refusal = memo.kube.pod_refusal(owner.namespace, owner.name) if podless else ""
    # The Secret is created before the StatefulSet: once that exists, there is no token to make (or re-send).
    return NotebookObserved(refs=refs, pods=pods, new_token=secrets.token_urlsafe(32) if pods is None else "",
                            build=observe_build(memo, owner, spec, status), pods_refused=refusal,
                            startup=None if spec.suspend else observe_startup(
                                memo, owner, pods, {NOTEBOOK_LABEL: owner.name}, "Jupyter is starting"),
                            idle=observe_idle(memo, owner, spec))


def observe_idle(memo: Any, owner: Owner, spec: NotebookSpec) -> IdleObserved:
    """The idle-suspension mark (an annotation: the observers see no metadata, so the object is read again) and,
    while spec.idle counts, the activity sidecar's report and the last `kubectl notebook` sync's heartbeat. A report
    that is missing or not the sidecar's is no activity."""
    body = memo.kube.get_object(NOTEBOOK, owner.namespace, owner.name) or {}
    suspended_at = str(((body.get("metadata") or {}).get("annotations") or {}).get(IDLE_SUSPENDED_ANNOTATION, ""))
    if suspended_at or spec.idle is None or spec.suspend:
        return IdleObserved(suspended_at=suspended_at)
    prefix = activity_prefix(owner)
    try:
        report = ActivityReport.model_validate(memo.store.read_json(prefix + JUPYTER_REPORT))
    except ValidationError:
        report = None
    try:
        heartbeat = SyncHeartbeat.model_validate(memo.store.read_json(prefix + SYNC_HEARTBEAT)).time
    except ValidationError:
        heartbeat = None
    return IdleObserved(report=report, heartbeat=heartbeat)


def idle_mark_changed(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A notebook whose idle-suspension annotation was added or removed (`kubectl notebook NAME` resuming it) has no
    new generation: queue it when the annotation and its status disagree."""
    meta = body.get("metadata") or {}
    marked = IDLE_SUSPENDED_ANNOTATION in (meta.get("annotations") or {})
    shown = bool(((body.get("status") or {}).get("idle") or {}).get("suspendedAt"))
    return [(NOTEBOOK.kind, meta["name"])] if marked != shown else []


@dataclass(frozen=True)
class Controller:
    """How one kind is observed and reconciled; `inputs` names the objects whose readiness it waits for."""

    kind: Kind
    observe: Callable[[Any, Owner, Any, dict[str, Any]], Any]
    reconcile: Callable[[Owner, Any, dict[str, Any], ClusterFacts, Any, str], Outcome]
    inputs: Callable[[Any], list[tuple[str, str]]]
    settled: Callable[[Owner, dict[str, Any]], bool] = lambda owner, status: False
    # Objects that act on this one's status (not only on its readiness): queued on each of its events.
    notifies: Callable[[dict[str, Any]], list[tuple[str, str]]] = lambda body: []


CONTROLLERS = {c.kind.kind: c for c in (
    Controller(DATASET, observe_artifacts, reconcile, lambda spec: []),  # a schedule keeps a Dataset live
    Controller(MODEL, observe_artifacts, reconcile, lambda spec: [(r.kind, r.name) for r in references(spec)]),
    Controller(MODEL_SERVER, observe_server, reconcile_server, lambda spec: [(MODEL.kind, spec.model.name)],
               notifies=drift_retrains),
    Controller(NOTEBOOK, observe_notebook, reconcile_notebook,
               lambda spec: [(r.kind, r.name) for r in references(spec)], notifies=idle_mark_changed),
)}


def sync(memo: Any, key: Key, logger: logging.Logger | kopf.Logger) -> float | None:
    """Bring one object's children and status in line with its spec (idempotent; safe to run any time).

    Returns when to sync it again unasked (seconds), or None. Raises on failure; the caller retries.
    """
    kind = kind_for(key[0])
    body = memo.kube.get_object(kind, key[1], key[2])
    if body is None:
        memo.applied.pop(key, None)
        return None
    if body["metadata"].get("deletionTimestamp"):
        finalize(memo, kind, body, logger)
        return None
    keep_data_finalizer(memo, kind, body)
    owner = Owner.from_body(body)
    status = body.get("status") or {}
    controller = CONTROLLERS[kind.kind]
    if controller.settled(owner, status):
        return None
    problem: str | None
    try:
        spec = kind.spec.model_validate(body.get("spec") or {})
    except ValidationError as error:  # the CRD admits it (or it predates a rule): say why, do not retry
        problem = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    else:
        problem = params_problem(spec.params) if isinstance(spec, Workload) else None
    if problem:
        outcome = Outcome([], failed_status(status, owner.generation, Reason.INVALID_SPEC, problem, now()))
    else:
        observed = controller.observe(memo, owner, spec, status)
        outcome = controller.reconcile(owner, spec, status, memo.cluster, observed, now())
    try:
        if outcome.annotations:  # before the children: a refused or conflicting mark suspends nothing
            memo.kube.patch_annotations(kind, key[1], key[2], outcome.annotations,
                                        body["metadata"].get("resourceVersion", ""))
        apply_children(memo, key, outcome)
        for prefix in outcome.deletes:  # before the status that says they are gone
            memo.store.delete(prefix)
        for name, data in outcome.writes.items():
            memo.store.write(name, data)
    except RefusedError as error:  # RBAC, admission or validation said no: show it on the object, and retry slowly
        write_status(memo, kind, owner, status,
                     failed_status(status, owner.generation, Reason.REFUSED, str(error), now()), logger)
        raise
    write_status(memo, kind, owner, status, outcome.status, logger)
    post_notices(memo, kind, body, status, outcome.status, logger)
    return poll_after(outcome)


def poll_after(outcome: Outcome) -> float | None:
    """When to sync again: when the reconciler asks, or sooner while it waits on something no watch reports (an
    upload to GCS, a Workload in Kueue's queue)."""
    polls = {Reason.AWAITING_UPLOAD: UPLOAD_POLL_SECONDS, Reason.QUEUED: QUEUE_POLL_SECONDS}
    times = [polls[c["reason"]] for c in outcome.status.get("conditions", []) if c["reason"] in polls]
    return min([*times, *([outcome.requeue_after] if outcome.requeue_after is not None else [])], default=None)


def apply_children(memo: Any, key: Key, outcome: Outcome) -> None:
    """Apply the children that changed since this operator last applied them, delete those no longer wanted."""
    applied = memo.applied.setdefault(key, {})
    for child in outcome.children:
        child_key = (child["kind"], child["metadata"]["name"])
        digest = hashlib.sha256(json.dumps(child, sort_keys=True).encode()).hexdigest()
        if applied.get(child_key) != digest:
            memo.kube.apply(child)
            applied[child_key] = digest
    for child_key in outcome.absent:
        if applied.get(child_key) != ABSENT:
            memo.kube.delete(child_key[0], key[1], child_key[1])
            applied[child_key] = ABSENT


def write_status(memo: Any, kind: Kind, owner: Owner, before: dict[str, Any], after: dict[str, Any],
                 logger: logging.Logger | kopf.Logger) -> None:
    if after == before:
        return
    memo.kube.patch_status(kind, owner.namespace, owner.name, after)
    ready = next(c for c in after["conditions"] if c["type"] == READY)
    logger.info("%s %s/%s: Ready=%s %s", kind.kind, owner.namespace, owner.name, ready["status"], ready["reason"])


def post_notices(memo: Any, kind: Kind, body: dict[str, Any], before: dict[str, Any], after: dict[str, Any],
                 logger: logging.Logger | kopf.Logger) -> None:
    """Post what the sync changed as Events and count it. Best effort, as client-go's event recorder is: an Event
    that cannot be posted is logged, and never fails (or repeats) the sync that already wrote its status."""
    if after == before:
        return
    meta = body["metadata"]
    involved = {"apiVersion": kind.api_version, "kind": kind.kind, "name": meta["name"],
                "namespace": meta["namespace"], "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", "")}
    for notice in notices(before, after, meta.get("creationTimestamp"), now()):
        memo.metrics.noticed(kind.kind, notice)
        try:
            memo.kube.post_event(involved, notice.type, notice.reason, notice.message, now())
        except (RefusedError, TransientError) as error:
            logger.warning("could not post %s on %s %s/%s: %s", notice.reason, kind.kind, meta["namespace"],
                           meta["name"], error)


def keep_data_finalizer(memo: Any, kind: Kind, body: dict[str, Any]) -> None:
    """`onDelete: Delete` holds deletion until the data is gone; otherwise the object carries no finalizer."""
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    wanted = (body.get("spec") or {}).get("onDelete") == "Delete"
    if wanted != (DATA_FINALIZER in finalizers):
        changed = [*finalizers, DATA_FINALIZER] if wanted else [f for f in finalizers if f != DATA_FINALIZER]
        memo.kube.patch_finalizers(kind, meta["namespace"], meta["name"], changed, meta.get("resourceVersion", ""))


def finalize(memo: Any, kind: Kind, body: dict[str, Any], logger: logging.Logger | kopf.Logger) -> None:
    """The object is being deleted: delete its data if it asked for that, then let it go."""
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if DATA_FINALIZER not in finalizers:
        return
    if (body.get("spec") or {}).get("onDelete") == "Delete":
        root = object_root(Owner.from_body(body))
        logger.info("deleted %d objects under gs://%s/%s", memo.store.delete(root), memo.cluster.bucket, root)
    memo.kube.patch_finalizers(kind, meta["namespace"], meta["name"], [f for f in finalizers if f != DATA_FINALIZER],
                               meta.get("resourceVersion", ""))


def _register(controller: Controller) -> None:
    kind = controller.kind

    @kopf.index(GROUP, VERSION, kind.plural, id=f"dependents-{kind.plural}")
    def dependents(namespace: str | None, name: str, spec: kopf.Spec,
                   **_: Any) -> dict[tuple[str | None, str, str], tuple[str, str]]:
        """(namespace, referenced kind, referenced name) -> the object that waits for it."""
        try:
            inputs = controller.inputs(kind.spec.model_validate(dict(spec)))
        except ValidationError:
            return {}  # sync() reports the invalid spec on the object itself
        return {(namespace, ref_kind, ref): (kind.kind, name) for ref_kind, ref in inputs}

    @kopf.on.event(GROUP, VERSION, kind.plural)
    async def changed(type: str | None, body: kopf.Body, namespace: str | None, name: str, memo: Any,
                      **kwargs: Any) -> None:
        """Queue the object when it needs a sync, and the objects waiting for it when it appears or is Ready."""
        if not namespace:
            return
        key = (kind.kind, namespace, name)
        if type == "DELETED":
            memo.known.discard(key)
            memo.applied.pop(key, None)
            return
        memo.known.add(key)
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        # Its own status writes need no sync: only a new object, a new generation or a deletion does.
        if type in (None, "ADDED") or meta.get("deletionTimestamp") or \
                status.get("observedGeneration") != meta.get("generation"):
            memo.queue.add(key)
        for notified_kind, notified in controller.notifies(dict(body)):
            memo.queue.add((notified_kind, namespace, notified))
        if type in (None, "ADDED") or status.get("ready"):
            for index in (value for id_, value in kwargs.items() if id_.startswith("dependents-")):
                for dependent_kind, dependent in index.get((namespace, kind.kind, name), []):
                    memo.queue.add((dependent_kind, namespace, dependent))


for _controller in CONTROLLERS.values():
    _register(_controller)


async def _child_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels,
                         memo: Any) -> None:
    """A child changed: queue its owner (children carry the owner's kind and name as labels)."""
    owner_kind, owner_name = labels.get(KIND_LABEL), labels.get(NAME_LABEL)
    namespace = labels.get(NAMESPACE_LABEL) or namespace  # a build Job lives in the build namespace
    if not owner_kind or not owner_name or not namespace:
        return
    key = (owner_kind, namespace, owner_name)
    if type == "DELETED":  # deleted by someone else: apply it again
        memo.applied.get(key, {}).pop((body.get("kind"), body["metadata"]["name"]), None)
    memo.queue.add(key)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY)
async def job_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels, memo: Any,
                      **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)


@kopf.on.event(JOBSET_GROUP, JOBSET_VERSION, "jobsets", labels=MANAGED_BY)
async def jobset_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels, memo: Any,
                         **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)


@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED_BY)
async def stateful_set_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels,
                               memo: Any, **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED_BY)
async def deployment_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels,
                             memo: Any, **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)
