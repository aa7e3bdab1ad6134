"""The retraining loop, turned for real: the examples/loop objects on the API server emulator with the operator,
where playing a Job means running its container's program as a local process over the bucket's files
(modelplane.demo.runner over fake-gcs-server), and playing the Deployment controller means reporting a rollout done,
or stuck past its deadline for the version the test breaks.

v1 data -> v1 model -> promoted -> served; v2 data -> retrain warm-started from v1 -> better -> promoted -> the server
rolls; v3 data that makes the model worse -> not promoted, the server stays; an unchanged reload -> no version, no
run; a version pinned by hand whose rollout fails -> rolled back.
"""

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import kmock
import yaml
from google.cloud import storage

from modelplane.builders.server import MODEL_URL_ANNOTATION
from modelplane.demo.runner import run_job
from tests.support.kube import NAMESPACE, Operator, eventually, in_background
from tests.support.objects import create, obj_of, ready

LOOP = Path(__file__).resolve().parents[2] / "examples" / "loop"
PROGRAMS = {"modelplane-examples/loop-loader": [sys.executable, str(LOOP / "loader" / "main.py")],
            "modelplane-examples/loop-trainer": [sys.executable, str(LOOP / "trainer" / "main.py")]}
TIMEOUT = 60


def say(line: str) -> None:
    """Progress, for `./run demo` (pytest -s shows it; a test run keeps it quiet)."""
    print(f"[loop] {line}", flush=True)


def feed_to(feed: Path, version: str) -> None:
    """The upstream feed now holds `version` (what a data team's pipeline publishes)."""
    shutil.copy(LOOP / "data" / version / "train.csv", feed / "train.csv")
    shutil.copy(LOOP / "data" / "eval.csv", feed / "eval.csv")


@asynccontextmanager
async def cluster(k8s: kmock.KubernetesEmulator, bucket: storage.Bucket, workdir: Path,
                  broken: set[str]) -> AsyncIterator[None]:
    """Play the kubelet (run each Job's program) and the Deployment controller (a rollout completes, unless it
    rolls to a model URL in `broken`, which passes its progress deadline)."""
    done: set[str] = set()

    async def play() -> None:
        while True:
            for (resource, namespace, name), obj in list(k8s.objects.items()):
                if obj.deleted or namespace != NAMESPACE:
                    continue
                if (resource.group, resource.plural) == ("batch", "jobs") and name not in done:
                    done.add(name)
                    maps = {key[2]: dict(o.get("data") or {}) for key, o in list(k8s.objects.items())
                            if key[0].plural == "configmaps" and key[1] == NAMESPACE}
                    result = await asyncio.to_thread(run_job, dict(obj), bucket, maps, PROGRAMS, workdir / name)
                    state = "Complete" if result.succeeded else "Failed"
                    await k8s.patch(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}/status", json={"status": {
                        "succeeded" if result.succeeded else "failed": 1,
                        "conditions": [{"type": state, "status": "True"}]}})
                elif (resource.group, resource.plural) == ("apps", "deployments"):
                    url = obj["spec"]["template"]["metadata"]["annotations"][MODEL_URL_ANNOTATION]
                    generation = obj["metadata"].get("generation", 1)
                    reason = "ProgressDeadlineExceeded" if url in broken else "NewReplicaSetAvailable"
                    status = {"observedGeneration": generation, "replicas": 1, "readyReplicas": 1,
                              "availableReplicas": 1, "updatedReplicas": 0 if url in broken else 1,
                              "conditions": [{"type": "Progressing", "status": str(url not in broken),
                                              "reason": reason}]}
                    if (obj.get("status") or {}) != status:
                        await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}/status",
                                        json={"status": status})
            await asyncio.sleep(0.05)

    async with in_background(play):
        yield


def example(name: str, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((LOOP / name).read_text())
    obj["spec"].update(spec)
    return obj


async def reload(k8s: kmock.KubernetesEmulator, request_id: str) -> None:
    response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/datasets/feed",
                               json={"spec": {"reload": {"requestID": request_id}}})
    assert response.status == 200


def status(k8s: kmock.KubernetesEmulator, kind: str, name: str) -> dict[str, Any]:
    return dict(obj_of(k8s, kind, name).get("status") or {})


def record(k8s: kmock.KubernetesEmulator, version: int) -> dict[str, Any]:
    return dict(k8s.objects["modelplane.dev/v1alpha1/modelversions", NAMESPACE, f"clf-v{version}"]["spec"])


async def test_the_loop_retrains_promotes_only_the_better_version_and_serves_it(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    feed_to(feed, "v1")
    broken: set[str] = set()
    async with cluster(k8s, bucket, tmp_path / "pods", broken):
        await create(k8s, example("dataset-feed.yaml", params={"source": str(feed)}))
        await create(k8s, example("model-clf.yaml"))
        await create(k8s, example("server-clf.yaml"))

        say("applied examples/loop: Dataset feed (feed at v1), Model clf, ModelServer clf")
        # v1 data -> v1 model, the first champion -> served.
        await eventually(lambda: status(k8s, "ModelServer", "clf").get("servedVersion") == 1
                         and ready(k8s, "ModelServer", "clf")["reason"] == "Serving", timeout=TIMEOUT)
        v1 = record(k8s, 1)
        assert v1["dataset"]["version"] == 1 and "parent" not in v1 and v1["metrics"]["accuracy"] > 0.6
        say(f"feed v1 -> clf v1 (accuracy {v1['metrics']['accuracy']:.3f}) -> champion -> served")

        # v2 data -> retrained from v1 -> better -> promoted -> the server rolls.
        feed_to(feed, "v2")
        await reload(k8s, "feed-2")
        await eventually(lambda: status(k8s, "ModelServer", "clf").get("servedVersion") == 2, timeout=TIMEOUT)
        v2 = record(k8s, 2)
        assert v2["parent"] == 1 and v2["dataset"]["version"] == 2
        diff = json.loads(k8s.objects["v1/configmaps", NAMESPACE, "model-clf-2-params"]["data"]["data-diff.json"])
        assert (diff["from"], diff["to"], diff["changed"]) == (1, 2, ["train.csv"])  # what v1 did not see
        assert v2["metrics"]["accuracy"] > v1["metrics"]["accuracy"]
        assert status(k8s, "Model", "clf")["champion"] == 2
        say(f"feed v2 -> clf v2 from v1 (accuracy {v2['metrics']['accuracy']:.3f}) -> promoted -> server rolled to v2")

        # v3 data makes the model worse -> recorded, not promoted, the server stays on v2.
        feed_to(feed, "v3")
        await reload(k8s, "feed-3")
        await eventually(lambda: status(k8s, "Model", "clf").get("latestVersion") == 3, timeout=TIMEOUT)
        v3 = record(k8s, 3)
        assert v3["parent"] == 2 and v3["metrics"]["accuracy"] < v2["metrics"]["accuracy"]
        model = status(k8s, "Model", "clf")
        assert model["champion"] == 2 and "not promoted" in model["versions"][-1]["verdict"]
        assert status(k8s, "ModelServer", "clf")["servedVersion"] == 2
        say(f"feed v3 -> clf v3 from v2 (accuracy {v3['metrics']['accuracy']:.3f}) -> not promoted "
            f"({model['versions'][-1]['verdict']}); server stays on v2")

        # The same data again -> no version, no run.
        await reload(k8s, "feed-4")
        await eventually(lambda: ready(k8s, "Dataset", "feed")["reason"] == "Unchanged", timeout=TIMEOUT)
        await asyncio.sleep(1)
        assert status(k8s, "Dataset", "feed")["latestVersion"] == 3
        assert status(k8s, "Model", "clf")["run"]["version"] == 3
        say("feed reloaded unchanged -> no dataset version, no run")

        # v3 pinned by hand, its rollout never becomes ready -> rolled back to v2, and v3 is not tried again.
        broken.add(f"gs://{bucket.name}/{NAMESPACE}/models/clf/v3/")
        response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/models/clf",
                                   json={"spec": {"champion": 3}})
        assert response.status == 200
        await eventually(lambda: ready(k8s, "ModelServer", "clf")["reason"] == "RolledBack", timeout=TIMEOUT)
        server = status(k8s, "ModelServer", "clf")
        assert server["servedVersion"] == 2 and server["rejected"] == [3]
        say("clf v3 pinned by hand; its rollout never became ready -> rolled back to v2")

    # The lineage of what is served: server -> model version -> dataset version, each as recorded.
    served = record(k8s, server["servedVersion"])
    dataset = status(k8s, "Dataset", "feed")
    data = next(v for v in dataset["versions"] if v["version"] == served["dataset"]["version"])
    assert served["dataset"]["digest"] == data["digest"]
    lineage = (f"ModelServer clf serves Model clf v{served['version']} (accuracy {served['metrics']['accuracy']:.3f}, "
               f"warm-started from v{served['parent']}), trained on Dataset feed v{data['version']} "
               f"(digest {data['digest'][:12]}, {data['files']} files)")
    say(f"lineage: {lineage}")
    lineage_json = bucket.get_blob(f"{NAMESPACE}/models/clf/v{served['version']}/lineage.json")
    assert lineage_json is not None and b'"parent": 1' in lineage_json.download_as_bytes()
