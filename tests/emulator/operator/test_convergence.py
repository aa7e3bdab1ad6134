"""What a real control plane does to the operator, end to end: fields removed from a spec, transient API faults at
the awkward moments, refused writes, a failing bucket, and syncs with nothing to do.

The emulator behaves as the API server does here (tests/support/emulator.py): children are server-side applied,
an unchanged write is no update, and `k8s.fail()` injects a fault before a request touches any state.
"""

import asyncio
from typing import Any

import kmock
import pytest
from google.api_core import exceptions as gcs_errors
from google.cloud import storage

from modelplane.api import GROUP, VERSION
from modelplane.operator import handlers
from modelplane.operator.kube import FIELD_MANAGER, USER_AGENT
from modelplane.operator.recorder import POSTERS
from tests.support.emulator import ApiServerEmulator
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, exists, finish_job, obj_of, ready, write_artifacts

SERVER = "falcon-7b-squad"


def path(kind: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{kind.lower()}s" + (f"/{name}" if name else "")


async def patch_spec(k8s: kmock.KubernetesEmulator, kind: str, name: str, spec: dict[str, Any]) -> None:
    """What `kubectl apply` sends for a spec edit; a None removes the field."""
    response = await k8s.patch(path(kind, name), json={"spec": spec})
    assert response.status == 200, await response.text()


async def ready_model(k8s: kmock.KubernetesEmulator, bucket: storage.Bucket) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is True)


async def server_deployed(k8s: kmock.KubernetesEmulator, bucket: storage.Bucket, **spec: Any) -> None:
    """A ModelServer of a Ready Model, with its Deployment created."""
    await ready_model(k8s, bucket)
    await create(k8s, example("server-falcon-7b-squad.yaml", model={"name": "falcon-7b"}, **spec))
    await eventually(lambda: exists(k8s, "apps/v1/deployments", SERVER))


def pod_spec(k8s: kmock.KubernetesEmulator, resource: str, name: str) -> dict[str, Any]:
    return dict(k8s.objects[resource, NAMESPACE, name]["spec"]["template"]["spec"])


def writes(k8s: kmock.KubernetesEmulator) -> list[str]:
    """Every write the operator sent, as `METHOD path` (not the test's own)."""
    return [f"{r.method.value} {r.url.path}" for r in list(k8s)
            if r.method.value in ("POST", "PATCH", "PUT", "DELETE")
            and r.headers.get("User-Agent", "").startswith(USER_AGENT)]


# --- Finding 3: a field removed from the spec disappears from the child -------------------------------------------

async def test_removing_the_gpu_env_and_autoscaling_of_a_server_removes_them_from_its_children(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await server_deployed(k8s, bucket, env={"DEBUG": "1"}, autoscaling={"maxReplicas": 3})
    await eventually(lambda: exists(k8s, "autoscaling/v2/horizontalpodautoscalers", SERVER))
    before = pod_spec(k8s, "apps/v1/deployments", SERVER)
    assert before["nodeSelector"] and before["tolerations"]
    assert before["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "DEBUG", "value": "1"} in before["containers"][0]["env"]

    await patch_spec(k8s, "ModelServer", SERVER, {"resources": {"gpu": None}, "env": None, "autoscaling": None})
    await eventually(lambda: "nodeSelector" not in pod_spec(k8s, "apps/v1/deployments", SERVER))
    after = pod_spec(k8s, "apps/v1/deployments", SERVER)
    assert "tolerations" not in after
    assert "nvidia.com/gpu" not in after["containers"][0]["resources"]["limits"]
    assert all(var["name"] != "DEBUG" for var in after["containers"][0]["env"])
    await eventually(lambda: not exists(k8s, "autoscaling/v2/horizontalpodautoscalers", SERVER))
    # The HPA owned the replica count; without it the spec's replicas are applied again.
    assert k8s.objects["apps/v1/deployments", NAMESPACE, SERVER]["spec"]["replicas"] == 1


async def test_removing_the_gpu_of_a_notebook_removes_it_from_its_stateful_set(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await ready_model(k8s, bucket)
    await create(k8s, example("notebook-falcon-7b.yaml", dataset=None))
    await eventually(lambda: "nodeSelector" in pod_spec(k8s, "apps/v1/statefulsets", "falcon-7b"))
    await patch_spec(k8s, "Notebook", "falcon-7b", {"resources": {"gpu": None}})
    await eventually(lambda: "nodeSelector" not in pod_spec(k8s, "apps/v1/statefulsets", "falcon-7b"))
    after = pod_spec(k8s, "apps/v1/statefulsets", "falcon-7b")
    assert "tolerations" not in after and "nvidia.com/gpu" not in after["containers"][0]["resources"]["limits"]


async def test_a_field_another_manager_set_on_a_child_survives_the_operators_apply(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    """An admin's label on the Deployment is not the operator's to remove (server-side apply owns only its fields)."""
    await server_deployed(k8s, bucket)
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{SERVER}",
                               json={"metadata": {"labels": {"team": "nlp"}}})
    assert response.status == 200
    await patch_spec(k8s, "ModelServer", SERVER, {"replicas": 2})
    await eventually(lambda: k8s.objects["apps/v1/deployments", NAMESPACE, SERVER]["spec"]["replicas"] == 2)
    assert k8s.objects["apps/v1/deployments", NAMESPACE, SERVER]["metadata"]["labels"]["team"] == "nlp"
    applies = [r for r in list(k8s) if r.params.get("fieldManager") == FIELD_MANAGER]
    assert applies and all(r.params.get("force") == "true" for r in applies)


# --- Finding 4: a transient fault at any point converges ----------------------------------------------------------

async def test_a_500_on_the_status_write_after_the_job_succeeded_still_converges(
        k8s: ApiServerEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Loading")
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    k8s.fail("PATCH", r"/models/falcon-7b/status$", 500, times=2)
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Imported", timeout=10)
    assert k8s.faults[0].times == 0  # both faults were met, and retried past


async def test_a_restart_after_a_lost_first_status_write_runs_one_job(
        k8s: ApiServerEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    """The status that records a Dataset's load is lost after its Job was created, and the operator restarts (what
    it applied is forgotten). The new operator's sync has no load recorded, so it reads no Job: it creates it again,
    the API server answers 409 AlreadyExists (test_emulator holds the emulator to that), and the load goes on with
    the one Job."""
    k8s.fail("PATCH", r"/datasets/squad/status$", 500, times=1000)
    await create(k8s, example("dataset-squad.yaml", image="loader:1", build=None))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "dataset-squad-1") and k8s.faults[0].times < 1000)
    await operator.restart()
    await eventually(lambda: len(k8s["post batch/v1/jobs"]) >= 2)  # the new operator created it again
    k8s.faults[0].times = 0  # the API server is back
    await finish_job(k8s, "dataset-squad-1")
    await eventually(lambda: ready(k8s, "Dataset", "squad")["status"] == "True", timeout=10)
    assert {r.data["metadata"]["name"] for r in k8s["post batch/v1/jobs"]} == {"dataset-squad-1"}
    assert [name for resource, _, name in k8s.objects if resource == "batch/v1/jobs"] == ["dataset-squad-1"]


async def test_a_500_creating_a_fine_tunes_job_is_retried_until_the_job_exists(
        k8s: ApiServerEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await ready_model(k8s, bucket)
    await create(k8s, example("dataset-squad.yaml", image="loader:1", build=None))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "dataset-squad-1"))
    await create(k8s, example("model-falcon-7b-squad.yaml"))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "DatasetNotReady")
    k8s.fail("POST", r"/jobs$", 503, times=2)  # the Dataset turning Ready starts the run: its creation fails twice
    await finish_job(k8s, "dataset-squad-1")
    await eventually(lambda: exists(k8s, "batch/v1/jobs", "model-falcon-7b-squad-1"), timeout=10)
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "Training")
    assert k8s.faults[0].times == 0


async def test_a_500_reading_the_server_after_its_deployment_changed_still_converges(
        k8s: ApiServerEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await server_deployed(k8s, bucket)
    await eventually(lambda: ready(k8s, "ModelServer", SERVER)["reason"] == "Deploying")
    k8s.fail("GET", path("ModelServer", SERVER) + "$", 500, times=3)
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{SERVER}/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: k8s.faults[0].times == 0, timeout=10)  # every read failed, and was retried
    await eventually(lambda: ready(k8s, "ModelServer", SERVER)["reason"] == "Serving", timeout=10)


# --- Finding 6: refusals are visible ------------------------------------------------------------------------------

async def test_a_refused_job_creation_is_a_condition_quoting_the_api_server(
        k8s: ApiServerEmulator, operator: Operator) -> None:
    refusal = ('jobs.batch is forbidden: User "system:serviceaccount:modelplane-system:modelplane-operator" '
               'cannot create resource "jobs" in API group "batch" in the namespace "ml"')
    k8s.fail("POST", r"/jobs$", 403, times=1, message=refusal)
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Refused")
    condition = ready(k8s, "Model", "falcon-7b")
    assert refusal in condition["message"] and "HTTP 403" in condition["message"]
    assert condition["status"] == "False" and condition["observedGeneration"] == 1
    # Retried with backoff: once RBAC allows it, the run starts.
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Loading", timeout=10)


@pytest.mark.parametrize(("message", "reason"), [
    ('pods "model-falcon-7b-1-x" is forbidden: violates PodSecurity "baseline:latest": '
     'seccompProfile (pod or container "main" must not set securityContext.seccompProfile.type to "Unconfined")',
     "PodsRefused"),
    ('pods "model-falcon-7b-1-x" is forbidden: exceeded quota: modelplane-gpus, requested: '
     'requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1, limited: requests.nvidia.com/gpu=1',
     "QuotaExceeded"),
])
async def test_pods_the_job_controller_cannot_create_are_named(
        k8s: kmock.KubernetesEmulator, operator: Operator, message: str, reason: str) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Loading")
    event = {"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "FailedCreate", "message": message,
             "metadata": {"name": "model-falcon-7b-1.1", "namespace": NAMESPACE},
             "involvedObject": {"kind": "Job", "name": "model-falcon-7b-1", "namespace": NAMESPACE}}
    response = await k8s.post(f"/api/v1/namespaces/{NAMESPACE}/events", json=event)
    assert response.status == 200
    # The Job controller updates the Job (its status) as it gives up for now: that wakes the sync.
    response = await k8s.patch(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/model-falcon-7b-1/status",
                               json={"status": {"active": 0, "startTime": "2026-11-25T10:00:00Z"}})
    assert response.status == 200
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == reason)
    assert ready(k8s, "Model", "falcon-7b")["message"] == message


# --- Finding 7: the upload check survives any exception -----------------------------------------------------------

async def test_the_upload_check_survives_a_bucket_error(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket,
        monkeypatch: pytest.MonkeyPatch) -> None:
    md5 = "0" * 32
    holds = operator.store.holds
    failures = iter([gcs_errors.ServiceUnavailable("GCS is having a moment")] * 2)  # type: ignore[no-untyped-call]

    def flaky(name: str, expected_md5: str) -> bool:
        error = next(failures, None)
        if error:
            raise error
        return holds(name, expected_md5)

    monkeypatch.setattr(operator.store, "holds", flaky)
    await create(k8s, example("model-falcon-7b.yaml", image=None,
                              build={"upload": {"md5": md5, "requestID": "r1"}}))
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "AwaitingUpload", timeout=10)
    monkeypatch.setattr(operator.store, "holds", lambda name, expected_md5: True)  # the upload arrives
    await eventually(lambda: any("build" in r.data["metadata"]["name"] for r in k8s["post batch/v1/jobs"]),
                     timeout=10)


# --- Finding 8: a sync with nothing to do writes nothing ----------------------------------------------------------

async def test_a_sync_with_nothing_changed_writes_nothing(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await server_deployed(k8s, bucket)
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{SERVER}/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: ready(k8s, "ModelServer", SERVER)["reason"] == "Serving")
    # The Event that says so is posted after the status write.
    await eventually(lambda: any(r.data["reason"] == "Ready" and r.data["involvedObject"]["kind"] == "ModelServer"
                                 for r in k8s["post v1/events"]))

    # The Deployment controller reports again (nothing the server cares about changed): a sync, and no request
    # that writes (neither a child nor the status).
    settled, reads = len(writes(k8s)), len(k8s[f"get {GROUP}/{VERSION}/modelservers"])
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{SERVER}/status",
                               json={"status": {"observedGeneration": 5}})
    assert response.status == 200
    await eventually(lambda: len(k8s[f"get {GROUP}/{VERSION}/modelservers"]) > reads)  # it was synced
    await asyncio.sleep(0.3)  # time for any write that sync would make
    assert writes(k8s)[settled:] == []

    # A restart re-syncs everything: children are applied again (their digests are not kept across restarts), and
    # the API server finds nothing changed: no new version of any child, no status write.
    versions = {key: k8s.objects[key]["metadata"]["resourceVersion"] for key in (
        ("apps/v1/deployments", NAMESPACE, SERVER), ("v1/services", NAMESPACE, SERVER),
        (f"{GROUP}/{VERSION}/modelservers", NAMESPACE, SERVER))}
    settled = len(writes(k8s))
    await operator.restart()
    await eventually(lambda: any(f"deployments/{SERVER}" in w for w in writes(k8s)[settled:]))
    await asyncio.sleep(0.3)
    assert {key: k8s.objects[key]["metadata"]["resourceVersion"] for key in versions} == versions
    assert [w for w in writes(k8s)[settled:] if "/status" in w or w.startswith("POST")] == []


# --- Events are posted beside the syncs ------------------------------------------------------------------------------

async def test_an_events_api_that_hangs_holds_no_sync(
        k8s: ApiServerEmulator, operator: Operator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Event post hangs (an API server throttling Events), and more objects become Ready than there are
    workers: each still gets its status at once. Were Events posted by the syncs, the two workers would hang on the
    first two objects' Events for 30 s, and the others would wait for them."""
    answer = asyncio.Event()
    k8s.fail("POST", r"/events$", 503, times=100, after=answer)
    monkeypatch.setattr(handlers, "WORKERS", 2)
    await operator.restart()
    names = [f"d{i}" for i in range(6)]
    try:
        for name in names:
            await create(k8s, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Dataset", "metadata": {"name": name},
                               "spec": {"image": "loader:1"}})
        await eventually(lambda: all(ready(k8s, "Dataset", name)["reason"] == "Loading" for name in names))
        for name in names:
            await finish_job(k8s, f"dataset-{name}-1")
        await eventually(lambda: all(ready(k8s, "Dataset", name)["status"] == "True" for name in names))
        assert 1 <= 100 - k8s.faults[-1].times <= POSTERS  # Events were sent: one per poster, each hanging
    finally:
        answer.set()  # the operator then stops without waiting out its grace period
