"""Observation shared by the kinds: the objects a spec refers to, a build and its upload, pods on their way to ready.

Observers are the operator's reads: each returns plain data for its kind's pure reconciler (reconcile/), which
never does I/O itself.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from modelplane.api.common import TIME_FORMAT, Workload
from modelplane.api.dataset import DATASET
from modelplane.api.kinds import kind_for
from modelplane.builders.build import UPLOAD_CONTENT_TYPE, build_job_name
from modelplane.builders.workload import WORKLOAD_CONTAINER
from modelplane.layout import upload_object
from modelplane.meta import Owner
from modelplane.operator.context import Context
from modelplane.operator.startup import startup
from modelplane.reconcile.build import BuildObserved, SignedUpload, needs_signing
from modelplane.reconcile.common import PodsStartup, RefState, RolloutState


async def ref_state(ctx: Context, kind: str, namespace: str, name: str) -> RefState:
    body = await ctx.kube.get_object(kind_for(kind), namespace, name)
    status = (body or {}).get("status") or {}
    version = status.get("latestVersion") if kind == DATASET.kind else status.get("champion")
    digest = next((v["digest"] for v in status.get("versions") or [] if v.get("version") == version
                   and "digest" in v), "")
    return RefState(found=body is not None, ready=bool(status.get("ready")),
                    url=(status.get("artifacts") or {}).get("url"), version=version, digest=digest)


async def observe_build(ctx: Context, owner: Owner, spec: Workload, status: dict[str, Any]) -> BuildObserved:
    """The build Job, whether the upload is in the bucket, and a signed URL when a new requestID asks for one."""
    build = spec.build
    if build is None:
        return BuildObserved()
    namespace, name = ctx.cluster.build_namespace, build_job_name(owner, build)
    job = await ctx.kube.job(namespace, name, ctx.jobs.get((namespace, name)), count_disruptions=False)
    refusal = await ctx.kube.pod_refusal(namespace, name) if job and job.podless else ""
    if build.upload is None:
        return BuildObserved(job=job, pods_refused=refusal)
    upload = upload_object(owner, build.upload.md5)
    signed = None
    if needs_signing(build, status):
        url, expires = await asyncio.to_thread(ctx.signer.sign_put, upload, build.upload.md5, UPLOAD_CONTENT_TYPE,
                                               datetime.datetime.now(datetime.UTC))
        signed = SignedUpload(url=url, expires_at=expires.strftime(TIME_FORMAT))
    stored = await asyncio.to_thread(ctx.store.holds, upload, build.upload.md5)
    return BuildObserved(job=job, stored=stored, signed=signed,
                         pods_refused=refusal)


async def observe_startup(ctx: Context, owner: Owner, pods: RolloutState | None, selector: dict[str, str],
                    loading: str) -> PodsStartup | None:
    """Where the pods are on their way to ready; listed only while a replica is not ready."""
    if pods is None or (pods.replicas and pods.ready >= pods.replicas):
        return None
    return startup(await ctx.kube.pods(owner.namespace, selector), WORKLOAD_CONTAINER, loading)


