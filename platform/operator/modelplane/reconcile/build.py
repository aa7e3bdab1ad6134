"""The build stage every kind shares: from spec.build to an image in the registry, recorded in status.image.

Pure like the reconcilers: what was observed (the build Job, whether the upload is in the bucket, a freshly signed
upload URL) goes in; the Built condition, the build Job to create and the status fields come out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.api.common import Build, Workload
from modelplane.api.reasons import Reason
from modelplane.builders.build import build_job, build_job_name, image_ref, source_key
from modelplane.builders.workload import gpu_problem
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner
from modelplane.names import tenant_repository
from modelplane.reconcile.common import JobState, Outcome, Reply, Stage, pod_refusal_reason

BUILT = Reason.BUILT


@dataclass(frozen=True)
class SignedUpload:
    url: str
    expires_at: str


@dataclass(frozen=True)
class BuildObserved:
    job: JobState | None = None
    pods_refused: str = ""  # why the build Job's pod cannot be created (a FailedCreate event), or ""
    stored: bool = False  # the bucket holds the upload with the spec's md5
    signed: SignedUpload | None = None  # a URL signed for a requestID the status does not answer yet


def needs_signing(build: Build, status: dict[str, Any]) -> bool:
    """A new requestID asks for a new signed URL."""
    answered = (status.get("buildUpload") or {}).get("requestID")
    return build.upload is not None and answered != build.upload.request_id


def build_stage(owner: Owner, build: Build, status: dict[str, Any], cluster: ClusterFacts,
                observed: BuildObserved) -> Stage:
    key, image = source_key(build), image_ref(cluster, owner, build)
    fields: dict[str, Any] = {}
    if build.upload:
        upload = dict(status.get("buildUpload") or {})
        if observed.signed:
            upload = {"requestID": build.upload.request_id, "url": observed.signed.url,
                      "expiresAt": observed.signed.expires_at}
        if upload:
            fields["buildUpload"] = {**upload, "stored": observed.stored}

    def stage(ok: bool, reason: str, message: str, children: list[dict[str, Any]] | None = None) -> Stage:
        return Stage(BUILT, ok, reason, message, children or [], fields, image if ok else None)

    if status.get("builtFrom") == key and status.get("image") == image:
        return stage(True, Reason.BUILT, f"built {image}")
    if build.upload and not observed.stored:
        return stage(False, Reason.AWAITING_UPLOAD, "PUT the build context tarball to status.buildUpload.url "
                                              "(kubectl applybuild does this)")
    job = observed.job
    name = build_job_name(owner, build)
    if job is None:
        return stage(False, Reason.BUILDING, f"build job {name} started", [build_job(owner, build, image, cluster)])
    if not (job.succeeded or job.failed):
        if observed.pods_refused:
            return stage(False, pod_refusal_reason(observed.pods_refused), observed.pods_refused)
        return stage(False, Reason.BUILDING, f"build job {name} is running")
    if job.failed:
        return stage(False, Reason.BUILD_FAILED, job.message or f"build job {name} failed")
    fields.update(image=image, builtFrom=key)
    return stage(True, Reason.BUILT, f"built {image}")


def foreign_image_problem(image: str | None, namespace: str, cluster: ClusterFacts) -> str | None:
    """Why a tenant may not run `image`: it lies in the platform's repository or another tenant's. Nodes pull with one
    identity that reads every repository, so this check, not IAM, keeps a tenant from running another's images."""
    own = f"{tenant_repository(cluster.registry, namespace)}/"
    if image and image.startswith((f"{cluster.registry}/", f"{cluster.registry}-")) and not image.startswith(own):
        return f"image {image} is not in this namespace's repository {own.rstrip('/')}; use an image built here"
    return None


def begin(owner: Owner, spec: Workload, status: dict[str, Any], cluster: ClusterFacts, observed: BuildObserved,
          now: str, **fields: Any) -> tuple[Reply, str | None, Outcome | None]:
    """What every reconciler starts with: its reply builder, the image to run (None for the kind's default), and
    an early answer when the work cannot start (a GPU this cluster lacks, a build not done)."""
    problem = gpu_problem(spec, cluster)
    if problem:  # refused before anything is built or uploaded
        reply = Reply(owner.generation, status, now, None, fields)
        return reply, None, reply(False, Reason.GPU_NOT_OFFERED, problem)
    problem = foreign_image_problem(spec.image, owner.namespace, cluster)
    if problem:
        reply = Reply(owner.generation, status, now, None, fields)
        return reply, None, reply(False, Reason.INVALID_SPEC, problem)
    stage = build_stage(owner, spec.build, status, cluster, observed) if spec.build else None
    reply = Reply(owner.generation, status, now, stage, fields)
    if reply.waiting_for_build:
        return reply, None, reply.build_wait()
    return reply, stage.image if stage else spec.image, None
