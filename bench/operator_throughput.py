"""Benchmark: N Datasets through create -> Job -> Ready, the operator against a floor measured in the same run.

    python -m bench.operator_throughput [N=1000] [CONCURRENCY=50] [ROUNDS=3]     (from the repository root)

Each run in its own process (its CPU and memory its own), against its own fresh emulator (bench/emulator.py, which
also plays the Job controller) and its own fresh fake-gcs-server:
- floor: a bare asyncio client that holds the watches an operator needs (Datasets and Jobs) and makes, per Dataset,
  from its watch's ADDED event on, the requests an ideal operator with the same features makes: read it, apply
  the ConfigMap, create the Job, write status; when the Job's watch says it completed (the Job itself is read from
  the watch, as the operator's is): read it, list the bucket, write the version's manifest there, write status, and
  post the Events of both status changes. It sends the very bodies the operator sends (its pure reconciler's,
  computed before the clock starts), through the operator's own API client (kube.Kube): what the floor does not pay
  for is the operator's bookkeeping, observing, reconciling and deciding;
- operator: the operator as main() runs it (its informers, queue and workers), reacting to the same creations.
Both runs see the same arrivals: CONCURRENCY clients, each creating its next Dataset once the emulator says its last
one is Ready (a closed loop, so by Little's law latency is about CONCURRENCY / throughput in both; the clients'
requests are the same in both runs, so the emulator's CPU for them is too). Prints, per run: throughput,
p50/p99 create->Ready latency, API requests per object by kind (counted by the emulator), CPU per object; for the
operator its RSS at the start, at a tenth and at the end, and the slope, and its work queue's figures (syncs per
object, a key's wait for a worker, a sync's time); per round the ratios, and their median.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
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
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from modelplane.api import GROUP, VERSION
from modelplane.api.dataset import DATASET, DatasetSpec
from modelplane.cluster import ClusterFacts
from modelplane.layout import version_prefix
from modelplane.meta import Owner
from modelplane.operator.context import Context
from modelplane.operator.handlers import start, stop
from modelplane.operator.kube import Kube, merge_patch
from modelplane.operator.login import Credentials
from modelplane.operator.main import tune_collector
from modelplane.operator.metrics import QUEUE_NAME, Metrics
from modelplane.operator.sync import now
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import JobState
from modelplane.reconcile.notices import Notice, notices
from modelplane.storage import ArtifactStore, UploadSigner

NAMESPACE = "bench"
BUCKET = "bench-artifacts"
DATASETS = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/datasets"
CLUSTER = ClusterFacts(project="bench", bucket=BUCKET, registry="r")  # what every run's reconciler is told


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def emulator() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.emulator", str(port)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).parent.parent)
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
    """Create N Datasets, CONCURRENCY clients each creating its next once `per_object` returned for its last; return
    creation times by name. (CONCURRENCY coroutines, not N waiting on a semaphore: the driver's memory stays out of
    the operator's RSS.)"""
    created: dict[str, float] = {}
    numbers = iter(range(n))

    async def client() -> None:
        for i in numbers:
            created[f"ds-{i:05}"] = time.time()
            async with http.post(DATASETS, json=dataset(i)) as response:
                assert response.status == 200, await response.text()
            await per_object(i)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return created


async def until_ready(http: aiohttp.ClientSession, done: list[int], i: int) -> None:
    """Wait until Dataset i is Ready (the emulator answers once its status says so), and count it: both runs' clients
    wait this way, so the emulator serves the same requests of the benchmark's own in both."""
    async with http.get("/_ready", params={"name": f"ds-{i:05}"}, timeout=aiohttp.ClientTimeout()):
        done[0] += 1


async def stats_of(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get("/_stats") as response:
        stats: dict[str, Any] = await response.json()
        return stats


def own_requests(before: dict[str, Any], after: dict[str, Any], n: int) -> dict[str, float]:
    """Requests per object by kind between two stats, without the benchmark's own: the creations, the Job
    controller's status patches, and the emulator's /_ready and /_stats."""
    theirs = {"POST datasets", "PATCH jobs/status"}
    return {kind: (count - before["by_kind"].get(kind, 0)) / n for kind, count in after["by_kind"].items()
            if kind not in theirs and not kind.split(" ")[-1].startswith("_")}


def report(label: str, n: int, created: dict[str, float], before: dict[str, Any],
           stats: dict[str, Any]) -> dict[str, float]:
    """The run's figures from the emulator's stats before and after it. The emulator's CPU per object is there to
    read beside the throughput: the requests are the same in both runs, so when the operator's run costs the
    emulator more CPU, the machine (two cores, shared by the emulator, the run and fake-gcs-server) was slower for
    it, or busier with the run beside it."""
    by_kind = own_requests(before, stats, n)
    latencies = sorted(stats["ready_at"][name] - created[name] for name in stats["ready_at"] if name in created)
    elapsed = max(stats["ready_at"].values()) - min(created.values())
    figures = {"done": len(latencies), "seconds": elapsed, "per_second": len(latencies) / elapsed,
               "p50": statistics.median(latencies), "p99": latencies[int(0.99 * (len(latencies) - 1))],
               "requests_per_object": sum(by_kind.values()),
               "emulator_cpu_ms": (stats["cpu_s"] - before["cpu_s"]) * 1000 / n}
    print(f"{label:9} {figures['done']:.0f}/{n} Ready in {elapsed:6.2f}s = {figures['per_second']:7.1f}/s  "
          f"latency p50 {figures['p50']:.3f}s p99 {figures['p99']:.3f}s  "
          f"{figures['requests_per_object']:.2f} API requests/object  "
          f"emulator CPU {figures['emulator_cpu_ms']:.1f} ms/object")
    print(f"{label:9} requests per object: " + ", ".join(
        f"{kind} {count:.2f}" for kind, count in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))
        if count >= 0.01))
    return figures


async def watch(http: aiohttp.ClientSession, path: str, on_event: Callable[[dict[str, Any]], None]) -> None:
    """Hold a watch and hand each event to `on_event`, as an operator's informer does."""
    async with http.get(path, params={"watch": "true"}, timeout=aiohttp.ClientTimeout()) as response:
        async for line in response.content:
            if line.strip():
                on_event(json.loads(line))


@dataclasses.dataclass(frozen=True)
class Planned:
    """What the operator sends for one Dataset, computed ahead (by its own pure reconciler), so the floor sends the
    same bytes and spends nothing on deciding them."""

    children: list[dict[str, Any]]  # the ConfigMap (applied) and the Job (created)
    started: dict[str, Any]  # the status while the Job runs
    finished: dict[str, Any]  # the status once it succeeded
    writes: dict[str, bytes]  # the version's manifest
    notices: list[Notice]  # the Events of both status changes


def planned(i: int, cluster: ClusterFacts, store: ArtifactStore) -> Planned:
    body = {**dataset(i), "kind": DATASET.kind}
    owner, spec, at = Owner.from_body(body), DatasetSpec.model_validate(body["spec"]), now()
    started = reconcile(owner, spec, {}, cluster, Observed(), at)
    prefix = version_prefix(owner, started.status["load"]["version"])
    done = Observed(job=JobState(succeeded=True), artifacts=store.summarize(prefix, []),
                    manifest=[])
    finished = reconcile(owner, spec, started.status, cluster, done, at)
    return Planned(started.children, started.status, finished.status, finished.writes,
                   notices({}, started.status, at, at) + notices(started.status, finished.status, at, at))


async def floor(n: int, concurrency: int, bucket: storage.Bucket) -> dict[str, float]:
    store = ArtifactStore(bucket.client, bucket.name)
    plans = [planned(i, CLUSTER, store) for i in range(n)]  # before the clock starts
    async with emulator() as (url, http):
        kube = Kube(Credentials(server=url))
        jobs_path = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
        completed: dict[str, asyncio.Future[None]] = {}
        syncing: set[asyncio.Task[None]] = set()

        def job_event(event: dict[str, Any]) -> None:
            job = event.get("object") or {}
            if (job.get("status") or {}).get("succeeded"):
                future = completed.setdefault(job["metadata"]["name"], asyncio.get_running_loop().create_future())
                if not future.done():
                    future.set_result(None)

        def dataset_event(event: dict[str, Any]) -> None:
            """A new Dataset starts its work, as an operator's does: on its watch's ADDED."""
            if event.get("type") == "ADDED":
                task = asyncio.create_task(ideal(int(event["object"]["metadata"]["name"].removeprefix("ds-"))))
                syncing.add(task)  # keep a reference until done, or the task may vanish mid-flight
                task.add_done_callback(syncing.discard)

        async def ideal(i: int) -> None:
            plan, name = plans[i], f"ds-{i:05}"
            job = next(child for child in plan.children if child["kind"] == "Job")["metadata"]["name"]
            done = completed.setdefault(job, asyncio.get_running_loop().create_future())
            involved = {"apiVersion": DATASET.api_version, "kind": DATASET.kind, "name": name,
                        "namespace": NAMESPACE, "uid": f"uid-{i}", "resourceVersion": ""}
            await kube.get_object(DATASET, NAMESPACE, name)
            for child in plan.children:
                await kube.apply(child)
            await kube.patch_status(DATASET, NAMESPACE, name, plan.started)
            await done
            await kube.get_object(DATASET, NAMESPACE, name)
            await asyncio.to_thread(lambda: list(bucket.client.list_blobs(bucket, prefix=version_prefix(
                Owner(DATASET.kind, name, NAMESPACE, f"uid-{i}", 1), 1))))
            for object_name, data in plan.writes.items():
                await asyncio.to_thread(bucket.blob(object_name).upload_from_string, data,
                                        content_type="application/json")
            await kube.patch_status(DATASET, NAMESPACE, name, merge_patch(plan.started, plan.finished))
            await asyncio.gather(*(kube.post_event(involved, notice.type, notice.reason, notice.message, now())
                                   for notice in plan.notices))

        watches = [asyncio.create_task(watch(http, DATASETS, dataset_event)),
                   asyncio.create_task(watch(http, jobs_path, job_event))]
        await asyncio.sleep(0.5)
        tune_collector()  # the same collector settings as the operator's
        before = await stats_of(http)
        cpu_before = time.process_time()
        created = await drive(http, n, concurrency, functools.partial(until_ready, http, [0]))
        await asyncio.gather(*syncing)  # the last objects' Events, posted after their Ready: counted
        stats = await stats_of(http)
        figures = report("floor", n, created, before, stats)
        figures["cpu_ms"] = (time.process_time() - cpu_before) * 1000 / n
        print(f"floor     CPU {figures['cpu_ms']:.1f} ms per object (this process: the client and the driver)")
        for task in watches:
            task.cancel()
        await kube.close()
        return figures


def operator_context(url: str, bucket: storage.Bucket) -> Context:
    """The operator's Context as main() builds it, on the emulator at `url` and the benchmark's bucket."""
    return Context(kube=Kube(Credentials(server=url)), store=ArtifactStore(bucket.client, bucket.name), cluster=CLUSTER,
                   signer=UploadSigner(bucket, AnonymousCredentials()),  # type: ignore[no-untyped-call]
                   namespaces=(NAMESPACE,))


async def operator(n: int, concurrency: int, bucket: storage.Bucket) -> dict[str, float]:
    async with emulator() as (url, http):
        ctx = operator_context(url, bucket)
        tune_collector()  # as main() does
        start(ctx)  # as main.run() does
        await asyncio.sleep(1.0)  # let the watches start
        before = await stats_of(http)
        cpu_before = time.process_time()

        done, samples = [0], list[tuple[int, float]]()
        sampler = asyncio.create_task(sample_rss(done, samples))
        created = await drive(http, n, concurrency, functools.partial(until_ready, http, done))
        await ctx.recorder.drain()  # the last objects' Events, posted after their Ready: counted, as the floor's
        stats = await stats_of(http)
        sampler.cancel()
        samples.append((done[0], rss_mb()))
        figures = report("operator", n, created, before, stats)
        figures["cpu_ms"] = (time.process_time() - cpu_before) * 1000 / n
        print(f"operator CPU {figures['cpu_ms']:.1f} ms per object (this process: the informers, the client, our code, "
              "and the driver)")
        figures |= memory_report(samples, n)
        queue_report(ctx.metrics, n)
        await stop(ctx)
        return figures


def queue_report(metrics: Metrics, n: int) -> None:
    """What the work queue's metrics say: syncs per object, how long a key waited for a worker, how long a sync took
    (a wait that dwarfs the sync means the workers, not the API server, hold objects back); and the Events the
    recorder dropped (its posters fell QUEUE_LIMIT syncs behind the workers: fewer requests, not a faster operator)."""
    def total(series: str) -> float:
        return metrics.registry.get_sample_value(series, {"name": QUEUE_NAME}) or 0.0

    syncs, waits = total("workqueue_work_duration_seconds_count"), total("workqueue_queue_duration_seconds_count")
    waited = total("workqueue_queue_duration_seconds_sum") * 1000 / max(waits, 1)
    took = total("workqueue_work_duration_seconds_sum") * 1000 / max(syncs, 1)
    dropped = metrics.registry.get_sample_value("modelplane_events_dropped_total") or 0.0
    print(f"operator  {syncs / n:.2f} syncs per object; a key waits {waited:.1f} ms for a worker on average, "
          f"a sync takes {took:.1f} ms; {dropped:.0f} Events dropped")


def rss_mb() -> float:
    """This process's resident memory now (not its peak)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


async def sample_rss(done: list[int], samples: list[tuple[int, float]]) -> None:
    """(objects Ready so far, RSS) twice a second: the slope of memory against objects held."""
    while True:
        samples.append((done[0], rss_mb()))
        await asyncio.sleep(0.5)


def memory_report(samples: list[tuple[int, float]], n: int) -> dict[str, float]:
    """RSS at the start, at a tenth and at the end, and its slope from a tenth to the end (MB per 1,000 objects: what
    each object held costs, past the warm-up)."""
    start, end = samples[0][1], samples[-1][1]
    tenth = next(rss for count, rss in samples if count >= n // 10)
    slope = (end - tenth) / max(n - n // 10, 1) * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"operator RSS {start:.0f} MB at start, {tenth:.0f} MB at {n // 10} Ready, {end:.0f} MB at {n}: "
          f"{slope:+.1f} MB per 1,000 objects past the first tenth (peak {peak:.0f} MB)")
    return {"rss_start_mb": start, "rss_mb": end, "rss_slope_mb_per_1000": slope}


def run_in_image(module: str, *args: str) -> dict[str, float]:
    """`python -m module args` in its own process, so that its memory and CPU are its own, with the packages of the
    operator's image only (bench/image.py: the virtualenv's others would change what aiohttp and the GCS client
    load). It prints what the run printed, and returns the figures the run printed last, as JSON."""
    from bench.image import as_in_image  # here: a run's process cannot import it (packaging is not in the image)

    run_this = as_in_image(f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    found = subprocess.run([sys.executable, "-c", run_this, *args],
                           cwd=Path(__file__).parent.parent, check=True, stdout=subprocess.PIPE, text=True)
    *lines, figures = found.stdout.splitlines()
    if lines:
        print("\n".join(lines), flush=True)
    result: dict[str, float] = json.loads(figures)
    return result


def run(phase: str, n: int, concurrency: int) -> dict[str, float]:
    """One run (the floor or the operator) in its own process."""
    return run_in_image("bench.operator_throughput", phase, str(n), str(concurrency))


async def one_phase(phase: str, n: int, concurrency: int) -> None:
    client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    bucket = client.bucket(BUCKET)
    figures = await (floor if phase == "floor" else operator)(n, concurrency, bucket)
    print(json.dumps(figures))


def ratios(ours: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {"throughput": ours["per_second"] / base["per_second"], "p50 latency": ours["p50"] / base["p50"],
            "p99 latency": ours["p99"] / base["p99"],
            "API requests": ours["requests_per_object"] / base["requests_per_object"],
            "CPU per object": ours["cpu_ms"] / base["cpu_ms"],
            "emulator CPU per object": ours["emulator_cpu_ms"] / base["emulator_cpu_ms"]}


def main(n: int, concurrency: int, rounds: int) -> None:
    """ROUNDS rounds of both runs, the floor first in odd rounds and the operator first in even ones: a shared
    machine's load moves both runs of a round alike, a load that grows or fades over a round is charged to each
    run in turn, and the median of the rounds' ratios is the figure."""
    from fakes.gcs import fake_gcs_in_memory  # here: a run's process cannot import it (its wrapper is not in the image)

    found: list[dict[str, float]] = []
    for number in range(1, rounds + 1):
        print(f"round {number}/{rounds}", flush=True)
        runs = {}
        for phase in ("floor", "operator")[::1 if number % 2 else -1]:
            # A fresh fake-gcs-server and bucket for each run, as each has a fresh emulator: its in-memory backend
            # slows as the bucket fills (measured: an upload takes 1.2 ms in an empty bucket, 6.2 ms beside 10,000
            # objects; a listing by prefix 0.7 and 1.4 ms), which a real bucket does not. Sharing one, every run
            # after the first started beside the last run's N manifests: a cost the first run did not pay.
            with fake_gcs_in_memory():
                client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
                client.create_bucket(BUCKET)
                runs[phase] = run(phase, n, concurrency)
        found.append(ratios(runs["operator"], runs["floor"]))
        print("ratios operator/floor: " + ", ".join(f"{k} {v:.2f}x" for k, v in found[-1].items()), flush=True)
    if rounds > 1:
        print(f"median of {rounds} rounds, operator/floor: " + ", ".join(
            f"{k} {statistics.median(r[k] for r in found):.2f}x" for k in found[0]))


if __name__ == "__main__":
    if sys.argv[1:2] in (["floor"], ["operator"]):  # a run, started by main()
        asyncio.run(one_phase(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    else:
        main(*(int(arg) for arg in sys.argv[1:4]), *(1000, 50, 3)[len(sys.argv[1:4]):])
