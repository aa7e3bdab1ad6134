"""The retraining loop, turned for real: the examples/loop objects on the API server emulator with the operator,
where playing a Job means running its container's program as a local process over the bucket's files
(modelplane.demo.runner over fake-gcs-server), and playing the Deployment controller means reporting a rollout done,
or stuck past its deadline for the version the test breaks.

v1 data -> v1 model -> promoted -> served; v2 data -> retrain warm-started from v1 -> better -> promoted -> the server
rolls; v3 data that makes the model worse -> not promoted, the server stays; an unchanged reload -> no version, no
run; a version pinned by hand whose rollout fails -> rolled back.
"""

import asyncio
import csv
import importlib.util
import json
import shutil
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import yaml
from aiohttp import web
from google.cloud import storage
from prometheus_client import CollectorRegistry

from modelplane.builders.server import MODEL_URL_ANNOTATION
from modelplane.capture.config import CaptureConfig
from modelplane.capture.proxy import CaptureProxy
from modelplane.capture.sink import Sink, SinkMetrics
from modelplane.demo.runner import image_name, run_job
from tests.support.facts import DEV_CLUSTER, NAMESPACE
from tests.support.kube import Operator, eventually, in_background
from tests.support.objects import create, obj_of, ready

LOOP = Path(__file__).resolve().parents[3] / "examples" / "loop"
PROGRAMS = {"modelplane-examples/loop-loader": [sys.executable, str(LOOP / "loader" / "main.py")],
            "modelplane-examples/loop-trainer": [sys.executable, str(LOOP / "trainer" / "main.py")],
            image_name(DEV_CLUSTER.runtime_image): [sys.executable]}  # its entrypoint is python: `-m modelplane...`
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


def churn_traffic(calls_shift: float) -> list[dict[str, float]]:
    """Customers as the served model sees them: eval.csv's population, with `calls_shift` more support calls each
    (a support crisis the training data never saw)."""
    with (LOOP / "data" / "eval.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return [{key: float(value) + (calls_shift if key == "support_calls" else 0) for key, value in row.items()
             if key != "label"} for row in rows]


async def serve_and_capture(bucket: storage.Bucket, workdir: Path, version: int,
                            instances: list[dict[str, float]]) -> int:
    """The served version's pod, on this machine: the reference server on its weights, the capture proxy in front,
    `instances` sent through it one request each, and the records it wrote copied to the server's payload prefix
    (which GCS FUSE does in the pod). Returns how many records were written."""
    model = workdir / "content" / "model"
    model.mkdir(parents=True)
    blob = bucket.blob(f"{NAMESPACE}/models/clf/v{version}/weights.json")
    (model / "weights.json").write_bytes(blob.download_as_bytes())
    spec = importlib.util.spec_from_file_location("loop_server", LOOP / "server" / "main.py")
    assert spec and spec.loader
    server_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server_module)
    server = server_module.serve(workdir / "content", "127.0.0.1", 0, str(version))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    payloads = workdir / "payloads"
    config = CaptureConfig(server="clf", model_version=version, upstream=f"http://127.0.0.1:{server.server_port}",
                           directory=str(payloads), flush_seconds=0.1, batch_records=100)
    registry = CollectorRegistry()
    sink = Sink(payloads, version, batch_records=config.batch_records, flush_seconds=config.flush_seconds,
                queue_bytes=config.queue_bytes, metrics=SinkMetrics(registry))
    writer = asyncio.create_task(sink.run())
    runner = web.AppRunner(CaptureProxy(config, sink, registry).app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/predict"
    try:
        async with aiohttp.ClientSession() as session:
            for instance in instances:
                async with session.post(url, json={"instances": [instance]}) as response:
                    assert response.status == 200 and "churn" in await response.text()
        sink.stop()  # write what is queued, and end
        await writer
    finally:
        await runner.cleanup()
        server.shutdown()
    for path in payloads.rglob("*.jsonl.gz"):
        bucket.blob(f"{NAMESPACE}/modelservers/clf/payloads/{path.relative_to(payloads).as_posix()}") \
            .upload_from_filename(str(path))
    return int(registry.get_sample_value("modelplane_payload_records_total") or 0)


async def test_drifted_traffic_is_reported_and_retrains_the_model(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    feed_to(feed, "v2")
    server = example("server-clf.yaml")
    # Runs only when asked (a new requestID), so that the test decides when the monitor looks.
    server["spec"]["monitoring"]["schedule"] = {"cron": "0 0 1 1 *"}
    async with cluster(k8s, bucket, tmp_path / "pods", set()):
        await create(k8s, example("dataset-feed.yaml", params={"source": str(feed)}))
        await create(k8s, example("model-clf.yaml"))
        await create(k8s, server)
        await eventually(lambda: status(k8s, "ModelServer", "clf").get("servedVersion") == 1, timeout=TIMEOUT)
        say("drift: feed v2 -> clf v1 -> served, with its traffic recorded")

        # A support crisis: every customer calls four more times than any the model was trained on.
        written = await serve_and_capture(bucket, tmp_path / "serving", 1, churn_traffic(calls_shift=4))
        assert written == 300
        await asyncio.sleep(1.1)  # a run's window ends when it starts, to the second: let the traffic be in it
        response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/modelservers/clf",
                                   json={"spec": {"monitoring": {"requestID": "after-the-outage"}}})
        assert response.status == 200

        def reported() -> dict[str, Any]:
            return dict((status(k8s, "ModelServer", "clf").get("monitoring") or {}).get("lastReport") or {})

        await eventually(lambda: reported().get("run") == 1, timeout=TIMEOUT)
        report = reported()
        assert report["drift"] is True and report["samples"] == 300
        flagged = {f["name"] for f in report["features"] if f["drift"]}
        assert flagged == {"support_calls"} and "label" not in {f["name"] for f in report["features"]}
        assert report["outlierRate"] > 0.3  # four more calls than anyone in the training data: outliers too
        say(f"drift: monitor run 1 read {report['samples']} records: {report['message']}")
        def drift_events() -> list[str]:
            return [r.data["involvedObject"]["name"] for r in k8s["post v1/events"]
                    if r.data["reason"] == "DriftDetected"]

        await eventually(lambda: drift_events() == ["clf"])  # posted after the status that says it

        # The Model retrains from its champion, because the server asked.
        await eventually(lambda: status(k8s, "Model", "clf").get("latestVersion") == 2, timeout=TIMEOUT)
        run = status(k8s, "Model", "clf")["run"]
        assert run["trigger"] == "drift reported by ModelServer clf (monitor run 1)" and run["parent"] == 1
        assert record(k8s, 2)["parent"] == 1
        say(f"drift: clf v2 trained from v1 ({run['trigger']})")
        full = json.loads(bucket.blob(report["url"].split("/", 3)[3]).download_as_bytes())
        assert full["reference"].startswith("Dataset feed v1")
