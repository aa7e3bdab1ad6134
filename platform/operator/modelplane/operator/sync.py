"""One sync of one object: read it, observe, reconcile (pure), apply the outcome, write status, record Events.

Idempotent and safe to run any time; a failure raises and the worker retries it (handlers.work).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
from typing import Any

from pydantic import ValidationError

from modelplane.api.common import GROUP, TIME_FORMAT, Workload
from modelplane.api.kinds import kind_for
from modelplane.api.reasons import Reason
from modelplane.api.resource import Kind
from modelplane.builders.workload import params_problem
from modelplane.layout import object_root
from modelplane.meta import Owner
from modelplane.operator.context import Context, Key
from modelplane.operator.controllers import CONTROLLERS, Controller
from modelplane.operator.kube import RefusedError, merge_patch
from modelplane.operator.recorder import Batch
from modelplane.reconcile.common import READY, Outcome, failed_status
from modelplane.reconcile.notices import notices

UPLOAD_POLL_SECONDS = 3.0  # GCS has no watch: an object awaiting its upload looks again this often
QUEUE_POLL_SECONDS = 30.0  # Kueue's Workloads are not watched: a queued run reads its reason and place this often
DATA_FINALIZER = f"{GROUP}/finalizer"  # only on objects with `onDelete: Delete`: deletion waits for the data
ABSENT = b"absent"  # what `applied` records for a child that was deleted (a digest is 32 bytes, never this)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


async def sync(ctx: Context, key: Key, logger: logging.Logger) -> float | None:
    """Bring one object's children and status in line with its spec (idempotent; safe to run any time).

    Returns when to sync it again unasked (seconds), or None. Raises on failure; the caller retries.
    """
    kind = kind_for(key[0])
    body = await ctx.kube.get_object(kind, key[1], key[2])
    if body is None:
        ctx.applied.pop(key, None)
        return None
    if body["metadata"].get("deletionTimestamp"):
        await finalize(ctx, kind, body, logger)
        return None
    await keep_data_finalizer(ctx, kind, body)
    owner = Owner.from_body(body)
    stored = body.get("status") or {}
    controller = CONTROLLERS[kind.kind]
    if controller.settled and controller.settled(owner, body.get("spec") or {}, stored):
        return None
    status = controller.upgrade(stored) if controller.upgrade else stored  # written with what this sync writes
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
        observed = await controller.observe(ctx, owner, spec, body)
        outcome = controller.reconcile(owner, spec, status, ctx.cluster, observed, now())
    try:
        if outcome.annotations:  # before the children: a refused or conflicting mark suspends nothing
            await ctx.kube.patch_annotations(kind, key[1], key[2], outcome.annotations,
                                              body["metadata"].get("resourceVersion", ""))
        await apply_children(ctx, key, outcome)
        for prefix in outcome.deletes:  # before the status that says they are gone
            await asyncio.to_thread(ctx.store.delete, prefix)
        for name, data in outcome.writes.items():
            await asyncio.to_thread(ctx.store.write, name, data)
    except RefusedError as error:  # RBAC, admission or validation said no: show it on the object, and retry slowly
        await write_status(ctx, kind, owner, stored,
                     failed_status(status, owner.generation, Reason.REFUSED, str(error), now()), logger)
        raise
    await write_status(ctx, kind, owner, stored, outcome.status, logger)
    record_notices(ctx, kind, body, status, outcome.status)
    return poll_after(outcome)


def poll_after(outcome: Outcome) -> float | None:
    """When to sync again: when the reconciler asks, or sooner while it waits on something no watch reports (an
    upload to GCS, a Workload in Kueue's queue)."""
    polls = {Reason.AWAITING_UPLOAD: UPLOAD_POLL_SECONDS, Reason.QUEUED: QUEUE_POLL_SECONDS}
    times = [polls[c["reason"]] for c in outcome.status.get("conditions", []) if c["reason"] in polls]
    return min([*times, *([outcome.requeue_after] if outcome.requeue_after is not None else [])], default=None)


async def apply_children(ctx: Context, key: Key, outcome: Outcome) -> None:
    """Apply the children that changed since this operator last applied them, delete those no longer wanted."""
    applied = ctx.applied.setdefault(key, {})
    for child in outcome.children:
        child_key = (child["kind"], child["metadata"]["name"])
        digest = hashlib.sha256(json.dumps(child, sort_keys=True).encode()).digest()
        if applied.get(child_key) != digest:
            await ctx.kube.apply(child)
            applied[child_key] = digest
    for child_key in outcome.absent:
        if applied.get(child_key) != ABSENT:
            await ctx.kube.delete(child_key[0], key[1], child_key[1])
            applied[child_key] = ABSENT


async def write_status(ctx: Context, kind: Kind, owner: Owner, before: dict[str, Any], after: dict[str, Any],
                 logger: logging.Logger) -> None:
    patch = merge_patch(before, after)
    if not patch:  # nothing to change (a key set to None that is not there is not a change)
        return
    problems = kind.status_problems(after)
    if problems:  # a reconciler's bug: fail the sync loudly (and retry it) rather than lose fields to pruning
        raise ValueError(f"{kind.kind} {owner.namespace}/{owner.name}: the status to write is not the "
                         f"{kind.status.__name__} type: {'; '.join(problems)}")
    await ctx.kube.patch_status(kind, owner.namespace, owner.name, patch)
    ready = next(c for c in after["conditions"] if c["type"] == READY)
    logger.info("%s %s/%s: Ready=%s %s", kind.kind, owner.namespace, owner.name, ready["status"], ready["reason"])


def record_notices(ctx: Context, kind: Kind, body: dict[str, Any], before: dict[str, Any],
                   after: dict[str, Any]) -> None:
    """Count what the sync changed, and hand it to the recorder to post as Events (recorder.py: beside the syncs,
    best effort, as client-go's recorder does: an Event never fails or repeats the sync that wrote its status)."""
    if after == before:
        return
    meta = body["metadata"]
    found = notices(before, after, meta.get("creationTimestamp"), now())
    for notice in found:
        ctx.metrics.noticed(kind.kind, notice)
    if found:
        ctx.recorder.record(Batch({"apiVersion": kind.api_version, "kind": kind.kind, "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta.get("uid", ""),
                                   "resourceVersion": meta.get("resourceVersion", "")}, found, now()))


def finalizers_wanted(body: dict[str, Any]) -> list[str] | None:
    """The finalizers the object should carry, when they are not what it carries: `onDelete: Delete` holds deletion
    until the data is gone; otherwise the object carries no finalizer of ours."""
    finalizers = list(body["metadata"].get("finalizers") or [])
    wanted = (body.get("spec") or {}).get("onDelete") == "Delete"
    if wanted == (DATA_FINALIZER in finalizers):
        return None
    return [*finalizers, DATA_FINALIZER] if wanted else [f for f in finalizers if f != DATA_FINALIZER]


async def keep_data_finalizer(ctx: Context, kind: Kind, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    changed = finalizers_wanted(body)
    if changed is not None:
        await ctx.kube.patch_finalizers(kind, meta["namespace"], meta["name"], changed, meta.get("resourceVersion", ""))


def at_rest(controller: Controller, body: dict[str, Any]) -> bool:
    """Nothing to do for the object until it changes: not being deleted, its finalizers right, and its controller
    says it is settled (a Dataset's or Model's load or run over, nothing to start another). A sync of it would read
    it and stop: the handlers queue it for nothing but a change of its own (handlers.py), and the resync passes it
    by but for every REST_RESYNCS-th."""
    if not controller.settled or body["metadata"].get("deletionTimestamp") or finalizers_wanted(body) is not None:
        return False
    return controller.settled(Owner.from_body(body), body.get("spec") or {}, body.get("status") or {})


async def finalize(ctx: Context, kind: Kind, body: dict[str, Any], logger: logging.Logger) -> None:
    """The object is being deleted: delete its data if it asked for that, then let it go."""
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if DATA_FINALIZER not in finalizers:
        return
    if (body.get("spec") or {}).get("onDelete") == "Delete":
        root = object_root(Owner.from_body(body))
        logger.info("deleted %d objects under gs://%s/%s", await asyncio.to_thread(ctx.store.delete, root),
                    ctx.cluster.bucket, root)
    await ctx.kube.patch_finalizers(kind, meta["namespace"], meta["name"],
                                    [f for f in finalizers if f != DATA_FINALIZER], meta.get("resourceVersion", ""))


