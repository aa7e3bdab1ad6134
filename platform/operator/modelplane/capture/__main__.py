"""`python -m modelplane.capture`: the capture proxy, configured from its environment (CaptureConfig).

Serves the proxy on MODELPLANE_CAPTURE_PORT and Prometheus metrics on MODELPLANE_CAPTURE_METRICS_PORT. On SIGTERM
(a rollout, a scale-down) it stops taking requests, lets those in flight finish, writes what is queued and exits
within the pod's grace period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from modelplane.capture.config import CaptureConfig
from modelplane.capture.proxy import CaptureProxy
from modelplane.capture.sink import Sink, SinkMetrics

SHUTDOWN_SECONDS = 20.0  # within Kubernetes' default 30 s grace period


def metrics_app(registry: CollectorRegistry) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def serve(config: CaptureConfig, stop: asyncio.Event) -> None:
    registry = CollectorRegistry()
    sink = Sink(Path(config.directory), config.model_version, batch_records=config.batch_records,
                flush_seconds=config.flush_seconds, queue_bytes=config.queue_bytes, metrics=SinkMetrics(registry))
    proxy = CaptureProxy(config, sink, registry)
    runners = [web.AppRunner(proxy.app(), shutdown_timeout=SHUTDOWN_SECONDS), web.AppRunner(metrics_app(registry))]
    for runner, port in zip(runners, (config.port, config.metrics_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()
    writer = asyncio.create_task(sink.run())
    logging.info("capturing %s of the traffic to %s in front of %s", config.sample_rate, config.directory,
                 config.upstream)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()
    writer.cancel()
    await asyncio.wait_for(sink.flush(), SHUTDOWN_SECONDS)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format='{"level": "%(levelname)s", "message": "%(message)s"}')
    try:
        config = CaptureConfig.from_env(os.environ)
    except ValueError as error:
        print(f"capture proxy: {error}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(config, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
