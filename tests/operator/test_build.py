"""Image builds: the BuildKit Job, the Built condition, signed uploads against fake-gcs-server, and the full flow
upload -> build -> train -> serve -> roll on retrain in one test."""

import base64
import datetime
import hashlib
import io
import re
import tarfile
import urllib.parse
from typing import Any

import kmock
import kubernetes_validate
from google.cloud import storage
from google.oauth2 import service_account

from modelplane.api.common import Build
from modelplane.api.model import ModelSpec
from modelplane.builders.build import BUILD_DEADLINE, build_job_name, image_ref, source_key
from modelplane.layout import BUILD_POOL_LABEL, upload_object
from modelplane.meta import KIND_LABEL, NAME_LABEL, NAMESPACE_LABEL
from modelplane.names import BUILD_NAMESPACE
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.build import BuildObserved, SignedUpload, build_stage, needs_signing
from modelplane.reconcile.common import JobState
from modelplane.storage import ArtifactStore, UploadSigner
from tests.conftest import put_signed
from tests.support.kube import DEV_CLUSTER, KUBERNETES_VERSION, NAMESPACE, Operator, eventually, owner
from tests.support.objects import create, exists, finish_job, obj_of, ready, write_artifacts

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
    assert job["metadata"]["name"] == build_job_name(OWNER, GIT)
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
    assert done.ok and done.image == image_ref(DEV_CLUSTER, OWNER, GIT)
    assert done.fields == {"image": done.image, "builtFrom": source_key(GIT)}
    again = build_stage(OWNER, GIT, done.fields, DEV_CLUSTER, BuildObserved())
    assert again.ok and again.children == []  # already built: no Job
    newer = Build.model_validate({"git": {**GIT.git.model_dump(), "ref": "v1.3"}})  # type: ignore[union-attr]
    rebuild = build_stage(OWNER, newer, done.fields, DEV_CLUSTER, BuildObserved())
    assert rebuild.reason == "Building" and rebuild.children[0]["metadata"]["name"] != build_job_name(OWNER, GIT)


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


def test_signed_url_is_v4_bound_to_md5_and_accepted_by_the_bucket(
        bucket: storage.Bucket, signing_credentials: service_account.Credentials) -> None:
    data = b"a build context"
    md5 = hashlib.md5(data).hexdigest()
    now = datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.UTC)
    url, expires = UploadSigner(bucket, signing_credentials).sign_put("uploads/ml/models/m/x.tar.gz", md5,
                                                                      "application/octet-stream", now)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert url.startswith(f"https://storage.googleapis.com/{bucket.name}/uploads/ml/models/m/x.tar.gz?")
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["900"]
    assert "content-md5" in query["X-Goog-SignedHeaders"][0] and expires == now + datetime.timedelta(minutes=15)
    assert put_signed(url, data, base64.b64encode(bytes.fromhex(md5)).decode()) == 200
    store = ArtifactStore(bucket.client, bucket.name)
    assert store.holds("uploads/ml/models/m/x.tar.gz", md5)
    assert not store.holds("uploads/ml/models/m/x.tar.gz", "0" * 32)
    assert not store.holds("uploads/ml/models/m/missing.tar.gz", md5)


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


async def test_upload_build_train_serve_and_roll_on_retrain(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                            bucket: storage.Bucket) -> None:
    """The whole user flow through the operator, playing the Job and Deployment controllers."""
    context = tarball({"Dockerfile": b"FROM python:3.11-slim\nCOPY train.py /\n", "train.py": b"print('hi')\n"})
    md5 = hashlib.md5(context).hexdigest()
    await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "metadata": {"name": "base"},
                       "spec": {"image": "loader:1", "params": {"name": "tiny"}}})
    await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "data"},
                       "spec": {"image": "loader:1"}})
    write_artifacts(bucket, "ml/models/base/v1/", {"weights.bin": 100})
    await finish_job(k8s, "model-base-1")
    await finish_job(k8s, "dataset-data-1")

    # 1. Upload the build context through the signed URL the operator answers with.
    await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "metadata": {"name": "tuned"},
                       "spec": {"build": {"upload": {"md5": md5, "requestID": "req-1"}},
                                "baseModel": {"name": "base"}, "dataset": {"name": "data"},
                                "resources": {"gpu": {"type": "nvidia-l4"}}}})
    await eventually(lambda: ready(k8s, "Model", "tuned")["reason"] == "AwaitingUpload")
    upload = obj_of(k8s, "Model", "tuned")["status"]["buildUpload"]
    assert upload["requestID"] == "req-1" and upload["stored"] is False
    assert put_signed(upload["url"], context, base64.b64encode(bytes.fromhex(md5)).decode()) == 200

    # 2. The operator notices the upload and builds; the build finishes; training runs the built image.
    build = build_job_name(owner("Model", "tuned"), Build.model_validate({"upload": {"md5": md5, "requestID": "x"}}))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", build, BUILD_NAMESPACE), timeout=10)
    await finish_job(k8s, build, namespace=BUILD_NAMESPACE)
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-tuned-1"))
    image = k8s.objects["batch/v1/jobs", NAMESPACE, "model-tuned-1"]["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == f"{DEV_CLUSTER.registry}-ml/model-tuned:{md5}"
    assert obj_of(k8s, "Model", "tuned")["status"]["buildUpload"]["stored"] is True
    write_artifacts(bucket, "ml/models/tuned/v1/", {"adapter.bin": 10})
    await finish_job(k8s, "model-tuned-1")
    await eventually(lambda: ready(k8s, "Model", "tuned")["reason"] == "Trained")

    # 3. Serve it, and play the Deployment controller.
    await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelServer", "metadata": {"name": "srv"},
                       "spec": {"model": {"name": "tuned"}}})
    await eventually(lambda: exists(k8s, "apps/v1/deployments", "srv"))
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/srv/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: ready(k8s, "ModelServer", "srv")["reason"] == "Serving")

    # 4. Retrain (a new generation of the Model): the server rolls to the new weights once they are Ready.
    response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/models/tuned",
                               json={"metadata": {"generation": 2}, "spec": {"params": {"epochs": 2}}})
    assert response.status == 200
    await finish_job(k8s, "model-tuned-2")

    def served() -> str:
        template = k8s.objects["apps/v1/deployments", NAMESPACE, "srv"]["spec"]["template"]
        return str(template["metadata"]["annotations"]["modelplane.dev/model-url"])

    await eventually(lambda: served().endswith("/ml/models/tuned/v2/"))
    assert len([r for r in k8s["post batch/v1/jobs"] if r.data["metadata"]["name"] == build]) == 1  # built once
