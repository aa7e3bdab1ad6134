"""`python -m modelplane.capture`: the capture proxy, configured from its environment (CaptureConfig).

Serves the proxy on MODELPLANE_CAPTURE_PORT and Prometheus metrics on MODELPLANE_CAPTURE_METRICS_PORT, and logs JSON
lines on stderr (what Cloud Logging parses). On SIGTERM (a rollout, a scale-down) it stops taking requests, lets
those in flight finish, writes what is queued and exits, all within SHUTDOWN_SECONDS, inside the pod's default
grace period of 30 s: a hung bucket mount costs the queued records (logged), never a SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from modelplane.capture.config import CaptureConfig
from modelplane.capture.proxy import CaptureProxy
from modelplane.capture.sink import Sink, SinkMetrics
from modelplane.logs import log_json_lines

SHUTDOWN_SECONDS = 25.0  # everything after SIGTERM: requests in flight, then the queue
DRAIN_SECONDS = 15.0  # of which requests in flight may take this much (a long generation is cut after it)

log = logging.getLogger("modelplane.capture")


def metrics_app(registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app


async def serve(config: CaptureConfig, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then shut down within SHUTDOWN_SECONDS."""
    registry = CollectorRegistry()
    sink = Sink(Path(config.directory), config.model_version, batch_records=config.batch_records,
                flush_seconds=config.flush_seconds, queue_bytes=config.queue_bytes, metrics=SinkMetrics(registry))
    proxy = CaptureProxy(config, sink, registry)
    runners = [web.AppRunner(proxy.app(), shutdown_timeout=DRAIN_SECONDS, access_log=None),
               web.AppRunner(metrics_app(registry), access_log=None)]
    for runner, port in zip(runners, (config.port, config.metrics_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()
    writer = asyncio.create_task(sink.run())
    log.info("capturing %s of the traffic to %s in front of %s", config.sample_rate, config.directory,
             config.upstream)
    await stop.wait()
    deadline = asyncio.get_running_loop().time() + SHUTDOWN_SECONDS
    for runner in runners:  # the proxy first: no request adds a record after this
        await runner.cleanup()
    sink.stop()
    try:
        await asyncio.wait_for(writer, max(deadline - asyncio.get_running_loop().time(), 0.1))
    except TimeoutError:
        log.warning("the bucket did not take the queue in time: %d records not written", sink.pending)
    log.info("stopped")


def main() -> int:
    log_json_lines()
    try:
        config = CaptureConfig.from_env(os.environ)
    except ValueError as error:
        log.error("capture proxy: %s", error)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
