"""Benchmark: what the capture proxy costs a request, against the same requests sent to the server directly.

    python -m bench.capture_overhead [N=400] [CONCURRENCY=32] [ROUNDS=3]     (from the repository root)

Three processes beside this one: the fake OpenAI-compatible server (fakes/openai.py, streaming without
pauses, so the figures are the proxy's and not the fake model's), and two capture proxies in front of it, as the pod
runs them (`python -m modelplane.capture`): one recording every request (sample rate 1, the worst case) and one
recording none (the bare hop). For plain and streamed chat completions, each round measures, target after target:
- latency: N requests one after the other, each target in turn (time to the first and to the last byte);
- throughput: N requests, CONCURRENCY at a time, target after target.
Prints medians and p99 over the rounds, each target's ratio to direct, and what the recording proxy wrote or dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
FAKE = ("import sys; from aiohttp import web; from fakes.openai import FakeServer; "
        "web.run_app(FakeServer(pause=0).app(), host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)")
CHAT = {"model": "m", "messages": [{"role": "user", "content": "Write to ana@example.com about the invoice."}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until_up(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(400):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with session.get(url):
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


@contextlib.asynccontextmanager
async def process(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[None]:
    child = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=ROOT, env={**os.environ, **(env or {})},
                                                 stderr=asyncio.subprocess.DEVNULL)
    try:
        yield
    finally:
        child.terminate()
        await child.wait()


async def one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[float, float]:
    """(seconds to the first byte, seconds to the last) of one request."""
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        first = None
        async for _ in response.content.iter_any():
            first = first or time.perf_counter()
        assert response.status == 200
    return (first or time.perf_counter()) - started, time.perf_counter() - started


async def throughput(session: aiohttp.ClientSession, url: str, body: dict[str, Any], n: int,
                     concurrency: int) -> float:
    """Requests per second, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def gated() -> None:
        async with gate:
            await one(session, url, body)

    started = time.perf_counter()
    await asyncio.gather(*(gated() for _ in range(n)))
    return n / (time.perf_counter() - started)


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def main(n: int, concurrency: int, rounds: int) -> None:
    server, recording, bare = free_port(), free_port(), free_port()
    metrics = {recording: free_port(), bare: free_port()}
    with tempfile.TemporaryDirectory() as payloads:
        def proxy(port: int, rate: str) -> dict[str, str]:
            return {"MODELPLANE_SERVER": "bench", "MODELPLANE_MODEL_VERSION": "1", "MODELPLANE_CAPTURE_PORT": str(port),
                    "MODELPLANE_CAPTURE_METRICS_PORT": str(metrics[port]), "MODELPLANE_CAPTURE_SAMPLE_RATE": rate,
                    "MODELPLANE_CAPTURE_UPSTREAM": f"http://127.0.0.1:{server}",
                    "MODELPLANE_CAPTURE_DIR": str(Path(payloads) / str(port)), "MODELPLANE_CAPTURE_FLUSH_SECONDS": "1"}

        async with process("-c", FAKE, str(server)), \
                process("-m", "modelplane.capture", env=proxy(recording, "1")), \
                process("-m", "modelplane.capture", env=proxy(bare, "0")), \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            for port in metrics.values():
                await until_up(session, f"http://127.0.0.1:{port}/metrics")
            targets = {"direct": server, "proxy, rate 0": bare, "proxy, rate 1": recording}
            print(f"{n} requests per measure, {concurrency} at a time for throughput, {rounds} rounds\n")
            print(f"{'':9} {'target':14} {'first byte p50':>14} {'last byte p50':>13} {'p99':>8} {'req/s':>7}  "
                  f"ratio to direct (p50, p99, req/s)")
            for kind, body in (("plain", CHAT), ("streamed", {**CHAT, "stream": True})):
                figures: dict[str, tuple[list[float], list[float], list[float]]] = {t: ([], [], []) for t in targets}
                urls = {target: f"http://127.0.0.1:{port}/v1/chat/completions" for target, port in targets.items()}
                for _ in range(rounds):  # targets interleaved, so a noisy neighbour weighs on each alike
                    for _ in range(n):
                        for target, url in urls.items():
                            first, last = await one(session, url, body)
                            figures[target][0].append(first)
                            figures[target][1].append(last)
                    for target, url in urls.items():
                        figures[target][2].append(await throughput(session, url, body, n, concurrency))
                base = figures["direct"]
                for target, (firsts, lasts, rates) in figures.items():
                    ratios = (statistics.median(lasts) / statistics.median(base[1]), p(lasts, 0.99) / p(base[1], 0.99),
                              statistics.median(rates) / statistics.median(base[2]))
                    print(f"{kind:9} {target:14} {statistics.median(firsts) * 1e3:11.3f} ms "
                          f"{statistics.median(lasts) * 1e3:10.3f} ms {p(lasts, 0.99) * 1e3:5.2f} ms "
                          f"{statistics.median(rates):7.0f}  {ratios[0]:.2f}x {ratios[1]:.2f}x {ratios[2]:.2f}x")
            await asyncio.sleep(1.5)  # the recording proxy's last flush
            async with session.get(f"http://127.0.0.1:{metrics[recording]}/metrics") as response:
                samples = {(s.name, tuple(s.labels.values())): s.value
                           for f in text_string_to_metric_families(await response.text()) for s in f.samples}
            print(f"\nrecording proxy: {samples['modelplane_payload_records_total', ()]:.0f} records written in "
                  f"{samples['modelplane_payload_batches_total', ()]:.0f} batches, dropped "
                  f"{samples['modelplane_payload_dropped_total', ('queue_full',)]:.0f} (queue full) "
                  f"{samples['modelplane_payload_dropped_total', ('write_failed',)]:.0f} (write failed)")


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:4]]
    asyncio.run(main(*(arguments + [400, 32, 3][len(arguments):])))
