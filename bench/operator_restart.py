"""Benchmark: the operator restarting beside N Ready Datasets (an upgrade, a drained node, an OOM kill).

    python -m bench.operator_restart [N=10000] [PAGE_SIZE=500]     (from the repository root; PAGE_SIZE 0: lists
                                                                     in one response, as before the informer paged)

A restart is when an operator holds the most at once: each informer lists everything it watches (every Dataset,
every Job the operator made) before it watches, and every listed object is queued for a sync. The pod's memory
limit is platform/operator/modelplane/deploy.py's (512 MiB); a restart that goes over it is OOM-killed, restarts,
lists again: a crash loop that only a cluster with many objects sees. The throughput benchmark starts from an empty
cluster, so it never meets this.

The emulator (bench/emulator.py) is filled first, through the API as the operator would have left it: N Datasets
with their ConfigMaps, their completed Jobs and their Ready status (the operator's own reconciler's bodies), and each
version's manifest in fake-gcs-server. Then a fresh operator process (the image's packages, as main() runs it) starts
beside them. Prints: its RSS once imported and its peak (ru_maxrss) during the restart, how long until the
informers have listed the Datasets and their Jobs and until the work queue is idle (every key queued has been
synced: a Dataset at rest is queued for none), and the API requests it sent per object by kind. The time to list
includes the emulator's own: it copies the whole collection for the pages after the first, as a snapshot.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

import aiohttp
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from bench.operator_throughput import (
    BUCKET,
    CLUSTER,
    DATASETS,
    NAMESPACE,
    dataset,
    emulator,
    operator_context,
    own_requests,
    planned,
    rss_mb,
    run_in_image,
    stats_of,
)
from modelplane.api.dataset import DATASET
from modelplane.operator import informer
from modelplane.operator.handlers import start, stop
from modelplane.operator.kube import Kube
from modelplane.operator.login import Credentials
from modelplane.operator.main import tune_collector
from modelplane.operator.metrics import QUEUE_NAME
from modelplane.storage import ArtifactStore

FILLERS = 50  # Datasets written at once while filling the emulator


async def fill(http: aiohttp.ClientSession, url: str, n: int, bucket: storage.Bucket) -> None:
    """N Datasets as a running operator leaves them: created, ConfigMap applied, Job created (the emulator completes
    it), manifest written, status Ready."""
    kube = Kube(Credentials(server=url))
    store = ArtifactStore(bucket.client, bucket.name)
    numbers = iter(range(n))

    async def filler() -> None:
        for i in numbers:
            plan = planned(i, CLUSTER, store)
            async with http.post(DATASETS, json=dataset(i)) as response:
                assert response.status == 200, await response.text()
            for child in plan.children:
                await kube.apply(child)
            for name, data in plan.writes.items():
                await asyncio.to_thread(store.write, name, data)
            await kube.patch_status(DATASET, NAMESPACE, f"ds-{i:05}", plan.finished)

    await asyncio.gather(*(filler() for _ in range(FILLERS)))
    await asyncio.sleep(1.0)  # the emulator completes each Job 50 ms after its creation
    await kube.close()


async def restart(url: str, n: int, page_size: int) -> dict[str, float]:
    """The run: a fresh operator beside the N Datasets, until both informers have listed them (the Datasets and
    their Jobs) and the queue is idle (every key taken from it has been synced; the listing queued every key it
    would)."""
    informer.PAGE_SIZE = page_size
    client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    ctx = operator_context(url, client.bucket(BUCKET))
    imported = rss_mb()
    tune_collector()  # as main() does
    began, cpu_began = time.monotonic(), time.process_time()
    start(ctx)  # as main.run() does

    def sample(series: str) -> float:
        return ctx.metrics.registry.get_sample_value(series, {"name": QUEUE_NAME}) or 0.0

    def synced() -> float:
        return sample("workqueue_work_duration_seconds_count")

    def idle() -> bool:
        return not sample("workqueue_depth") and sample("workqueue_queue_duration_seconds_count") == synced()

    listed_at = None
    while listed_at is None or not idle():
        if listed_at is None and len(ctx.known) >= n and len(ctx.jobs) >= n:
            listed_at = time.monotonic() - began
        await asyncio.sleep(0.05)
    took, cpu = time.monotonic() - began, time.process_time() - cpu_began
    figures = {"rss_imported_mb": imported, "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "rss_end_mb": rss_mb(), "listed_s": listed_at, "synced_s": took, "syncs": synced(),
               "cpu_ms": cpu * 1000 / n}
    await stop(ctx)
    return figures


def main(n: int, page_size: int) -> None:
    from fakes.gcs import fake_gcs_in_memory  # here: a run's process cannot import it (not in the image)

    async def around() -> None:
        async with emulator() as (url, http):
            client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
            began = time.monotonic()
            await fill(http, url, n, client.create_bucket(BUCKET))
            print(f"filled: {n} Ready Datasets, their ConfigMaps, completed Jobs and manifests "
                  f"in {time.monotonic() - began:.0f}s", flush=True)
            before = await stats_of(http)
            figures = await asyncio.to_thread(run_in_image, "bench.operator_restart", "restart", url, str(n),
                                              str(page_size))
            by_kind = own_requests(before, await stats_of(http), n)
        print(f"restart beside {n} Ready Datasets, lists in pages of {page_size or 'all'}: the Datasets and their "
              f"Jobs listed in {figures['listed_s']:.1f}s, every "
              f"key queued synced after {figures['synced_s']:.1f}s ({figures['syncs'] / n:.2f} syncs per object, "
              f"{figures['cpu_ms']:.1f} ms CPU per object)")
        print(f"restart RSS {figures['rss_imported_mb']:.0f} MB once imported, peak {figures['rss_peak_mb']:.0f} MB, "
              f"{figures['rss_end_mb']:.0f} MB at the end (the pod's limit: 512 MiB)")
        print("restart requests per object: " + (", ".join(
            f"{kind} {count:.2f}" for kind, count in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))
            if count >= 0.01) or "none (under 0.01 of any kind)"))

    with fake_gcs_in_memory():
        asyncio.run(around())


if __name__ == "__main__":
    if sys.argv[1:2] == ["restart"]:  # the run, started by main()
        print(json.dumps(asyncio.run(restart(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))))
    else:
        main(*(int(arg) for arg in sys.argv[1:3]), *(10000, informer.PAGE_SIZE)[len(sys.argv[1:3]):])
