"""The kopf wiring: thin handlers that gather observations, call a pure reconciler and apply its outcome.

    kopf run -m modelplane.operator.handlers --all-namespaces --liveness=http://0.0.0.0:8080/healthz

A Dataset or Model is re-synced when it changes, when its Job changes, and when an object it waits for becomes
Ready (an in-memory index of who references whom: watching, not polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import google.auth
import kopf
import kubernetes
from google.cloud import storage
from pydantic import ValidationError

from modelplane.api.common import GROUP, VERSION, Workload
from modelplane.api.dataset import DATASET
from modelplane.api.kinds import kind_for
from modelplane.api.model import MODEL
from modelplane.api.modelserver import MODEL_SERVER, ModelServerSpec
from modelplane.api.notebook import NOTEBOOK, NotebookSpec
from modelplane.api.resource import Kind
from modelplane.builders.build import UPLOAD_CONTENT_TYPE, build_job_name, upload_object
from modelplane.builders.job import job_name
from modelplane.cluster import ClusterFacts
from modelplane.conditions import condition
from modelplane.meta import KIND_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, Owner
from modelplane.operator.kube import Kube
from modelplane.reconcile.artifacts import Observed, object_root, prefix, reconcile, settled
from modelplane.reconcile.build import BuildObserved, SignedUpload, needs_signing
from modelplane.reconcile.common import READY, Outcome, RefState
from modelplane.reconcile.inputs import references
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from modelplane.reconcile.server import ServerObserved, reconcile_server
from modelplane.storage import ArtifactStore, UploadSigner

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
UPLOAD_POLL_SECONDS = 3.0
AWAITING_UPLOAD = "AwaitingUpload"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    # Server-side filtering: the operator receives only the Jobs it created, not every Job of the cluster.
    for group, resource in (("batch", "jobs"), ("apps", "deployments"), ("apps", "statefulsets")):
        settings.watching.label_selectors[group, "v1", resource] = f"{MANAGED_BY_LABEL}={MANAGED_BY[MANAGED_BY_LABEL]}"
    # kopf serialises handlers per object, but an object is also synced from its inputs' and Jobs' handlers.
    memo.locks = {}
    memo.awaiting_uploads = set()
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


def ref_state(memo: Any, kind: str, namespace: str, name: str) -> RefState:
    body = memo.kube.get_object(kind_for(kind), namespace, name)
    status = (body or {}).get("status") or {}
    return RefState(found=body is not None, ready=bool(status.get("ready")),
                    url=(status.get("artifacts") or {}).get("url"))


def observe_build(memo: Any, owner: Owner, spec: Workload, status: dict[str, Any]) -> BuildObserved:
    """The build Job, whether the upload is in the bucket, and a signed URL when a new requestID asks for one."""
    build = spec.build
    if build is None:
        return BuildObserved()
    job = memo.kube.job(owner.namespace, build_job_name(owner, build))
    if build.upload is None:
        return BuildObserved(job=job)
    name = upload_object(owner, build.upload.md5)
    signed = None
    if needs_signing(build, status):
        url, expires = memo.signer.sign_put(name, build.upload.md5, UPLOAD_CONTENT_TYPE, datetime.datetime.now(
            datetime.UTC))
        signed = SignedUpload(url=url, expires_at=expires.strftime(TIME_FORMAT))
    return BuildObserved(job=job, stored=memo.store.holds(name, build.upload.md5), signed=signed)


def observe_artifacts(memo: Any, owner: Owner, spec: Workload, status: dict[str, Any]) -> Observed:
    refs = {ref.field: ref_state(memo, ref.kind, owner.namespace, ref.name) for ref in references(spec)}
    job = memo.kube.job(owner.namespace, job_name(owner))
    artifacts = memo.store.summarize(prefix(owner)) if job and job.succeeded else None
    running = job is not None and not (job.succeeded or job.failed)
    quota = memo.kube.quota_refusal(owner.namespace, job_name(owner)) if running else ""
    return Observed(job=job, refs=refs, artifacts=artifacts, build=observe_build(memo, owner, spec, status),
                    quota=quota)


def observe_server(memo: Any, owner: Owner, spec: ModelServerSpec, status: dict[str, Any]) -> ServerObserved:
    return ServerObserved(model=ref_state(memo, MODEL.kind, owner.namespace, spec.model.name),
                          deployment=memo.kube.deployment(owner.namespace, owner.name),
                          build=observe_build(memo, owner, spec, status))


def observe_notebook(memo: Any, owner: Owner, spec: NotebookSpec, status: dict[str, Any]) -> NotebookObserved:
    refs = {ref.field: ref_state(memo, ref.kind, owner.namespace, ref.name) for ref in references(spec)}
    pods = memo.kube.stateful_set(owner.namespace, owner.name)
    starting = not spec.suspend and not (pods and pods.ready)
    quota = memo.kube.quota_refusal(owner.namespace, owner.name) if starting else ""
    # The Secret is created before the StatefulSet: once that exists, there is no token to make (or re-send).
    return NotebookObserved(refs=refs, pods=pods, new_token=secrets.token_urlsafe(32) if pods is None else "",
                            build=observe_build(memo, owner, spec, status), quota=quota)


@dataclass(frozen=True)
class Controller:
    """How one kind is observed and reconciled; `inputs` names the objects whose readiness it waits for."""

    kind: Kind
    observe: Callable[[Any, Owner, Any, dict[str, Any]], Any]
    reconcile: Callable[[Owner, Any, dict[str, Any], ClusterFacts, Any, str], Outcome]
    inputs: Callable[[Any], list[tuple[str, str]]]
    settled: Callable[[Owner, dict[str, Any]], bool] = lambda owner, status: False


CONTROLLERS = {c.kind.kind: c for c in (
    Controller(DATASET, observe_artifacts, reconcile, lambda spec: [], settled),
    Controller(MODEL, observe_artifacts, reconcile, lambda spec: [(r.kind, r.name) for r in references(spec)],
               settled),
    Controller(MODEL_SERVER, observe_server, reconcile_server, lambda spec: [(MODEL.kind, spec.model.name)]),
    Controller(NOTEBOOK, observe_notebook, reconcile_notebook,
               lambda spec: [(r.kind, r.name) for r in references(spec)]),
)}


def sync(memo: Any, kind: Kind, namespace: str, name: str, logger: logging.Logger | kopf.Logger) -> None:
    """Bring one object's children and status in line with its spec (idempotent; safe to call any time)."""
    with memo.locks.setdefault((kind.kind, namespace, name), threading.Lock()):
        _sync(memo, kind, namespace, name, logger)


def _sync(memo: Any, kind: Kind, namespace: str, name: str, logger: logging.Logger | kopf.Logger) -> None:
    body = memo.kube.get_object(kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    owner = Owner.from_body(body)
    status = body.get("status") or {}
    controller = CONTROLLERS[kind.kind]
    if controller.settled(owner, status):
        return
    try:
        spec = kind.spec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        message = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        outcome = Outcome([], {**status, "ready": False, "observedGeneration": owner.generation, "conditions": [
            condition(READY, False, "InvalidSpec", message, owner.generation, now(), status.get("conditions") or [])]})
    else:
        observed = controller.observe(memo, owner, spec, status)
        outcome = controller.reconcile(owner, spec, status, memo.cluster, observed, now())
    for child in outcome.children:
        memo.kube.ensure(child)
    awaiting = any(c["reason"] == AWAITING_UPLOAD for c in outcome.status.get("conditions", []))
    (memo.awaiting_uploads.add if awaiting else memo.awaiting_uploads.discard)((kind.kind, namespace, name))
    if outcome.status != status:
        memo.kube.patch_status(kind, namespace, name, outcome.status)
        ready = next(c for c in outcome.status["conditions"] if c["type"] == READY)
        logger.info("%s %s/%s: Ready=%s %s", kind.kind, namespace, name, ready["status"], ready["reason"])


def _register(kind: Kind) -> None:
    @kopf.on.resume(GROUP, VERSION, kind.plural)
    @kopf.on.create(GROUP, VERSION, kind.plural)
    @kopf.on.update(GROUP, VERSION, kind.plural, field="spec")
    def changed(namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any) -> None:
        sync(memo, kind, namespace or "", name, logger)

    @kopf.on.event(GROUP, VERSION, kind.plural)
    def wake_dependents(type: str, namespace: str | None, name: str, status: kopf.Status, memo: Any,
                        logger: kopf.Logger, **kwargs: Any) -> None:
        """When this object appears or is Ready, the objects waiting for it move on (no polling)."""
        appeared = type in (None, "ADDED")
        if not namespace or not (appeared or (type != "DELETED" and status.get("ready"))):
            return
        for index in (value for key, value in kwargs.items() if key.startswith("dependents-")):
            for dependent_kind, dependent in index.get((namespace, kind.kind, name), []):
                sync(memo, kind_for(dependent_kind), namespace, dependent, logger)

    @kopf.on.delete(GROUP, VERSION, kind.plural,
                    when=lambda spec, **_: spec.get("onDelete") == "Delete")
    def delete_data(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
        """Only on request (`onDelete: Delete`); by default the data outlives the object."""
        root = object_root(Owner.from_body(body))
        logger.info("deleted %d objects under gs://%s/%s", memo.store.delete(root), memo.cluster.bucket, root)


@kopf.on.startup()
async def watch_uploads(memo: Any, logger: kopf.Logger, **_: Any) -> None:
    memo.upload_poller = asyncio.create_task(poll_uploads(memo, logger))


@kopf.on.cleanup()
async def stop_watching_uploads(memo: Any, **_: Any) -> None:
    memo.upload_poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await memo.upload_poller


async def poll_uploads(memo: Any, logger: kopf.Logger) -> None:
    """GCS has no watch: while an object awaits its upload, look for it every few seconds (and only then).

    kopf timers would do, but they add a finalizer to every object they might ever apply to.
    """
    while True:
        await asyncio.sleep(UPLOAD_POLL_SECONDS)
        for kind, namespace, name in list(memo.awaiting_uploads):
            try:
                await asyncio.to_thread(sync, memo, kind_for(kind), namespace, name, logger)
            except kopf.TemporaryError as error:
                logger.warning("checking the upload of %s %s/%s: %s", kind, namespace, name, error)


def _index(controller: Controller) -> None:
    @kopf.index(GROUP, VERSION, controller.kind.plural, id=f"dependents-{controller.kind.plural}")
    def dependents(namespace: str | None, name: str, spec: kopf.Spec,
                   **_: Any) -> dict[tuple[str | None, str, str], tuple[str, str]]:
        """(namespace, referenced kind, referenced name) -> the object that waits for it."""
        try:
            inputs = controller.inputs(controller.kind.spec.model_validate(dict(spec)))
        except ValidationError:
            return {}  # sync() reports the invalid spec on the object itself
        return {(namespace, kind, ref): (controller.kind.kind, name) for kind, ref in inputs}


for _controller in CONTROLLERS.values():
    _register(_controller.kind)
    _index(_controller)


def _sync_owner(type: str, namespace: str | None, labels: kopf.Labels, memo: Any, logger: kopf.Logger) -> None:
    """A child changed: re-sync its owner (children carry the owner's kind and name as labels)."""
    owner_kind, owner_name = labels.get(KIND_LABEL), labels.get(NAME_LABEL)
    if type == "DELETED" or not owner_kind or not owner_name or not namespace:
        return
    sync(memo, kind_for(owner_kind), namespace, owner_name, logger)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY)
def job_changed(type: str, namespace: str | None, labels: kopf.Labels, memo: Any, logger: kopf.Logger,
                **_: Any) -> None:
    _sync_owner(type, namespace, labels, memo, logger)


@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED_BY)
def stateful_set_changed(type: str, namespace: str | None, labels: kopf.Labels, memo: Any, logger: kopf.Logger,
                         **_: Any) -> None:
    _sync_owner(type, namespace, labels, memo, logger)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED_BY)
def deployment_changed(type: str, namespace: str | None, labels: kopf.Labels, memo: Any, logger: kopf.Logger,
                       **_: Any) -> None:
    _sync_owner(type, namespace, labels, memo, logger)
