"""The operator end to end, in-process against kmock's Kubernetes emulator and fake-gcs-server.

The tests play the Job controller (they patch Job status through the API, so watch events flow) and write real
objects into the bucket where a loader would have.
"""

import asyncio
from typing import Any

import kmock
import pytest
from google.cloud import storage

from modelplane.api import GROUP, VERSION
from modelplane.operator import handlers
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, exists, finish_job, obj_of, ready, resource, write_artifacts


async def test_model_import_runs_a_job_and_becomes_ready_with_artifacts(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-1"))
    job = k8s.objects["batch/v1/jobs", NAMESPACE, "model-falcon-7b-1"]
    assert job["metadata"]["ownerReferences"][0]["name"] == "falcon-7b"
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelplane"
    assert exists(k8s, "v1/configmaps", "model-falcon-7b-1-params")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Loading")
    assert obj_of(k8s, "Model", "falcon-7b")["status"]["observedGeneration"] == 1

    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"config.json": 100, "model.safetensors": 4096})
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is True)
    status = obj_of(k8s, "Model", "falcon-7b")["status"]
    assert ready(k8s, "Model", "falcon-7b")["reason"] == "Imported"
    assert status["artifacts"] == {"url": f"gs://{bucket.name}/ml/models/falcon-7b/v1/",
                                   "files": ["config.json", "model.safetensors"], "count": 2, "size": "4.1Ki",
                                   "bytes": 4196}


async def test_fine_tune_waits_for_its_inputs_by_watching_then_trains(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await create(k8s, example("model-falcon-7b-squad.yaml"))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "BaseModelNotFound")

    await create(k8s, example("model-falcon-7b.yaml"))
    await create(k8s, example("dataset-squad.yaml", image="loader:1", build=None))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "BaseModelNotReady")
    assert not exists(k8s, "batch/v1/jobs", "model-falcon-7b-squad-1")

    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "DatasetNotReady")
    await finish_job(k8s, "dataset-squad-1")
    # No poll: the Dataset turning Ready wakes the fine-tune through the watch.
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "Training")
    pod = k8s.objects["batch/v1/jobs", NAMESPACE, "model-falcon-7b-squad-1"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["basemodel"]["csi"]["readOnly"] is True
    assert "only-dir=ml/models/falcon-7b/v1" in volumes["basemodel"]["csi"]["volumeAttributes"]["mountOptions"]
    assert "only-dir=ml/datasets/squad/v1" in volumes["dataset"]["csi"]["volumeAttributes"]["mountOptions"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}

    write_artifacts(bucket, "ml/models/falcon-7b-squad/v1/", {"adapter.bin": 2048})
    await finish_job(k8s, "model-falcon-7b-squad-1")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "Trained")


async def test_failed_job_is_visible_and_not_retried(k8s: kmock.KubernetesEmulator, operator: Operator) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-1"))
    await finish_job(k8s, "model-falcon-7b-1", ok=False,
                     message="Traceback ...\nOSError: tiiuae/falcon-7b is not a valid model identifier")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "JobFailed")
    assert "is not a valid model identifier" in ready(k8s, "Model", "falcon-7b")["message"]
    assert obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is False
    assert len(k8s["post batch/v1/jobs"]) == 1


async def test_spec_change_starts_a_new_generation(k8s: kmock.KubernetesEmulator, operator: Operator) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-1"))
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is True)
    response = await k8s.patch(f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/models/falcon-7b",
                               json={"metadata": {"generation": 2}, "spec": {"params": {"name": "tiiuae/falcon-40b"}}})
    assert response.status == 200
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-2"))
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["observedGeneration"] == 2)
    assert ready(k8s, "Model", "falcon-7b")["reason"] == "Loading"


async def test_an_edit_of_on_delete_alone_trains_nothing_again(k8s: kmock.KubernetesEmulator,
                                                               operator: Operator) -> None:
    """onDelete says what becomes of the data, not what a run makes: a Ready Model whose Job is gone (its TTL) keeps
    its version and its Ready, and nothing trains again. Its run's ending, which it goes by, survives the API
    server's pruning of the status (the CRD has the field)."""
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-1"))
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Imported")
    assert obj_of(k8s, "Model", "falcon-7b")["status"]["run"]["ended"]["reason"] == "Imported"
    assert (await k8s.delete(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/model-falcon-7b-1")).status == 200
    response = await k8s.patch(f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/models/falcon-7b",
                               json={"spec": {"onDelete": "Delete"}})
    assert response.status == 200
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["observedGeneration"] == 2)
    assert (ready(k8s, "Model", "falcon-7b")["status"], ready(k8s, "Model", "falcon-7b")["reason"]) == (
        "True", "Imported")
    assert len(k8s["post batch/v1/jobs"]) == 1


async def test_gpu_type_the_cluster_lacks_is_refused(k8s: kmock.KubernetesEmulator, operator: Operator) -> None:
    await create(k8s, example("model-falcon-7b.yaml", resources={"gpu": {"type": "nvidia-h100-80gb", "count": 1}}))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "GPUNotOffered")
    assert "offered GPU types: nvidia-l4, nvidia-tesla-a100" in ready(k8s, "Model", "falcon-7b")["message"]
    assert len(k8s["post batch/v1/jobs"]) == 0


async def test_invalid_object_gets_a_reason_not_a_crash(k8s: kmock.KubernetesEmulator, operator: Operator) -> None:
    """kmock has no admission: an object the CRD would refuse reaches the operator and must not crash it."""
    await create(k8s, example("model-falcon-7b.yaml", resources={"gpu": {"type": "nvidia-a10"}}))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "InvalidSpec")
    assert "spec.resources.gpu.type" in ready(k8s, "Model", "falcon-7b")["message"]


async def test_restart_mid_run_creates_no_duplicate(k8s: kmock.KubernetesEmulator, operator: Operator) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-1"))
    await operator.restart()
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is True)
    # The resumed operator observed the running Job and created nothing.
    assert [request.data["metadata"]["name"] for request in k8s["post batch/v1/jobs"]] == ["model-falcon-7b-1"]


async def ready_with_data(k8s: kmock.KubernetesEmulator, bucket: storage.Bucket, **spec: Any) -> None:
    await create(k8s, example("model-falcon-7b.yaml", **spec))
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is True)


def blobs(bucket: storage.Bucket) -> list[str]:
    return [blob.name for blob in bucket.client.list_blobs(bucket)]


async def test_deleting_a_model_keeps_its_data_by_default(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                          bucket: storage.Bucket) -> None:
    await ready_with_data(k8s, bucket)
    assert "finalizers" not in obj_of(k8s, "Model", "falcon-7b")["metadata"]  # nothing to do on deletion
    response = await k8s.delete(f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/models/falcon-7b")
    assert response.status == 200
    await eventually(lambda: not exists(k8s, resource("Model"), "falcon-7b"))
    assert blobs(bucket) == ["ml/models/falcon-7b/v1/lineage.json", "ml/models/falcon-7b/v1/model.safetensors"]


async def test_on_delete_delete_removes_the_data(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                 bucket: storage.Bucket) -> None:
    await ready_with_data(k8s, bucket, onDelete="Delete")
    bucket.blob("ml/models/falcon-7b-other/v1/keep").upload_from_string(b"k")
    finalizers = ["modelplane.dev/finalizer"]  # deletion waits for the data to go
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["metadata"]["finalizers"] == finalizers)
    response = await k8s.delete(f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/models/falcon-7b")
    assert response.status == 200
    await eventually(lambda: blobs(bucket) == ["ml/models/falcon-7b-other/v1/keep"])
    await eventually(lambda: not exists(k8s, resource("Model"), "falcon-7b"))


async def test_objects_at_rest_are_not_synced_at_a_restart_and_resynced_rarely(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ready Dataset without a schedule and a Ready Model that does not retrain are at rest: nothing to do until
    they change. A restart lists them and their Jobs (the Dataset's gone: its TTL) and syncs neither; the resync
    (every 10 minutes, here every 0.1 s) passes them by but for every REST_RESYNCS-th (10 hours): an idle platform
    sends almost nothing, and lists no bucket (a billed operation). A scheduled Dataset is not at rest: it is synced
    and resynced, and reads nothing of its finished load, but its build."""
    nightly = example("dataset-squad.yaml", image="loader:1", build=None, schedule={"cron": "0 0 1 1 *"})
    nightly["metadata"]["name"] = "nightly"
    for obj in (example("dataset-squad.yaml", image="loader:1", build=None), nightly, example("model-falcon-7b.yaml")):
        await create(k8s, obj)
    objects = (("Dataset", "squad"), ("Dataset", "nightly"), ("Model", "falcon-7b"))
    jobs = ("dataset-squad-1", "dataset-nightly-1", "model-falcon-7b-1")
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    for job in jobs:
        await finish_job(k8s, job)
    await eventually(lambda: all(ready(k8s, kind, name)["status"] == "True" for kind, name in objects))
    statuses = [obj_of(k8s, kind, name)["status"] for kind, name in objects]
    await operator.stop()
    for job in jobs[:2]:
        assert (await k8s.delete(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{job}")).status == 200
    listings: list[str] = []
    list_blobs = storage.Client.list_blobs

    def listing(client: storage.Client, *args: Any, **kwargs: Any) -> Any:
        listings.append(str(kwargs.get("prefix")))
        return list_blobs(client, *args, **kwargs)

    def gets() -> list[str]:
        return [r.url.path.split("/")[-1] for r in list(k8s)[seen:] if r.method.value == "GET" and r.name]

    monkeypatch.setattr(storage.Client, "list_blobs", listing)
    monkeypatch.setattr(handlers, "RESYNC_SECONDS", 0.1)
    seen = len(list(k8s))
    await operator.start()
    await asyncio.sleep(1.0)  # the start's lists and syncs, then about ten resyncs
    assert set(gets()) == {"nightly"} and len(gets()) >= 5  # the scheduled one, at the start and at each resync
    since = [r for r in list(k8s)[seen:] if "watch" not in r.params]
    assert [r.url.path for r in since if "/jobs/" in r.url.path] == []
    assert listings == []
    assert [r.url.path for r in since if r.method.value in ("PATCH", "POST", "DELETE")] == []
    assert [obj_of(k8s, kind, name)["status"] for kind, name in objects] == statuses
    monkeypatch.setattr(handlers, "REST_RESYNCS", 3)
    await eventually(lambda: {"squad", "falcon-7b"} <= set(gets()))  # the safety net's rare resync
    assert gets().count("nightly") > gets().count("squad") and listings == []


async def test_new_objects_read_their_jobs_from_the_watch_only(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    """Before its status records a load or run, an object has no Job to read: its first sync sends no GET for one
    (it would be a 404 for every new object). After that, the Job comes from the watch (handlers.job_changed keeps
    what a sync reads of it): through a whole load and a whole training run, no Job is ever read by name."""
    await create(k8s, example("model-falcon-7b.yaml"))
    await create(k8s, example("dataset-squad.yaml", image="loader:1", build=None))
    await finish_job(k8s, "dataset-squad-1")
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: ready(k8s, "Dataset", "squad")["status"] == "True")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["status"] == "True")
    assert exists(k8s, "batch/v1/jobs", "dataset-squad-1") and exists(k8s, "batch/v1/jobs", "model-falcon-7b-1")
    assert [r.url.path for r in list(k8s) if r.method.value == "GET" and "/jobs/" in r.url.path] == []
