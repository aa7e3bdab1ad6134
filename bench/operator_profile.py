"""Profile: where the CPU of one throughput run goes, by component, the operator's beside the floor's.

    python -m bench.operator_profile [N=1000]     (from the repository root)

Runs the throughput benchmark's two runs (bench/operator_throughput.py: the floor, then the operator, each with its
own emulator and fake-gcs-server) in this process under cProfile, timed by CPU (process_time), not by the wall clock:
waiting on the emulator is not work. Prints each run's CPU by component (the module a function lives in: aiohttp,
the event loop, json, our API client, our sync machinery, our pure reconcilers, ...) and the functions of ours that
cost the most of the operator's. A built-in (a C function: json's scanner, a dict method) counts for the component
of its costliest caller.

How faithful: cProfile slows every Python call alike, about twofold here, so the absolute figures are the profiler's,
the shares and the difference between the runs are what to read. It sees the event loop's thread only: the GCS
calls the operator makes in threads (asyncio.to_thread) are not in it; the floor makes its own on the loop. The
process is the venv's, not the image's (bench/image.py), and holds both runs: the throughput and RSS lines each
run prints on the way are not the benchmark's (bench/operator_throughput.py gives those).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from collections import defaultdict

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from bench.operator_throughput import BUCKET, one_phase
from fakes.gcs import fake_gcs_in_memory

CONCURRENCY = 50
# The component a function belongs to: the first of these its file's path contains.
COMPONENTS = (
    ("modelplane/operator/informer", "ours: informers"),
    ("modelplane/operator/kube", "ours: API client (kube.py)"),
    ("modelplane/operator/observe", "ours: observing (observe/)"),
    ("modelplane/operator", "ours: sync, queue, handlers, recorder"),
    ("modelplane/reconcile", "ours: reconcilers (pure)"),
    ("modelplane/builders", "ours: builders (pure)"),
    ("modelplane/api", "ours: API types, status check"),
    ("modelplane", "ours: other"),
    ("prometheus_client", "metrics (prometheus-client)"),
    ("pydantic", "pydantic"),
    ("aiohttp", "aiohttp, yarl, multidict"), ("yarl", "aiohttp, yarl, multidict"),
    ("multidict", "aiohttp, yarl, multidict"),
    ("json", "json"),
    ("asyncio", "event loop (asyncio)"), ("selectors", "event loop (asyncio)"),
    ("google", "GCS client"), ("requests", "GCS client"), ("urllib3", "GCS client"), ("http/", "GCS client"),
    ("bench/", "the benchmark's driver"),
)
OURS = "modelplane/"


def component(path: str) -> str:
    return next((name for part, name in COMPONENTS if part in path), "other")


Entry = tuple[str, int, str]  # pstats' key: file, line, function


def by_component(stats: pstats.Stats) -> defaultdict[str, float]:
    """Seconds of CPU spent in each component's own code (not in what it calls)."""
    table: dict[Entry, tuple[int, int, float, float, dict[Entry, tuple[int, int, float, float]]]] = \
        stats.stats  # type: ignore[attr-defined]
    spent: defaultdict[str, float] = defaultdict(float)
    for (path, _line, _name), (_calls, _primitive, own, _total, callers) in table.items():
        if path == "~" and callers:  # a built-in: its costliest caller's
            path = max(callers.items(), key=lambda caller: caller[1][2])[0][0]
        spent[component(path)] += own
    return spent


def ours_at_top(stats: pstats.Stats, count: int) -> list[str]:
    table: dict[Entry, tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(((own, total, calls, path, line, name) for (path, line, name), (_p, calls, own, total, _c)
                   in table.items() if OURS in path), reverse=True)[:count]
    return [f"  {own:6.2f} s own {total:6.2f} s in all {calls:8d} calls  "
            f"{path[path.index(OURS):]}:{line} {name}" for own, total, calls, path, line, name in rows]


def profiled(phase: str, n: int) -> pstats.Stats:
    with fake_gcs_in_memory():
        client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        client.create_bucket(BUCKET)
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        asyncio.run(one_phase(phase, n, CONCURRENCY))
        profile.disable()
    return pstats.Stats(profile)


def main(n: int) -> None:
    floor_stats, operator_stats = profiled("floor", n), profiled("operator", n)
    floor, operator = by_component(floor_stats), by_component(operator_stats)
    floor_total, operator_total = sum(floor.values()), sum(operator.values())
    print(f"\nCPU under cProfile, {n} Datasets: floor {floor_total:.2f} s, operator {operator_total:.2f} s "
          f"({operator_total / floor_total:.2f}x)")
    print(f"  {'component':40} {'floor':>8} {'operator':>9} {'share':>6} {'difference':>11}")
    for name in sorted(operator.keys() | floor.keys(), key=lambda key: -operator[key]):
        print(f"  {name:40} {floor[name]:7.2f}s {operator[name]:8.2f}s {100 * operator[name] / operator_total:5.1f}% "
              f"{operator[name] - floor[name]:+10.2f}s")
    print("the operator's costliest functions of ours:")
    print("\n".join(ours_at_top(operator_stats, 15)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
