"""Notebook: Jupyter with its inputs read-only and its workspace in the bucket; suspend frees the GPU, keeps work."""
import kmock
from google.cloud import storage

from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, finish_job, obj_of, ready


async def test_notebook_suspend_and_resume_keep_the_token(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                          bucket: storage.Bucket) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    await create(k8s, example("dataset-squad.yaml", image="loader:1", build=None))
    await finish_job(k8s, "model-falcon-7b-1")
    await finish_job(k8s, "dataset-squad-1")
    await create(k8s, example("notebook-falcon-7b.yaml"))
    await eventually(lambda: ready(k8s, "Notebook", "falcon-7b")["reason"] == "Starting")
    token = k8s.objects["v1/secrets", NAMESPACE, "notebook-falcon-7b-token"]["stringData"]["token"]
    assert len(token) >= 32
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/falcon-7b/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: ready(k8s, "Notebook", "falcon-7b")["reason"] == "Running")

    response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/notebooks/falcon-7b",
                               json={"metadata": {"generation": 2}, "spec": {"suspend": True}})
    assert response.status == 200
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, "falcon-7b"]["spec"]["replicas"] == 0)
    await eventually(lambda: ready(k8s, "Notebook", "falcon-7b")["reason"] == "Suspended")
    assert obj_of(k8s, "Notebook", "falcon-7b")["status"]["tokenSecret"] == "notebook-falcon-7b-token"
    assert k8s.objects["v1/secrets", NAMESPACE, "notebook-falcon-7b-token"]["stringData"]["token"] == token
    assert len(k8s["post v1/secrets"]) == 1  # made once, not re-sent on every sync
