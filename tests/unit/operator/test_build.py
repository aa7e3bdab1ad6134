"""Image builds as the reconciler decides them: the BuildKit Job, the Built condition, an upload awaited then
built from."""
import re
from typing import Any

import kubernetes_validate

from modelplane.api.common import Build
from modelplane.api.model import ModelSpec
from modelplane.builders.build import BUILD_DEADLINE, build_job_name, source_key
from modelplane.layout import BUILD_POOL_LABEL, upload_object
from modelplane.meta import KIND_LABEL, NAME_LABEL, NAMESPACE_LABEL
from modelplane.names import BUILD_NAMESPACE
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.build import BuildObserved, SignedUpload, build_stage, needs_signing
from modelplane.reconcile.common import JobState
from tests.support.facts import DEV_CLUSTER, KUBERNETES_VERSION, owner

NOW = "2026-11-24T10:00:00Z"
GIT = Build.model_validate({"git": {"url": "https://github.com/org/loader", "ref": "v1.2", "path": "images/loader"}})
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
UPLOAD = Build.model_validate({"upload": {"md5": MD5, "requestID": "r1"}})
OWNER = owner("Model", "m")


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def test_git_build_runs_rootless_buildkit_and_pushes_to_the_registry() -> None:
    stage = build_stage(OWNER, GIT, {}, DEV_CLUSTER, BuildObserved())
    assert (stage.ok, stage.reason, stage.image) == (False, "Building", None)
    (job,) = stage.children
    # The owner's namespace, kind and name with a hash of them, then the source's key: unique per build, valid.
    assert re.fullmatch(r"ml-model-m-[0-9a-f]{6}-build-[0-9a-f]{12}", job["metadata"]["name"])
    pod = pod_of(job)
    assert pod["serviceAccountName"] == "builder-ml" and pod["securityContext"]["runAsNonRoot"] is True
    (builder,) = pod["containers"]
    assert re.fullmatch(r"docker\.io/moby/buildkit:v[\d.]+-rootless@sha256:[0-9a-f]{64}", builder["image"])
    assert builder["command"] == ["buildctl-daemonless.sh"]
    args = builder["args"]
    image = f"{DEV_CLUSTER.registry}-ml/model-m:v1.2"  # the tenant's own repository
    assert f"type=image,name={image},push=true" in args
    assert "context=https://github.com/org/loader#v1.2:images/loader" in args
    # The layer cache lives in the tenant's repository too: no tenant's build reads another's cache.
    assert f"type=registry,ref={DEV_CLUSTER.registry}-ml/buildcache:model-m,mode=max" in args
    assert [c["name"] for c in pod["initContainers"]] == ["registry-login"]
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_builds_run_apart_in_gvisor_on_the_build_pool_and_end_in_bounded_time() -> None:
    (job,) = build_stage(OWNER, GIT, {}, DEV_CLUSTER, BuildObserved()).children
    meta, pod = job["metadata"], pod_of(job)
    assert meta["namespace"] == BUILD_NAMESPACE == DEV_CLUSTER.build_namespace
    # No owner reference across namespaces (the garbage collector would delete the Job): labels lead back.
    assert "ownerReferences" not in meta
    assert {meta["labels"][k] for k in (KIND_LABEL, NAME_LABEL, NAMESPACE_LABEL)} == {"Model", "m", "ml"}
    assert job["spec"]["template"]["metadata"]["labels"][NAMESPACE_LABEL] == "ml"
    assert pod["runtimeClassName"] == "gvisor" and pod["nodeSelector"] == {BUILD_POOL_LABEL: "builds"}
    assert pod["tolerations"] == [{"key": "modelplane.dev/builds", "operator": "Equal", "value": "builds",
                                   "effect": "NoSchedule"}]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all("appArmorProfile" not in c.get("securityContext", {}) for c in pod["containers"])
    assert job["spec"]["activeDeadlineSeconds"] == BUILD_DEADLINE <= 4 * 3600 and job["spec"]["backoffLimit"] <= 3
    # gVisor applies a pod's CPU and memory limits only when every container sets them.
    assert all({"cpu", "memory"} <= set(c["resources"]["limits"]) for c in pod["initContainers"] + pod["containers"])


def test_build_job_names_are_unique_across_tenants() -> None:
    """The build namespace is shared: `-` joins alone would make these two owners' Jobs one."""
    first, second = owner("Model", "b-c", namespace="a"), owner("Model", "c", namespace="a-b")
    assert build_job_name(first, GIT) != build_job_name(second, GIT)
    assert build_job_name(first, GIT).startswith("a-model-b-c-")
    long = owner("Model", "m" * 63, namespace="n" * 63)
    assert len(build_job_name(long, GIT)) <= 63


def test_finished_build_records_the_image_and_a_new_ref_rebuilds() -> None:
    done = build_stage(OWNER, GIT, {}, DEV_CLUSTER, BuildObserved(job=JobState(succeeded=True)))
    # The tenant's own repository (the registry's name with `-ml`), the kind and name, the git ref as the tag.
    assert done.ok and done.image == "us-central1-docker.pkg.dev/modelplane-dev/modelplane-dev-ml/model-m:v1.2"
    assert done.fields["image"] == done.image and re.fullmatch(r"[0-9a-f]{12}", done.fields["builtFrom"])
    again = build_stage(OWNER, GIT, done.fields, DEV_CLUSTER, BuildObserved())
    assert again.ok and again.children == []  # already built: no Job
    newer = Build.model_validate({"git": {**GIT.git.model_dump(), "ref": "v1.3"}})  # type: ignore[union-attr]
    rebuild = build_stage(OWNER, newer, done.fields, DEV_CLUSTER, BuildObserved())
    assert rebuild.reason == "Building" and rebuild.children[0]["metadata"]["name"] != build_job_name(OWNER, GIT)
    assert rebuild.children[0]["metadata"]["name"].endswith(f"-build-{source_key(newer)}") \
        and source_key(newer) != done.fields["builtFrom"]  # another ref: another key


def test_failed_build_shows_the_log_tail() -> None:
    failed = build_stage(OWNER, GIT, {}, DEV_CLUSTER,
                         BuildObserved(job=JobState(failed=True, message="ERROR: failed to solve: pip install")))
    assert (failed.ok, failed.reason, failed.message) == (False, "BuildFailed", "ERROR: failed to solve: pip install")


def test_upload_waits_for_the_tarball_then_builds_from_it() -> None:
    signed = SignedUpload(url="https://storage.googleapis.com/b/x?X-Goog-Signature=s",
                          expires_at="2026-11-24T10:15:00Z")
    waiting = build_stage(OWNER, UPLOAD, {}, DEV_CLUSTER, BuildObserved(signed=signed))
    assert waiting.reason == "AwaitingUpload" and waiting.children == []
    assert waiting.fields["buildUpload"] == {"requestID": "r1", "url": signed.url, "expiresAt": signed.expires_at,
                                             "stored": False}
    assert not needs_signing(UPLOAD, waiting.fields)  # answered: the same requestID is not signed twice
    building = build_stage(OWNER, UPLOAD, waiting.fields, DEV_CLUSTER, BuildObserved(stored=True))
    (job,) = building.children
    pod = pod_of(job)
    assert [c["name"] for c in pod["initContainers"]] == ["registry-login", "fetch-upload"]
    assert f"gs://{DEV_CLUSTER.bucket}/{upload_object(OWNER, MD5)}" in pod["initContainers"][1]["command"][2]
    assert "context=/workspace/context" in pod["containers"][0]["args"]
    assert building.fields["buildUpload"]["stored"] is True
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_workload_runs_the_built_image_and_build_failure_is_final() -> None:
    spec = ModelSpec.model_validate({"build": GIT.model_dump(by_alias=True)})
    built = build_stage(OWNER, GIT, {}, DEV_CLUSTER, BuildObserved(job=JobState(succeeded=True))).fields
    outcome = reconcile(OWNER, spec, built, DEV_CLUSTER, Observed(), NOW)
    job = next(c for c in outcome.children if c["kind"] == "Job")
    assert pod_of(job)["containers"][0]["image"] == built["image"]
    assert {c["type"]: c["reason"] for c in outcome.status["conditions"]} == {"Ready": "Loading", "Built": "Built"}
    failed = reconcile(OWNER, spec, {}, DEV_CLUSTER, Observed(build=BuildObserved(job=JobState(failed=True))), NOW)
    assert failed.status["conditions"][0]["reason"] == "BuildFailed"
    assert reconcile(OWNER, spec, failed.status, DEV_CLUSTER, Observed(), NOW).children == []
