"""The kopf wiring: thin event handlers that queue object keys, and workers that sync one key at a time.

    modelplane-operator                 (main.py; or `kopf run -m modelplane.operator.handlers -A` for a local run)

Every event that may change what an object needs (the object itself, its Job, Deployment or StatefulSet, an input
it waits for becoming Ready) queues the object's key; a worker then syncs it (sync.py: reads it, observes what it
needs through observe/, calls its pure reconciler from the controller table in controllers.py, applies the
outcome). A failed sync, whatever started it, is retried with backoff until it succeeds (`queue.WorkQueue`), and
every object is synced again every RESYNC_SECONDS as a safety net. kopf only watches: it writes no annotations and
adds no finalizers of its own, so an object of any admitted size is handled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from modelplane.api.common import GROUP, VERSION
from modelplane.meta import KIND_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, NAMESPACE_LABEL
from modelplane.operator.context import Context, context_of
from modelplane.operator.controllers import CONTROLLERS, Controller
from modelplane.operator.kube import JOBSET_GROUP, JOBSET_VERSION, RefusedError, TransientError, job_seen
from modelplane.operator.metrics import Metrics
from modelplane.operator.sync import sync


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: the operator has no on.create/on.update handlers, so kopf's "last handled state" is never used,
    yet the default storage deep-copies every object on every event to build it (6% of the operator's CPU under
    load, bench/operator_throughput.py). Nothing is built, read or written."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


# The operator's own handler registry, not kopf's default one: that one, when first used, imports the `kubernetes`
# package only to decide whether to add a login handler that uses it (the image does not install it; login.py).
kopf.set_default_registry(kopf.OperatorRegistry())

RESYNC_SECONDS = 600.0  # every object is synced (children re-applied) this often, whatever happened
SHUTDOWN_GRACE_SECONDS = 20.0  # within the pod's terminationGracePeriodSeconds (30 s by default), with room for kopf
WORKERS = 16  # syncs run at once, on the event loop (only GCS calls, whose client is synchronous, take a thread)


def context_in(memo: kopf.Memo) -> Context:
    """The Context main() put in the memo; under `kopf run` (no main()), one made from this environment."""
    if "context" not in memo:
        memo["context"] = Context.from_environment(Metrics())
    return context_of(memo)


@kopf.on.login()
async def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf's watches prove who they are as the operator's own calls do (login.py), asked again after a 401. (Async:
    kopf runs a plain function in a thread, where under `kopf run` it could make a second Context beside startup's.)"""
    return context_in(memo).kube.credentials.connection_info()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    # No cluster-wide scans of Namespaces and CRDs: the operator serves the namespaces it is given, where its RBAC
    # is (access.py), and finds its kinds once through discovery.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 270
    settings.persistence.diffbase_storage = NoDiffBase()
    # Server-side filtering: the operator receives only the Jobs it created, not every Job of the cluster.
    for group, version, resource in (("batch", "v1", "jobs"), ("apps", "v1", "deployments"),
                                     ("apps", "v1", "statefulsets"), (JOBSET_GROUP, JOBSET_VERSION, "jobsets")):
        settings.watching.label_selectors[group, version, resource] = \
            f"{MANAGED_BY_LABEL}={MANAGED_BY[MANAGED_BY_LABEL]}"
    ctx = context_in(memo)
    ctx.tasks = [asyncio.create_task(work(ctx, logger)) for _ in range(WORKERS)]
    ctx.tasks.append(asyncio.create_task(resync(ctx)))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Drain, as controller-runtime does on SIGTERM: no new sync starts, and those under way end (within
    SHUTDOWN_GRACE_SECONDS). A sync cut between its status write and its Events would lose the Events: the next
    operator sees the status already written and has nothing to announce."""
    ctx = context_of(memo)
    *workers, resyncing = ctx.tasks  # as configure() started them
    resyncing.cancel()
    ctx.queue.close()
    cut = (await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS))[1]
    for task in cut:
        task.cancel()
    await asyncio.gather(*ctx.tasks, return_exceptions=True)
    if cut:
        logger.warning("%d syncs were cut short at shutdown; the next operator syncs them again", len(cut))
    await ctx.kube.close()


async def work(ctx: Context, logger: kopf.Logger) -> None:
    """Sync keys as they come; any failure is retried with backoff, so nothing is stuck after a transient fault."""
    while (key := await ctx.queue.get()) is not None:
        started = time.perf_counter()
        try:
            again = await sync(ctx, key, logger)
        except Exception as error:  # every failure, even a bug, is retried, never lost
            ctx.metrics.reconciled(key[0], time.perf_counter() - started, error=True, requeue=False)
            delay = ctx.queue.retry(key)
            logger.warning("syncing %s %s/%s failed, retrying in %.1fs: %s", *key, delay, error,
                           exc_info=not isinstance(error, RefusedError | TransientError))
        else:
            ctx.metrics.reconciled(key[0], time.perf_counter() - started, error=False, requeue=again is not None)
            ctx.queue.forget(key)
            if again is not None:
                ctx.queue.add_after(key, again)
        finally:
            ctx.queue.done(key)


async def resync(ctx: Context) -> None:
    """The safety net: every object is synced, and its children re-applied, every RESYNC_SECONDS."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        for key in list(ctx.known):
            ctx.applied.pop(key, None)
            ctx.queue.add(key)


def _register(controller: Controller) -> None:
    kind = controller.kind

    def inputs(namespace: str, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
        """The (kind, namespace, name) of each object this one waits for."""
        try:
            return [(ref_kind, namespace, ref) for ref_kind, ref in controller.inputs(kind.spec.model_validate(spec))]
        except ValidationError:
            return []  # sync() reports the invalid spec on the object itself

    @kopf.on.event(GROUP, VERSION, kind.plural)
    async def changed(type: str | None, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo,
                      **_: Any) -> None:
        """Queue the object when it needs a sync, and the objects waiting for it when it appears or is Ready."""
        if not namespace:
            return
        ctx, key = context_of(memo), (kind.kind, namespace, name)
        if type == "DELETED":
            ctx.known.discard(key)
            ctx.applied.pop(key, None)
            ctx.dependents.forget(key)
            return
        ctx.known.add(key)
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        ctx.dependents.update(key, meta.get("generation"), lambda: inputs(namespace, dict(body.get("spec") or {})))
        # Its own status writes need no sync: only a new object, a new generation or a deletion does.
        if type in (None, "ADDED") or meta.get("deletionTimestamp") or \
                status.get("observedGeneration") != meta.get("generation"):
            ctx.queue.add(key)
        for notified_kind, notified in controller.notifies(dict(body)):
            ctx.queue.add((notified_kind, namespace, notified))
        if type in (None, "ADDED") or status.get("ready"):
            for dependent in ctx.dependents.waiting_for(key):
                ctx.queue.add(dependent)


for _controller in CONTROLLERS.values():
    _register(_controller)


async def _child_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels,
                         memo: kopf.Memo) -> None:
    """A child changed: queue its owner (children carry the owner's kind and name as labels)."""
    owner_kind, owner_name = labels.get(KIND_LABEL), labels.get(NAME_LABEL)
    namespace = labels.get(NAMESPACE_LABEL) or namespace  # a build Job lives in the build namespace
    if not owner_kind or not owner_name or not namespace:
        return
    ctx, key = context_of(memo), (owner_kind, namespace, owner_name)
    if type == "DELETED":  # deleted by someone else: apply it again
        ctx.applied.get(key, {}).pop((str(body.get("kind")), body["metadata"]["name"]), None)
    ctx.queue.add(key)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY)
async def job_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo,
                      **_: Any) -> None:
    jobs, key = context_of(memo).jobs, (namespace or "", body["metadata"]["name"])
    if type == "DELETED":
        jobs.pop(key, None)
    else:
        jobs[key] = job_seen(dict(body))
    await _child_changed(type, body, namespace, labels, memo)


@kopf.on.event(JOBSET_GROUP, JOBSET_VERSION, "jobsets", labels=MANAGED_BY)
async def jobset_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo,
                         **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)


@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED_BY)
async def stateful_set_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels,
                               memo: kopf.Memo, **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED_BY)
async def deployment_changed(type: str | None, body: kopf.Body, namespace: str | None, labels: kopf.Labels,
                             memo: kopf.Memo, **_: Any) -> None:
    await _child_changed(type, body, namespace, labels, memo)
