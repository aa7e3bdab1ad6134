"""Multi-node training on the emulator: a Model's JobSet observed through its status, to Ready."""
from __future__ import annotations

import kmock
import pytest
from google.cloud import storage

from modelplane.names import QUEUE_LABEL
from tests.support import jobset as upstream
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, exists, finish_job, obj_of, ready, write_artifacts

JOBSETS = "jobset.x-k8s.io/v1alpha2/jobsets"
JOBSETS_PATH = f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{NAMESPACE}/jobsets"
NOW = "2026-12-03T10:00:00Z"


@pytest.fixture
def k8s(k8s: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """The emulator with JobSet's CRD installed, before the operator starts watching."""
    k8s.resources[JOBSETS] = kmock.ResourceInfo(kind="JobSet", singular="jobset", namespaced=True,
                                                subresources={"status"},
                                                verbs={"list", "watch", "get", "patch", "create", "delete"})
    return k8s


async def test_a_multi_node_fine_tune_is_one_jobset_and_its_completion_is_recorded(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    model = example("model-falcon-7b-squad.yaml")
    model["spec"]["resources"]["nodes"] = 2
    await create(k8s, example("model-falcon-7b.yaml"))
    await create(k8s, example("dataset-squad.yaml", image="loader:1", build=None))
    await finish_job(k8s, "model-falcon-7b-1")
    await finish_job(k8s, "dataset-squad-1")
    await create(k8s, model)
    name = "model-falcon-7b-squad-1"
    await eventually(lambda: exists(k8s, JOBSETS, name))
    jobset = await (await k8s.get(f"{JOBSETS_PATH}/{name}")).json()  # as the API server serves it: plain JSON
    assert upstream.problems(jobset) == []
    assert jobset["metadata"]["labels"][QUEUE_LABEL] == "gpu-nvidia-l4"
    assert not exists(k8s, "batch/v1/jobs", name)
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "Training")

    # Play JobSet's controller: a disruption restarted the gang (not counted towards maxRestarts): a resume.
    status_url = f"{JOBSETS_PATH}/{name}/status"
    restarted = {"restarts": 1, "restartsCountTowardsMax": 0,
                 "replicatedJobsStatus": [{"name": "node", "active": 1, "ready": 1, "succeeded": 0, "failed": 0,
                                           "suspended": 0}]}
    assert (await k8s.patch(status_url, json={"status": restarted})).status == 200
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b-squad")["status"]["run"].get("resumes") == 1)
    # Then all of its pods completed.
    write_artifacts(bucket, "ml/models/falcon-7b-squad/v1/", {"adapter.bin": 2048})
    completed = {"terminalState": "Completed", "conditions": [
        {"type": "Completed", "status": "True", "reason": "AllJobsCompleted", "message": "",
         "lastTransitionTime": NOW}]}
    assert (await k8s.patch(status_url, json={"status": completed})).status == 200
    await eventually(lambda: ready(k8s, "Model", "falcon-7b-squad")["reason"] == "Trained")
    record = obj_of(k8s, "ModelVersion", "falcon-7b-squad-v1")
    assert (record["spec"]["job"], record["spec"]["resumes"]) == (name, 1)
