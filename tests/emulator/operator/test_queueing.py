"""Runs through Kueue, and runs that survive spot preemption, as the operator sees them on the emulator: Kueue's
webhook suspends a labelled Job and its Workload says why it waits (kueue.x-k8s.io/v1beta2, labelled with the Job's
UID); a pod that a disruption took is replaced by the Job controller and counted as a resume."""
from __future__ import annotations

from typing import Any

import kmock
from google.cloud import storage

from modelplane.names import QUEUE_LABEL
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, exists, finish_job, obj_of, ready, write_artifacts

JOB = "model-falcon-7b-1"
JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
WAIT = ("couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default-flavor, "
        "2 more needed")


def workload(job: dict[str, Any], reserved: dict[str, str]) -> dict[str, Any]:
    """The Workload Kueue makes for a Job (its name is Kueue's own; the label is what leads back to the Job)."""
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
            "metadata": {"name": "job-model-falcon-7b-1-3b1f2", "namespace": NAMESPACE,
                         "labels": {"kueue.x-k8s.io/job-uid": job["metadata"]["uid"]}},
            "spec": {"queueName": job["metadata"]["labels"][QUEUE_LABEL]},
            "status": {"conditions": [{"type": "QuotaReserved", **reserved}]}}


def disrupted_pod(name: str) -> dict[str, Any]:
    """A pod of the Job that a spot node's preemption took (the DisruptionTarget condition, then Failed)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"job-name": JOB}},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
            "status": {"phase": "Failed", "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                 "message": "Pod was terminated in response to imminent node shutdown."}]}}


async def test_a_run_kueue_holds_is_queued_with_why_then_runs_and_resumes_after_preemption(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    k8s.resources["kueue.x-k8s.io/v1beta2/workloads"] = kmock.ResourceInfo(
        kind="Workload", singular="workload", namespaced=True, verbs={"list", "get", "create", "patch"})
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: exists(k8s, "batch/v1/jobs", JOB))
    job = k8s.objects["batch/v1/jobs", NAMESPACE, JOB]
    assert job["metadata"]["labels"][QUEUE_LABEL] == "cpu"  # no GPU: the CPU queue

    # Play Kueue: its webhook suspends the Job, its Workload cannot reserve quota yet; its visibility API is not
    # serving yet (503), so the reason comes alone.
    pending = workload(dict(job), {"status": "False", "reason": "Pending", "message": WAIT})
    workloads = f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{NAMESPACE}/workloads"
    line = f"get /apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{NAMESPACE}/localqueues/cpu/pendingworkloads"
    visibility: dict[str, Any] = {"answer": 503}
    k8s[line] << (lambda: visibility["answer"])
    assert (await k8s.post(workloads, json=pending)).status == 200
    assert (await k8s.patch(f"{JOBS}/{JOB}", json={"spec": {"suspend": True}})).status == 200
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Queued")
    assert ready(k8s, "Model", "falcon-7b")["message"] == f"job {JOB} is queued: {WAIT}"
    # Then it serves: the place in line shows at the next look (the restart is that look, sooner than the poll).
    visibility["answer"] = {"kind": "PendingWorkloadsSummary", "apiVersion": "visibility.kueue.x-k8s.io/v1beta2",
                            "items": [
        {"metadata": {"name": "job-other-1-aa1"}, "localQueueName": "cpu", "priority": 0,
         "positionInLocalQueue": 0, "positionInClusterQueue": 1},
        {"metadata": {"name": pending["metadata"]["name"], "namespace": NAMESPACE}, "localQueueName": "cpu",
         "priority": 0, "positionInLocalQueue": 1, "positionInClusterQueue": 4}]}
    await operator.restart()
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["message"] ==
                     f"job {JOB} is queued: {WAIT} (number 2 in queue cpu, 5 in its cluster queue)")

    # Admitted: Kueue unsuspends the Job and its pod runs.
    assert (await k8s.patch(f"{JOBS}/{JOB}", json={"spec": {"suspend": False}})).status == 200
    assert (await k8s.patch(f"{JOBS}/{JOB}/status", json={"status": {"active": 1}})).status == 200
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Loading")

    # The spot node goes: its pod is a disruption, not a failure; the Job controller makes another, which resumes.
    assert (await k8s.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=disrupted_pod(f"{JOB}-a1"))).status == 200
    assert (await k8s.patch(f"{JOBS}/{JOB}/status", json={"status": {"active": 1, "ready": 0}})).status == 200
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["run"].get("resumes") == 1)
    assert ready(k8s, "Model", "falcon-7b")["reason"] == "Loading"

    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    await finish_job(k8s, JOB)
    await eventually(lambda: ready(k8s, "Model", "falcon-7b")["reason"] == "Imported")
    record = k8s.objects["modelplane.dev/v1alpha1/modelversions", NAMESPACE, "falcon-7b-v1"]
    assert record["spec"]["resumes"] == 1
