"""`modelplane-operator`: the operator process (what the image runs).

Watches the tenant namespaces listed in MODELPLANE_NAMESPACES (comma-separated) and the build namespace (its build
Jobs), logs JSON lines, answers liveness probes on :8080/healthz and serves Prometheus metrics on :9090/metrics.
Unset, it watches all namespaces: for a local run with your own credentials (`pip install 'modelplane[cli]'` to
read the kubeconfig), since the deployed RBAC grants only the listed namespaces (operator/access.py). SIGTERM (the
kubelet stopping the pod) or Ctrl-C drains it (handlers.stop).

A plain asyncio program: the informers, the work queue and the workers are the operator's own (handlers.py), so
no framework runs it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import urllib.parse

import aiohttp.web

from modelplane.logs import log_json_lines
from modelplane.names import OPERATOR_METRICS_PORT
from modelplane.operator.context import Context
from modelplane.operator.handlers import running, start, stop
from modelplane.operator.metrics import Metrics

YOUNG_COLLECTION = 10_000  # container allocations between young collections (CPython's default is 700)
LIVENESS = "http://0.0.0.0:8080/healthz"  # the Deployment's livenessProbe (deploy.py: port `health`)

log = logging.getLogger("modelplane.operator")


def tune_collector() -> None:
    """Once the process is set up: what startup made (modules, clients: most of the heap) is never garbage, so full
    collections skip it (gc.freeze), and young collections come every YOUNG_COLLECTION allocations, not 700. Measured
    at 3,000 Datasets (bench/operator_throughput.py): the collector took 10% of the operator's CPU (3.4 s of 34 s),
    most of it in full collections walking every module's objects; tuned, 1.7 s and no full collection."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])


async def serve_liveness(ctx: Context, address: str) -> aiohttp.web.AppRunner:
    """Answer `address` (a URL: where and which path) with 200 while every informer, poster and worker runs, 503
    once one has ended: the kubelet then restarts the pod, which lists everything again."""
    url = urllib.parse.urlsplit(address)

    async def probe(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=200 if running(ctx) else 503)

    app = aiohttp.web.Application()
    app.router.add_get(url.path, probe)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, url.hostname, url.port).start()
    return runner


async def run(ctx: Context, liveness: str = LIVENESS) -> None:
    """Watch and sync until SIGTERM or SIGINT, then drain."""
    loop, stopping = asyncio.get_running_loop(), asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    probe = await serve_liveness(ctx, liveness)
    start(ctx)
    log.info("watching %s", ", ".join(ctx.namespaces) or "every namespace")
    try:
        await stopping.wait()
        log.info("stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await stop(ctx)
        await probe.cleanup()


def main() -> None:
    log_json_lines()
    metrics = Metrics()
    metrics.serve(int(os.environ.get("MODELPLANE_METRICS_PORT", OPERATOR_METRICS_PORT)))
    context = Context.from_environment(metrics)  # bad facts fail here, before any watch starts
    tune_collector()
    asyncio.run(run(context, os.environ.get("MODELPLANE_LIVENESS", LIVENESS)))


if __name__ == "__main__":
    main()
