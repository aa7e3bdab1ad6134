"""What a Notebook's sync reads (for reconcile/notebook.py and reconcile/idle.py): its inputs, its StatefulSet and
pods, its build, and while spec.idle counts, the activity reports."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from pydantic import ValidationError

from modelplane.activity.report import JUPYTER_REPORT, SYNC_HEARTBEAT, ActivityReport, SyncHeartbeat
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NotebookSpec
from modelplane.builders.notebook import NOTEBOOK_LABEL
from modelplane.layout import activity_prefix
from modelplane.meta import Owner
from modelplane.operator.context import Context
from modelplane.operator.observe.common import observe_build, observe_startup, ref_state
from modelplane.reconcile.idle import IdleObserved
from modelplane.reconcile.inputs import references
from modelplane.reconcile.notebook import NotebookObserved


async def observe_notebook(ctx: Context, owner: Owner, spec: NotebookSpec, body: dict[str, Any]) -> NotebookObserved:
    status = body.get("status") or {}
    refs = {ref.field: await ref_state(ctx, ref.kind, owner.namespace, ref.name) for ref in references(spec)}
    pods = await ctx.kube.stateful_set(owner.namespace, owner.name)
    podless = not spec.suspend and pods is not None and not pods.replicas
    refusal = await ctx.kube.pod_refusal(owner.namespace, owner.name) if podless else ""
    # The Secret is created before the StatefulSet: once that exists, there is no token to make (or re-send).
    return NotebookObserved(refs=refs, pods=pods, new_token=secrets.token_urlsafe(32) if pods is None else "",
                            build=await observe_build(ctx, owner, spec, status), pods_refused=refusal,
                            startup=None if spec.suspend else await observe_startup(
                                ctx, owner, pods, {NOTEBOOK_LABEL: owner.name}, "Jupyter is starting"),
                            idle=await observe_idle(ctx, owner, spec, body))


async def observe_idle(ctx: Context, owner: Owner, spec: NotebookSpec, body: dict[str, Any]) -> IdleObserved:
    """The idle-suspension mark (an annotation on the Notebook the sync read) and, while spec.idle counts, the
    activity sidecar's report and the last `kubectl notebook` sync's heartbeat. A report that is missing or not the
    sidecar's is no activity."""
    suspended_at = str(((body.get("metadata") or {}).get("annotations") or {}).get(IDLE_SUSPENDED_ANNOTATION, ""))
    if suspended_at or spec.idle is None or spec.suspend:
        return IdleObserved(suspended_at=suspended_at)
    prefix = activity_prefix(owner)
    try:
        report = ActivityReport.model_validate(await asyncio.to_thread(ctx.store.read_json,
                                                                        prefix + JUPYTER_REPORT))
    except ValidationError:
        report = None
    try:
        heartbeat = SyncHeartbeat.model_validate(await asyncio.to_thread(ctx.store.read_json,
                                                                   prefix + SYNC_HEARTBEAT)).time
    except ValidationError:
        heartbeat = None
    return IdleObserved(report=report, heartbeat=heartbeat)


