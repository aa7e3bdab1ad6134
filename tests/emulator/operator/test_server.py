"""ModelServer: waits for its Model, serves the last Ready weights, rolls when they change."""
import kmock
from google.cloud import storage

from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, exists, finish_job, obj_of, ready, write_artifacts


async def test_server_follows_its_model_through_a_retrain(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                         bucket: storage.Bucket) -> None:
    await create(k8s, example("server-falcon-7b-squad.yaml", model={"name": "falcon-7b"}))
    await eventually(lambda: ready(k8s, "ModelServer", "falcon-7b-squad")["reason"] == "ModelNotFound")
    await create(k8s, example("model-falcon-7b.yaml"))
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: exists(k8s, "apps/v1/deployments", "falcon-7b-squad"))
    await eventually(lambda: ready(k8s, "ModelServer", "falcon-7b-squad")["reason"] == "Deploying")

    # Play the Deployment controller: one replica becomes available.
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/falcon-7b-squad/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: ready(k8s, "ModelServer", "falcon-7b-squad")["reason"] == "Serving")
    assert obj_of(k8s, "ModelServer", "falcon-7b-squad")["status"]["ready"] is True

    # Retrain: generation 2 of the Model succeeds, and the Deployment's template moves to its weights.
    response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/models/falcon-7b",
                               json={"metadata": {"generation": 2}, "spec": {"params": {"revision": "v2"}}})
    assert response.status == 200
    await finish_job(k8s, "model-falcon-7b-2")

    def annotation() -> str:
        deployment = k8s.objects["apps/v1/deployments", NAMESPACE, "falcon-7b-squad"]
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["modelplane.dev/model-url"])

    await eventually(lambda: annotation().endswith("/ml/models/falcon-7b/v2/"))


async def test_a_pod_waiting_for_a_gpu_node_is_named_in_status_until_it_serves(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    await create(k8s, example("model-falcon-7b.yaml"))
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"model.safetensors": 10})
    await finish_job(k8s, "model-falcon-7b-1")
    await create(k8s, example("server-falcon-7b-squad.yaml", model={"name": "falcon-7b"}))
    await eventually(lambda: exists(k8s, "apps/v1/deployments", "falcon-7b-squad"))
    # Play the scheduler: the Deployment's pod waits for a GPU node (the cluster autoscaler is adding one).
    unschedulable = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "falcon-7b-squad-5d8f-x", "namespace": NAMESPACE,
                        "labels": {"modelplane.dev/server": "falcon-7b-squad"}},
           "spec": {"containers": [{"name": "main", "image": "vllm"}]},
           "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                          "reason": "Unschedulable", "message": unschedulable}]}}
    response = await k8s.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod)
    assert response.status == 200
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/falcon-7b-squad/status",
                               json={"status": {"replicas": 1, "readyReplicas": 0, "unavailableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: obj_of(k8s, "ModelServer", "falcon-7b-squad")["status"]["startup"]["phase"]
                     == "Scheduling")
    status = obj_of(k8s, "ModelServer", "falcon-7b-squad")["status"]
    assert unschedulable in status["startup"]["message"] and unschedulable in ready(
        k8s, "ModelServer", "falcon-7b-squad")["message"]

    # Ready: the startup phase goes from status.
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/falcon-7b-squad/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: ready(k8s, "ModelServer", "falcon-7b-squad")["reason"] == "Serving")
    assert "startup" not in obj_of(k8s, "ModelServer", "falcon-7b-squad")["status"]
