"""Benchmark: N Datasets through create -> Job -> Ready, the operator against a floor measured in the same run.

    python -m bench.operator_throughput [N=1000] [CONCURRENCY=50]     (from the repository root)

Two fresh emulator processes (bench/emulator.py, which also plays the Job controller) and one fake-gcs-server:
- floor: a bare asyncio client makes, per Dataset, the requests an ideal operator needs (create, read, read Job,
  create ConfigMap and Job, write status; after the Job: read, read Job, list the bucket, write status);
- operator: kopf with modelplane's handlers, in this process, reacting to the same creations.
Prints throughput, p50/p99 create->Ready latency, API requests per object and peak RSS, and the ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import kubernetes
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

import modelplane.operator.handlers  # noqa: F401  (registers the handlers)
from fakes.gcs import fake_gcs_in_memory
from modelplane.api import GROUP, VERSION
from modelplane.cluster import ClusterFacts
from modelplane.operator.context import Context
from modelplane.operator.kube import Kube
from modelplane.storage import ArtifactStore, UploadSigner

NAMESPACE = "bench"
DATASETS = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/datasets"
IDEAL_REQUESTS = 9  # per Dataset, excluding its creation and the Job controller's status patch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def emulator() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("emulator.py")), str(port)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "READY"
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(url) as http:
            yield url, http
    finally:
        process.terminate()
        process.wait()


def dataset(i: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Dataset",
            "metadata": {"name": f"ds-{i:05}", "namespace": NAMESPACE, "uid": f"uid-{i}", "generation": 1,
                         "resourceVersion": "1"},
            "spec": {"image": "loader:1", "params": {"shard": i}}}


async def drive(http: aiohttp.ClientSession, n: int, concurrency: int,
                per_object: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    """Create N Datasets (and run `per_object` for each), return creation times by name."""
    created: dict[str, float] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            created[f"ds-{i:05}"] = time.time()
            async with http.post(DATASETS, json=dataset(i)) as response:
                assert response.status == 200, await response.text()
            await per_object(i)

    await asyncio.gather(*(one(i) for i in range(n)))
    return created


async def wait_ready(http: aiohttp.ClientSession, n: int, timeout: float = 900) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        async with http.get("/_stats") as response:
            stats: dict[str, Any] = await response.json()
        if len(stats["ready_at"]) >= n or time.time() > deadline:
            return stats
        await asyncio.sleep(0.2)


def report(label: str, n: int, created: dict[str, float], stats: dict[str, Any], requests: int) -> dict[str, float]:
    latencies = sorted(stats["ready_at"][name] - created[name] for name in stats["ready_at"] if name in created)
    elapsed = max(stats["ready_at"].values()) - min(created.values())
    figures = {"done": len(latencies), "seconds": elapsed, "per_second": len(latencies) / elapsed,
               "p50": statistics.median(latencies), "p99": latencies[int(0.99 * (len(latencies) - 1))],
               "requests_per_object": requests / n}
    print(f"{label:9} {figures['done']:.0f}/{n} Ready in {elapsed:6.2f}s = {figures['per_second']:7.1f}/s  "
          f"latency p50 {figures['p50']:.3f}s p99 {figures['p99']:.3f}s  "
          f"{figures['requests_per_object']:.1f} API requests/object  emulator CPU {stats['cpu_s']:.1f}s")
    return figures


async def floor(n: int, concurrency: int, bucket: storage.Bucket) -> dict[str, float]:
    async with emulator() as (_, http):
        async def ideal(i: int) -> None:
            name = f"ds-{i:05}"
            job = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/dataset-{name}-1"
            async with http.get(f"{DATASETS}/{name}"), http.get(job):
                pass
            config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"dataset-{name}-1-params", "namespace": NAMESPACE}}
            async with http.post(f"/api/v1/namespaces/{NAMESPACE}/configmaps", json=config_map):
                pass
            async with http.post(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", json={
                    "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"dataset-{name}-1",
                                                                          "namespace": NAMESPACE}}):
                pass
            async with http.patch(f"{DATASETS}/{name}/status", json={"status": {"ready": False}}):
                pass
            while True:  # the ideal operator learns of the Job's completion from a watch; this client asks
                async with http.get(job) as response:
                    if (await response.json()).get("status", {}).get("succeeded"):
                        break
                await asyncio.sleep(0.05)
            async with http.get(f"{DATASETS}/{name}"):
                pass
            await asyncio.to_thread(lambda: list(bucket.client.list_blobs(bucket, prefix=f"{NAMESPACE}/{name}/")))
            async with http.patch(f"{DATASETS}/{name}/status", json={"status": {"ready": True}}):
                pass

        created = await drive(http, n, concurrency, ideal)
        stats = await wait_ready(http, n)
        return report("floor", n, created, stats, IDEAL_REQUESTS * n)


async def operator(n: int, concurrency: int, bucket: storage.Bucket) -> dict[str, float]:
    async with emulator() as (url, http):
        configuration = kubernetes.client.Configuration()
        configuration.host = url
        kubeconfig = Path(f"/tmp/modelplane-bench-{url.rsplit(':', 1)[1]}.yaml")
        kubeconfig.write_text(f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: k, cluster: "
                              f"{{server: '{url}'}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\n"
                              f"contexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n")
        kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
        settings = kopf.OperatorSettings()
        settings.scanning.disabled = True
        memo = kopf.Memo(context=Context(
            kube=Kube(kubernetes.client.ApiClient(configuration)), store=ArtifactStore(bucket.client, bucket.name),
            cluster=ClusterFacts(project="bench", bucket=bucket.name, registry="r"),
            signer=UploadSigner(bucket, AnonymousCredentials())))  # type: ignore[no-untyped-call]
        ready, stop = asyncio.Event(), asyncio.Event()
        ignored = set(asyncio.all_tasks())
        tasks = await kopf.spawn_tasks(settings=settings, standalone=True, namespaces=[NAMESPACE],
                                       ready_flag=ready, stop_flag=stop, memo=memo)
        running = asyncio.create_task(kopf.run_tasks(tasks, ignored=ignored))
        await ready.wait()
        await asyncio.sleep(1.0)  # let the watches start
        async with http.get("/_stats") as response:
            at_start = await response.json()
        before = at_start["requests"]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu_before = time.process_time()

        async def nothing(_: int) -> None:
            return None

        created = await drive(http, n, concurrency, nothing)
        stats = await wait_ready(http, n)
        # Own requests only: less the creations and the emulator's Job-controller patches.
        figures = report("operator", n, created, stats, stats["requests"] - before - 2 * n)
        figures["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures["cpu_ms"] = (time.process_time() - cpu_before) * 1000 / n
        print(f"operator CPU {figures['cpu_ms']:.1f} ms per object (this process: kopf, the client, our code)")
        by_kind = {kind: (count - at_start["by_kind"].get(kind, 0)) / n for kind, count in stats["by_kind"].items()}
        print("operator requests per object by kind (the creations and the Job controller's patches included): "
              + ", ".join(f"{kind} {count:.2f}" for kind, count in sorted(by_kind.items(), key=lambda kv: -kv[1])
                          if count >= 0.01))
        print(f"operator process peak RSS {figures['rss_mb']:.0f} MB (at start {rss_before:.0f} MB)")
        ignored.update(asyncio.all_tasks())
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(running, 10)
        return figures


async def main(n: int, concurrency: int) -> None:
    with fake_gcs_in_memory():
        client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        bucket = client.create_bucket("bench-artifacts")
        base = await floor(n, concurrency, bucket)
        ours = await operator(n, concurrency, bucket)
    print(f"ratios operator/floor: throughput {ours['per_second'] / base['per_second']:.2f}x, "
          f"p50 latency {ours['p50'] / base['p50']:.2f}x, p99 latency {ours['p99'] / base['p99']:.2f}x, "
          f"API requests {ours['requests_per_object'] / base['requests_per_object']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 50))
