"""The operator's metrics endpoint after a few reconciles: controller-runtime's series and the platform's own, with
the labels dashboards select on; and the Events that tell the same story on the objects."""

import urllib.request
from typing import Any

import kmock
from google.cloud import storage
from prometheus_client.parser import text_string_to_metric_families

from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, example, finish_job, obj_of, write_artifacts


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as Prometheus reads it: (sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_the_endpoint_serves_reconciles_queue_and_loop_series(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    port = operator.metrics.serve(0)
    await create(k8s, example("model-falcon-7b.yaml"))
    write_artifacts(bucket, "ml/models/falcon-7b/v1/", {"config.json": 100})
    await finish_job(k8s, "model-falcon-7b-1")
    await eventually(lambda: obj_of(k8s, "Model", "falcon-7b")["status"]["ready"] is True)
    success = ("controller_runtime_reconcile_total", (("controller", "model"), ("result", "success")))
    # A sync's notices are counted during it, the reconcile when it returns.
    await eventually(lambda: scrape(port).get(("modelplane_promotions_total", ())) == 1.0
                     and scrape(port).get(success, 0) >= 2)

    series = scrape(port)
    controller = (("controller", "model"),)
    assert series[("controller_runtime_reconcile_time_seconds_count", controller)] >= 2
    assert series.get(("controller_runtime_reconcile_errors_total", controller), 0.0) == 0.0
    queue = (("name", "modelplane"),)
    assert series[("workqueue_adds_total", queue)] >= 2
    assert series[("workqueue_queue_duration_seconds_count", queue)] >= 2
    assert series[("workqueue_work_duration_seconds_count", queue)] >= 2
    assert series[("workqueue_depth", queue)] == 0.0
    assert series[("modelplane_versions_total", (("kind", "Model"),))] == 1.0
    assert series[("modelplane_time_to_ready_seconds_count", (("kind", "Model"),))] == 1.0
    assert series.get(("modelplane_rollbacks_total", ()), 0.0) == 0.0

    def events() -> list[dict[str, Any]]:
        return [r.data for r in k8s["post v1/events"] if r.data["involvedObject"]["name"] == "falcon-7b"]

    # Posted after the status write and the counts, one by one.
    await eventually(lambda: [e["reason"] for e in events()] == ["Ready", "VersionCreated", "Promoted"])
    assert {e["involvedObject"]["kind"] for e in events()} == {"Model"}
    assert all(e["metadata"]["namespace"] == NAMESPACE and e["type"] == "Normal" for e in events())


async def test_a_failing_sync_counts_as_an_error_and_a_retry(
        k8s: kmock.KubernetesEmulator, operator: Operator) -> None:
    port = operator.metrics.serve(0)
    k8s["patch", f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/models/falcon-7b/status"] << 503
    await create(k8s, example("model-falcon-7b.yaml"))
    await eventually(lambda: scrape(port).get(("workqueue_retries_total", (("name", "modelplane"),)), 0) >= 1)
    series = scrape(port)
    assert series[("controller_runtime_reconcile_errors_total", (("controller", "model"),))] >= 1
    assert series[("controller_runtime_reconcile_total", (("controller", "model"), ("result", "error")))] >= 1
