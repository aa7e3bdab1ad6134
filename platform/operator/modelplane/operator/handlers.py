"""The operator's wiring: informers that queue object keys, and workers that sync one key at a time.

Every event that may change what an object needs (the object itself, its Job, Deployment or StatefulSet, an input
it waits for becoming Ready) queues the object's key; a worker then syncs it (sync.py: reads it, observes what it
needs through observe/, calls its pure reconciler from the controller table in controllers.py, applies the
outcome). A failed sync, whatever started it, is retried with backoff until it succeeds (`queue.WorkQueue`), and
every object is synced again every RESYNC_SECONDS as a safety net. The informers (informer.py) call the event
handlers below directly: they only note facts and queue keys, so no event waits for another.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from typing import Any

from pydantic import ValidationError

from modelplane.meta import KIND_LABEL, MANAGED_BY, NAME_LABEL, NAMESPACE_LABEL
from modelplane.operator.context import Context
from modelplane.operator.controllers import CONTROLLERS, Controller
from modelplane.operator.informer import Informer
from modelplane.operator.kube import CHILDREN, RefusedError, Resource, TransientError, job_seen
from modelplane.operator.recorder import POSTERS
from modelplane.operator.sync import at_rest, sync

RESYNC_SECONDS = 600.0  # every object is synced (children re-applied) this often, whatever happened
REST_RESYNCS = 60  # objects at rest are resynced at every 60th only: every 10 hours (controller-runtime's SyncPeriod)
SHUTDOWN_GRACE_SECONDS = 20.0  # within the pod's terminationGracePeriodSeconds (30 s by default), with room to spare
# Syncs run at once, on the event loop (only GCS calls, whose client is synchronous, take a thread). A sync mostly
# waits on the API server, so the workers cap the pace at WORKERS / (syncs per object x a sync's time): 16 held a
# Dataset's two ~68 ms syncs to 117 per second, each key waiting 91 ms for a worker; with 32 it waits 11 ms.
WORKERS = 32

log = logging.getLogger("modelplane.operator")


def start(ctx: Context) -> None:
    """Start watching, syncing, posting Events and resyncing, on the running event loop."""
    ctx.watching = [asyncio.create_task(informer.run()) for informer in watches(ctx)]
    ctx.posting = [asyncio.create_task(ctx.recorder.post(poster)) for poster in range(POSTERS)]
    ctx.tasks = [asyncio.create_task(work(ctx)) for _ in range(WORKERS)]
    ctx.tasks.append(asyncio.create_task(resync(ctx)))


def running(ctx: Context) -> bool:
    """Whether every informer, poster and worker started is still at work (each runs until stopped, whatever
    fails)."""
    return all(not task.done() for task in (*ctx.watching, *ctx.posting, *ctx.tasks))


async def stop(ctx: Context) -> None:
    """Drain, as controller-runtime does on SIGTERM: no new sync starts, those under way end, and the Events they
    recorded are posted (all within SHUTDOWN_GRACE_SECONDS). Events left unposted would be lost: the next operator
    sees the status already written and has nothing to announce."""
    deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE_SECONDS
    *workers, resyncing = ctx.tasks  # as start() started them
    for watching in (*ctx.watching, resyncing):
        watching.cancel()
    ctx.queue.close()
    cut = (await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS))[1]
    for task in cut:
        task.cancel()
    left = await ctx.recorder.drain(within=deadline - asyncio.get_running_loop().time())
    if left:
        log.warning("the Events of %d syncs were not posted before shutdown", left)
    for posting in ctx.posting:
        posting.cancel()
    await asyncio.gather(*ctx.tasks, *ctx.watching, *ctx.posting, return_exceptions=True)
    if cut:
        log.warning("%d syncs were cut short at shutdown; the next operator syncs them again", len(cut))
    await ctx.kube.close()


async def work(ctx: Context) -> None:
    """Sync keys as they come; any failure is retried with backoff, so nothing is stuck after a transient fault."""
    while (key := await ctx.queue.get()) is not None:
        started = time.perf_counter()
        try:
            again = await sync(ctx, key, log)
        except Exception as error:  # every failure, even a bug, is retried, never lost
            ctx.metrics.reconciled(key[0], time.perf_counter() - started, error=True, requeue=False)
            delay = ctx.queue.retry(key)
            log.warning("syncing %s %s/%s failed, retrying in %.1fs: %s", *key, delay, error,
                        exc_info=not isinstance(error, RefusedError | TransientError))
        else:
            ctx.metrics.reconciled(key[0], time.perf_counter() - started, error=False, requeue=again is not None)
            ctx.queue.forget(key)
            if again is not None:
                ctx.queue.add_after(key, again)
        finally:
            ctx.queue.done(key)


async def resync(ctx: Context) -> None:
    """The safety net: every object is synced, and its children re-applied, every RESYNC_SECONDS; but an object at
    rest (sync.at_rest), which has no children and nothing to do until it changes, only every REST_RESYNCS-th
    time: an idle platform sends a GET per object every 10 hours, not every 10 minutes (a missed event still
    comes to light)."""
    for count in itertools.count(1):
        await asyncio.sleep(RESYNC_SECONDS)
        for key in list(ctx.known if count % REST_RESYNCS == 0 else ctx.known - ctx.resting):
            ctx.applied.pop(key, None)
            ctx.queue.add(key)


def watches(ctx: Context) -> list[Informer]:
    """What the operator watches (informer.py): its kinds and the children it makes, in each namespace it serves
    (all of them when it is given none), and its build Jobs in the build namespace, where nothing else of it lives.
    Children are selected by the label the operator puts on them: the API server sends no other Job."""
    children = {"Job": functools.partial(job_changed, ctx)} | dict.fromkeys(
        ("JobSet", "Deployment", "StatefulSet"), functools.partial(child_changed, ctx))
    informers = []
    for namespace in ctx.namespaces or (None,):
        informers += [Informer(ctx.kube, Resource.of(c.kind), namespace, functools.partial(object_changed, ctx, c))
                      for c in CONTROLLERS.values()]
        informers += [Informer(ctx.kube, CHILDREN[kind], namespace, handler, MANAGED_BY)
                      for kind, handler in children.items()]
    if ctx.namespaces and ctx.cluster.build_namespace not in ctx.namespaces:
        informers.append(Informer(ctx.kube, CHILDREN["Job"], ctx.cluster.build_namespace, children["Job"], MANAGED_BY))
    return informers


def object_changed(ctx: Context, controller: Controller, type: str | None, body: dict[str, Any]) -> None:
    """Queue the object when it needs a sync, and the objects waiting for it when it appears or is Ready."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    if not namespace or not name:
        return
    key = (controller.kind.kind, namespace, name)
    if type == "DELETED":
        ctx.known.discard(key)
        ctx.resting.discard(key)
        ctx.applied.pop(key, None)
        ctx.dependents.forget(key)
        return
    ctx.known.add(key)
    try:
        resting = at_rest(controller, body)
    except Exception:  # a bug: the object is then synced as any other, never left waiting
        log.exception("%s %s/%s: judging whether it is at rest failed", *key)
        resting = False
    if resting:
        ctx.resting.add(key)
        ctx.applied.pop(key, None)  # its children's digests: a next load or run makes children of new names
    else:
        ctx.resting.discard(key)
    ctx.dependents.update(key, meta.get("generation"), lambda: inputs(controller, namespace, body.get("spec") or {}))
    # Its own status writes need no sync: only a new object, a new generation or a deletion does; a listed object
    # (a start, a relist) only if it is not at rest.
    if (type in (None, "ADDED") and not resting) or meta.get("deletionTimestamp") or \
            status.get("observedGeneration") != meta.get("generation"):
        ctx.queue.add(key)
    for notified_kind, notified in controller.notifies(body):
        ctx.queue.add((notified_kind, namespace, notified))
    if type in (None, "ADDED") or status.get("ready"):
        for dependent in ctx.dependents.waiting_for(key):
            ctx.queue.add(dependent)


def inputs(controller: Controller, namespace: str, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The (kind, namespace, name) of each object this one waits for."""
    try:
        return [(kind, namespace, ref) for kind, ref in controller.inputs(controller.kind.spec.model_validate(spec))]
    except ValidationError:
        return []  # sync() reports the invalid spec on the object itself


def child_changed(ctx: Context, type: str | None, body: dict[str, Any]) -> None:
    """A child changed: queue its owner (children carry the owner's kind and name as labels)."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    owner_kind, owner_name = labels.get(KIND_LABEL), labels.get(NAME_LABEL)
    namespace = labels.get(NAMESPACE_LABEL) or meta.get("namespace")  # a build Job lives in the build namespace
    if not owner_kind or not owner_name or not namespace:
        return
    key = (owner_kind, namespace, owner_name)
    if type == "DELETED":  # deleted by someone else: apply it again
        ctx.applied.get(key, {}).pop((str(body.get("kind")), str(meta.get("name"))), None)
    # Not an owner at rest (it recorded its Job's outcome and wants no child applied), nor one a start has not
    # listed yet (its own listing queues it, unless it is at rest).
    if key not in ctx.resting and (type is not None or key in ctx.known):
        ctx.queue.add(key)


def job_changed(ctx: Context, type: str | None, body: dict[str, Any]) -> None:
    """A Job changed: keep what a sync reads of it (context.Context.jobs), and queue its owner.

    Not for a Job first seen with an empty status (the API server stores a new Job's status empty: its
    PrepareForCreate resets it): its owner's sync created it and knows all it says, and after a restart the owner's
    own listing queues it anyway; the Job controller's first status write (its pods active, or refused) is the news.
    Any later change queues the owner, even one in fields job_seen does not keep: a sync also reads the Job's pods
    (a disruption shows as pod churn only)."""
    meta = body.get("metadata") or {}
    key = (meta.get("namespace") or "", meta.get("name") or "")
    if type == "DELETED":
        ctx.jobs.pop(key, None)
    else:
        known = key in ctx.jobs
        ctx.jobs[key] = job_seen(body)
        if not known and not body.get("status"):
            return
    child_changed(ctx, type, body)
