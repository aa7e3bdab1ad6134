"""What a Dataset's or Model's sync reads (for reconcile/artifacts.py): its run's Job or JobSet, its inputs, its
build, and once a run succeeded, what it wrote to the bucket; for a retraining Model, drift its servers reported."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from typing import Any

from modelplane.api.common import Workload
from modelplane.api.dataset import DATASET, DatasetSpec
from modelplane.api.model import MODEL, ModelSpec
from modelplane.api.modelserver import MODEL_SERVER
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.builders.jobset import child_job
from modelplane.layout import manifest_object, version_prefix
from modelplane.meta import Owner
from modelplane.operator.context import Context
from modelplane.operator.observe.common import observe_build, ref_state
from modelplane.reconcile.artifacts import METRICS, DriftSignal, Observed, run_job_name, settled
from modelplane.reconcile.common import JobState
from modelplane.reconcile.inputs import references


async def observe_artifacts(ctx: Context, owner: Owner, spec: Workload, body: dict[str, Any]) -> Observed:
    status = body.get("status") or {}
    if isinstance(spec, DatasetSpec) and settled(owner, status):
        # This generation's load is over and in the status; only its schedule can start the next (a Dataset at rest
        # is not observed at all: controllers.py). The reconciler reads nothing but the build (the next load's
        # image). Every later sync would otherwise list its version in the bucket (a billed operation) and, once
        # the Job's TTL has removed it, read a Job that is gone.
        return Observed(build=await observe_build(ctx, owner, spec, status))
    refs = {ref.field: await ref_state(ctx, ref.kind, owner.namespace, ref.name) for ref in references(spec)}
    name = run_job_name(owner, status)
    gang = bool((status.get("run") or {}).get("nodes"))  # a multi-node run: a JobSet, whose Job makes the pods
    # A Model's run counts its resumes (pods a disruption took); a Dataset's load does not. Before the status records
    # a load or run, no Job of it is read: the reconciler starts one and reads none (its create is idempotent), so a
    # GET here would only be a 404 for every new object.
    recorded = bool(status.get("load" if isinstance(spec, DatasetSpec) else "run"))
    job: JobState | None = None
    if recorded and gang:
        job = await ctx.kube.jobset(owner.namespace, name)
    elif recorded:
        job = await ctx.kube.job(owner.namespace, name, ctx.jobs.get((owner.namespace, name)),
                                 count_disruptions=isinstance(spec, ModelSpec))
    refusal = await ctx.kube.pod_refusal(owner.namespace, child_job(name) if gang else name) \
        if job and job.podless else ""
    observed = Observed(job=job, refs=refs, build=await observe_build(ctx, owner, spec, status), pods_refused=refusal)
    if isinstance(spec, ModelSpec) and spec.retrain:
        observed = replace(observed, drift=await drift_signal(ctx, owner))
    if isinstance(spec, ModelSpec) and spec.champion and spec.champion != status.get("champion"):
        observed = replace(observed, pinned=await asyncio.to_thread(
            ctx.store.summarize, version_prefix(owner, spec.champion)))
    if not (job and job.succeeded):
        return observed
    if isinstance(spec, DatasetSpec):
        prefix = version_prefix(owner, (status.get("load") or {}).get("version", 1))
        manifest = await asyncio.to_thread(ctx.store.manifest, prefix)
        # Which versions Models use matters only when keepLast drops one: only then are they listed.
        full = len(status.get("versions") or []) >= spec.keep_last
        return replace(observed, artifacts=ctx.store.summarize(prefix, manifest),  # from the manifest: no call
                       manifest=manifest, in_use=await dataset_versions_in_use(ctx, owner) if full else frozenset())
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
                 if v and spec.dataset and (m := await asyncio.to_thread(ctx.store.read_json,
                     manifest_object(Owner(DATASET.kind, spec.dataset.name, owner.namespace, "", 0), v))) is not None}
    observed = replace(observed, data_manifests=manifests)
    if recorded:
        return observed
    prefix = version_prefix(owner, run.get("version", 1))
    return replace(observed, artifacts=await asyncio.to_thread(ctx.store.summarize, prefix),
                   metrics=finite_metrics(await asyncio.to_thread(ctx.store.read_json, prefix + METRICS)))


def retrains_on_drift(server: dict[str, Any]) -> str | None:
    """The Model a ModelServer asks to retrain when its traffic drifts, or None."""
    spec = server.get("spec") or {}
    if (spec.get("monitoring") or {}).get("onDrift") != "Retrain":
        return None
    return str((spec.get("model") or {}).get("name") or "") or None


async def drift_signal(ctx: Context, owner: Owner) -> DriftSignal | None:
    """The newest drift that a server of this Model reported with `onDrift: Retrain`."""
    signals = [DriftSignal(server=server["metadata"]["name"], run=int(drift["run"]), time=str(drift["time"]))
               async for server in ctx.kube.list_objects(MODEL_SERVER, owner.namespace)
               if retrains_on_drift(server) == owner.name
               and (drift := ((server.get("status") or {}).get("monitoring") or {}).get("lastDrift"))]
    return max(signals, key=lambda signal: signal.time, default=None)




def finite_metrics(found: Any) -> dict[str, float] | None:
    """metrics.json's numbers: a NaN or an infinity is dropped (it compares as nothing, and the API server refuses
    it in the ModelVersion and the status)."""
    if not isinstance(found, dict):
        return None
    return {key: float(value) for key, value in found.items()
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)}


async def dataset_versions_in_use(ctx: Context, owner: Owner) -> frozenset[int]:
    """The versions of a Dataset that a ModelVersion was trained on, or that a Model's run is training on now."""
    recorded = {record["spec"]["dataset"]["version"]
                async for record in ctx.kube.list_objects(MODEL_VERSION, owner.namespace)
                if (record.get("spec", {}).get("dataset") or {}).get("name") == owner.name}
    running = {(model.get("status") or {}).get("run", {}).get("datasetVersion")
               async for model in ctx.kube.list_objects(MODEL, owner.namespace)
               if ((model.get("spec") or {}).get("dataset") or {}).get("name") == owner.name}
    return frozenset(v for v in recorded | running if v)


