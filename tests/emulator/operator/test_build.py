"""Image builds: the BuildKit Job, the Built condition, signed uploads against fake-gcs-server, and the full flow
upload -> build -> train -> serve -> roll on retrain in one test."""
import base64
import datetime
import hashlib
import io
import tarfile
import urllib.parse

import kmock
from google.cloud import storage
from google.oauth2 import service_account

from modelplane.api.common import Build
from modelplane.builders.build import build_job_name
from modelplane.names import BUILD_NAMESPACE
from modelplane.storage import ArtifactStore, UploadSigner
from tests.support.facts import DEV_CLUSTER, NAMESPACE, owner
from tests.support.kube import Operator, eventually
from tests.support.objects import create, exists, finish_job, obj_of, ready, write_artifacts
from tests.support.uploads import put_signed


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
