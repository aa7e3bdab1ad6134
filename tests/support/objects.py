"""Objects on the API server emulator as the tests make and inspect them: created like `kubectl apply`, read back,
and the Job controller played (a Job's pod and final condition), shared by the operator and CLI tests."""

import copy
from pathlib import Path
from typing import Any

import kmock
import yaml
from google.cloud import storage

from modelplane.api import GROUP, VERSION
from tests.support.facts import NAMESPACE
from tests.support.kube import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UIDS = iter(range(1, 10_000))


def example(name: str, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["spec"].update(spec)
    return obj


def resource(kind: str) -> str:
    return f"{GROUP}/{VERSION}/{kind.lower()}s"


async def create(k8s: kmock.KubernetesEmulator, obj: dict[str, Any]) -> None:
    """POST like kubectl apply; kmock fills no server fields, so give uid, generation, resourceVersion here."""
    body = copy.deepcopy(obj)
    body["metadata"].update(namespace=NAMESPACE, uid=f"uid-{next(UIDS)}", generation=1, resourceVersion="1")
    response = await k8s.post(f"/apis/{resource(obj['kind']).replace(VERSION, VERSION + '/namespaces/' + NAMESPACE)}",
                              json=body)
    assert response.status == 200, await response.text()


def obj_of(k8s: kmock.KubernetesEmulator, kind: str, name: str) -> dict[str, Any]:
    return dict(k8s.objects[resource(kind), NAMESPACE, name])


def ready(k8s: kmock.KubernetesEmulator, kind: str, name: str) -> dict[str, Any]:
    conditions = obj_of(k8s, kind, name).get("status", {}).get("conditions", [])
    (condition,) = [c for c in conditions if c["type"] == "Ready"]
    return dict(condition)


def exists(k8s: kmock.KubernetesEmulator, res: str, name: str, namespace: str = NAMESPACE) -> bool:
    try:
        return not k8s.objects[res, namespace, name].deleted
    except KeyError:
        return False


async def finish_job(k8s: kmock.KubernetesEmulator, name: str, ok: bool = True, message: str = "",
                     namespace: str = NAMESPACE) -> None:
    """Play the Job controller: once the Job exists, a pod that terminated, then the Job's final condition."""
    await eventually(lambda: exists(k8s, "batch/v1/jobs", name, namespace))
    if not ok:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{name}-x1", "namespace": namespace, "labels": {"job-name": name}},
               "spec": {"containers": [{"name": "main", "image": "x"}]},
               "status": {"containerStatuses": [{
                   "name": "main", "image": "x", "imageID": "", "ready": False, "restartCount": 0,
                   "state": {"terminated": {"exitCode": 1, "message": message}}}]}}
        response = await k8s.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
        assert response.status == 200, await response.text()
    condition = {"type": "Complete" if ok else "Failed", "status": "True"}
    status = {"succeeded": 1} if ok else {"failed": 3}
    response = await k8s.patch(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status",
                               json={"status": {**status, "conditions": [condition]}})
    assert response.status == 200, await response.text()


def write_artifacts(bucket: storage.Bucket, prefix: str, files: dict[str, int]) -> None:
    for name, size in files.items():
        bucket.blob(prefix + name).upload_from_string(b"w" * size)
