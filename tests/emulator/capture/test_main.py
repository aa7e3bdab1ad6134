"""`python -m modelplane.capture` as the pod runs it: settings from the environment, JSON log lines, and on SIGTERM
the stream in flight finished and the queue written before it exits."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from fakes.openai import CHAT, FakeServer
from tests.support.http import serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_sigterm_finishes_the_stream_in_flight_and_writes_the_queue(tmp_path: Path) -> None:
    server = FakeServer()
    port, metrics_port = free_port(), free_port()
    async with serving(server.app()) as upstream:
        env = {**os.environ, "MODELPLANE_SERVER": "chat", "MODELPLANE_MODEL_VERSION": "4",
               "MODELPLANE_CAPTURE_PORT": str(port), "MODELPLANE_CAPTURE_METRICS_PORT": str(metrics_port),
               "MODELPLANE_CAPTURE_UPSTREAM": upstream, "MODELPLANE_CAPTURE_DIR": str(tmp_path),
               "MODELPLANE_CAPTURE_FLUSH_SECONDS": "3600"}  # nothing is written before the SIGTERM
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "modelplane.capture", env=env,
                                                       stderr=asyncio.subprocess.PIPE)
        try:
            await until_up(f"http://127.0.0.1:{metrics_port}/metrics")
            proxied = f"http://127.0.0.1:{port}/v1/chat/completions"
            async with aiohttp.ClientSession() as session:
                async with session.post(proxied, json=CHAT) as response:
                    assert response.status == 200
                server.gate.clear()
                async with session.post(proxied, json={**CHAT, "stream": True}) as response:
                    await response.content.readuntil(b"\n\n")
                    process.send_signal(signal.SIGTERM)
                    await asyncio.sleep(0.2)
                    server.gate.set()
                    rest = await response.read()
            assert rest.endswith(b"data: [DONE]\n\n")
            assert await asyncio.wait_for(process.wait(), 10) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.stderr is not None
    logs = [json.loads(line) for line in (await process.stderr.read()).splitlines()]
    assert logs and logs[-1]["message"] == "stopped"
    (batch,) = tmp_path.rglob("*.jsonl.gz")
    assert batch.parent.relative_to(tmp_path).as_posix().startswith("version=4/date=")
    lines = gzip.decompress(batch.read_bytes()).splitlines()
    assert [json.loads(line)["stream"] for line in lines] == [False, True]
