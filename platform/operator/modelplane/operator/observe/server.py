"""What a ModelServer's sync reads (for reconcile/server.py and reconcile/monitor.py): its Model or pinned version,
its Deployment and pods, its build, and its monitor's run and report."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError

from modelplane.api.model import MODEL
from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.builders.server import SERVER_LABEL
from modelplane.layout import monitor_run_prefix
from modelplane.meta import Owner
from modelplane.monitor.report import REPORT, DriftReport
from modelplane.operator.context import Context
from modelplane.operator.observe.common import observe_build, observe_startup, ref_state
from modelplane.reconcile.common import RefState
from modelplane.reconcile.monitor import MonitorObserved
from modelplane.reconcile.monitor import run_job_name as monitor_job_name
from modelplane.reconcile.server import ServerObserved


async def observe_server(ctx: Context, owner: Owner, spec: ModelServerSpec, body: dict[str, Any]) -> ServerObserved:
    status = body.get("status") or {}
    pinned = None
    if spec.model.version:
        record = await ctx.kube.get_object(MODEL_VERSION, owner.namespace,
                                           f"{spec.model.name}-v{spec.model.version}")
        pinned = RefState(found=record is not None, ready=record is not None,
                          url=(record or {}).get("spec", {}).get("artifacts"), version=spec.model.version)
    deployment = await ctx.kube.deployment(owner.namespace, owner.name)
    return ServerObserved(model=await ref_state(ctx, MODEL.kind, owner.namespace, spec.model.name),
                          deployment=deployment, build=await observe_build(ctx, owner, spec, status), pinned=pinned,
                          monitor=await observe_monitor(ctx, owner, spec, status),
                          startup=await observe_startup(ctx, owner, deployment, {SERVER_LABEL: owner.name},
                                                  "loading the model: its readiness probe has not passed yet"))


async def observe_monitor(ctx: Context, owner: Owner, spec: ModelServerSpec, status: dict[str, Any]) -> MonitorObserved:
    """The monitor run's Job and, once it succeeded, its report; between runs, the served version's training data
    (the default reference of the next run)."""
    if spec.monitoring is None:
        return MonitorObserved()
    monitoring = status.get("monitoring") or {}
    run = monitoring.get("run")
    if run and (monitoring.get("lastReport") or {}).get("run") != run["number"] \
            and monitoring.get("failedRun") != run["number"]:
        name = monitor_job_name(owner, run["number"])
        job = await ctx.kube.job(owner.namespace, name, ctx.jobs.get((owner.namespace, name)), count_disruptions=False)
        refusal = await ctx.kube.pod_refusal(owner.namespace, name) if job and job.podless else ""
        if not (job and job.succeeded):
            return MonitorObserved(job=job, pods_refused=refusal)
        found = await asyncio.to_thread(ctx.store.read_json, monitor_run_prefix(owner, run["number"]) + REPORT)
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
    record = await ctx.kube.get_object(MODEL_VERSION, owner.namespace, f"{spec.model.name}-v{version}")
    dataset = ((record or {}).get("spec") or {}).get("dataset") or {}
    trained_on = (dataset["name"], int(dataset["version"])) if dataset.get("name") and dataset.get("version") else None
    return MonitorObserved(trained_on=trained_on)


