"""The capture proxy against a fake OpenAI-compatible server: bytes through unchanged (streams as they stream),
records sampled, redacted and batched, and serving unharmed by a stalled or failing sink."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fakes.openai import CHAT, CHUNKS, FakeServer
from modelplane.api.modelserver import Redaction
from modelplane.capture.__main__ import metrics_app
from modelplane.capture.config import PROXY_HEALTH_PATH, CaptureConfig
from modelplane.capture.proxy import CaptureProxy
from modelplane.capture.sink import Sink, SinkMetrics, write_file
from tests.support.http import serving


class Rig:
    """The fake server, the proxy in front of it, and the proxy's sink and metrics."""

    def __init__(self, server: FakeServer, direct: str, proxied: str, proxy: CaptureProxy, sink: Sink,
                 registry: CollectorRegistry) -> None:
        self.server, self.direct, self.proxied, self.proxy, self.sink = server, direct, proxied, proxy, sink
        self.registry = registry

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def rig(tmp_path: Path, write: Callable[[Path, bytes], None] = write_file, upstream: str | None = None,
              chance: Callable[[], float] = lambda: 0.0, **settings: Any) -> AsyncIterator[Rig]:
    server = FakeServer()
    async with serving(server.app()) as direct:
        config = CaptureConfig(server="chat", model_version=3, upstream=upstream or direct,
                               directory=str(tmp_path / "payloads"), **{"flush_seconds": 0.05, **settings})
        registry = CollectorRegistry()
        sink = Sink(Path(config.directory), config.model_version, batch_records=config.batch_records,
                    flush_seconds=config.flush_seconds, queue_bytes=config.queue_bytes,
                    metrics=SinkMetrics(registry), write=write)
        proxy = CaptureProxy(config, sink, registry, chance=chance)
        writer = asyncio.create_task(sink.run())
        try:
            async with serving(proxy.app()) as proxied:
                yield Rig(server, direct, proxied, proxy, sink, registry)
        finally:
            writer.cancel()


async def exchange(url: str, path: str, body: Any = None, method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session, \
            session.request(method, url + path, json=body) as response:
        return response.status, dict(response.headers), await response.read()


def records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((tmp_path / "payloads").rglob("*.jsonl.gz"))
            for line in gzip.decompress(path.read_bytes()).splitlines()]


@pytest.mark.parametrize(("path", "body", "method"), [
    ("/v1/chat/completions", CHAT, "POST"),
    ("/v1/chat/completions", {**CHAT, "stream": True}, "POST"),
    ("/v1/completions", {"prompt": "abc"}, "POST"),
    ("/blob?size=300000", None, "GET"),
    ("/missing", None, "GET"),
], ids=["plain", "streamed", "completions", "binary", "404"])
async def test_what_the_client_gets_through_the_proxy_is_what_the_server_sent(
        tmp_path: Path, path: str, body: Any, method: str) -> None:
    async with rig(tmp_path) as r:
        direct = await exchange(r.direct, path, body, method)
        proxied = await exchange(r.proxied, path, body, method)
    assert proxied[0] == direct[0] and proxied[2] == direct[2]
    end_to_end = ("Content-Type", "Cache-Control", "X-Served-By", "Content-Length")
    assert {k: proxied[1].get(k) for k in end_to_end} == {k: direct[1].get(k) for k in end_to_end}


async def test_what_the_server_gets_through_the_proxy_is_what_the_client_sent(tmp_path: Path) -> None:
    """Less the hop-by-hop headers (those Connection names too); a chunked upload stays chunked, as it streams."""
    payload = bytes(range(256)) * 400

    async def upload() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 10_000):
            yield payload[start:start + 10_000]

    headers = {"X-Tenant": "ml", "Connection": "keep-alive, X-Hop", "X-Hop": "for the proxy", "Keep-Alive": "5"}
    async with rig(tmp_path) as r, aiohttp.ClientSession() as session:
        async with session.put(r.proxied + "/echo?a=1&b=%20", data=upload(), headers=headers) as response:
            chunked = await response.json()
        async with session.post(r.proxied + "/echo", data=b"x" * 70_000) as response:
            sized = await response.json()
    got = dict(chunked["headers"])
    assert (chunked["method"], chunked["path"], chunked["body"].encode("latin-1")) == ("PUT", "/echo?a=1&b=%20",
                                                                                         payload)
    assert got["X-Tenant"] == "ml" and got["Host"] == r.proxied.removeprefix("http://")
    assert got["Transfer-Encoding"] == "chunked" and not {"X-Hop", "Keep-Alive"} & set(got)
    assert dict(sized["headers"])["Content-Length"] == "70000" and sized["body"] == "x" * 70_000


async def test_a_stream_reaches_the_client_event_by_event(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.server.gate.clear()  # the server holds the rest of the stream until the client has the first event
        async with aiohttp.ClientSession() as session, \
                session.post(r.proxied + "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
            assert CHUNKS[0] in first.decode()
            r.server.gate.set()
            rest = await response.read()
    assert b"[DONE]" in rest


async def test_records_are_redacted_batched_and_tagged_with_the_version(tmp_path: Path) -> None:
    redact = Redaction(fields=["messages[*].role"])
    async with rig(tmp_path, redact=redact) as r:
        await exchange(r.proxied, "/v1/chat/completions", CHAT)
        await exchange(r.proxied, "/v1/chat/completions", {**CHAT, "stream": True})
        await asyncio.sleep(0.2)
        assert r.metric("modelplane_payload_records_total") == 2
    plain, streamed = records(tmp_path)
    (batch,) = {p.relative_to(tmp_path / "payloads").parent.as_posix()
                for p in (tmp_path / "payloads").rglob("*.jsonl.gz")}
    assert batch.startswith("version=3/date=20")
    assert plain["request"]["messages"] == [{"role": "[REDACTED]",
                                             "content": "Hi, I am [EMAIL], call [PHONE]"}]
    assert plain["response"]["choices"][0]["message"]["content"].endswith("Mail me: [EMAIL]")
    assert (plain["modelVersion"], plain["server"], plain["status"], plain["stream"]) == (3, "chat", 200, False)
    assert streamed["stream"] is True
    assert streamed["response"] == {"text": "Hello, wörld! Mail me: [EMAIL]", "finishReason": "stop",
                                    "usage": {"promptTokens": 7, "completionTokens": 5}}
    assert all(r["latencyMs"] > 0 and r["time"].endswith("Z") for r in (plain, streamed))


async def test_sampling_records_a_share_of_requests(tmp_path: Path) -> None:
    async with rig(tmp_path, chance=random.Random(7).random, sample_rate=0.5) as r:
        await asyncio.gather(*(exchange(r.proxied, "/v1/completions", {"prompt": "x"}) for _ in range(200)))
        await asyncio.sleep(0.2)
    assert 80 <= len(records(tmp_path)) <= 120
    async with rig(tmp_path / "none", chance=random.Random(7).random, sample_rate=0.0) as r:
        await asyncio.gather(*(exchange(r.proxied, "/v1/completions", {"prompt": "x"}) for _ in range(20)))
        await asyncio.sleep(0.2)
        assert r.metric("modelplane_payload_requests_total", code="200") == 20
    assert records(tmp_path / "none") == []


async def test_a_stalled_sink_drops_records_serves_every_request_and_bounds_memory(tmp_path: Path) -> None:
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stalled(path: Path, data: bytes) -> None:  # a FUSE mount that hangs
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()

    bound = 64 * 1024
    async with rig(tmp_path, write=stalled, queue_bytes=bound, batch_records=10) as r:
        _, _, expected = await exchange(r.direct, "/v1/chat/completions", CHAT)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        async with aiohttp.ClientSession() as session:
            async def one() -> bool:
                async with session.post(r.proxied + "/v1/chat/completions", json=CHAT) as response:
                    return response.status == 200 and await response.read() == expected
            for _ in range(6):  # 600 requests, 100 at a time
                assert all(await asyncio.gather(*(one() for _ in range(100))))
                assert r.sink.queued <= bound
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        dropped = r.metric("modelplane_payload_dropped_total", reason="queue_full")
        assert dropped > 400 and r.metric("modelplane_payload_queue_bytes") <= bound
        assert grown < 8 * 2**20  # the dropped records' bodies are not kept
        release.set()


async def test_a_failing_sink_is_counted_on_metrics_and_serving_goes_on(tmp_path: Path) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    async with rig(tmp_path, write=full) as r:
        for _ in range(3):
            status, _, _ = await exchange(r.proxied, "/v1/completions", {"prompt": "x"})
            assert status == 200
        await asyncio.sleep(0.2)
        async with serving(metrics_app(r.registry)) as metrics, aiohttp.ClientSession() as session, \
                session.get(metrics + "/metrics") as response:
            scraped = {(s.name, tuple(s.labels.values())): s.value
                       for family in text_string_to_metric_families(await response.text()) for s in family.samples}
    assert scraped["modelplane_payload_dropped_total", ("write_failed",)] == 3
    assert scraped["modelplane_payload_dropped_total", ("queue_full",)] == 0
    assert scraped["modelplane_payload_requests_total", ("200",)] == 3
    assert scraped["modelplane_payload_records_total", ()] == 0 and scraped["modelplane_payload_queue_bytes", ()] == 0


async def test_an_unreachable_server_is_a_502_recorded_and_the_pod_is_not_ready(tmp_path: Path) -> None:
    async with rig(tmp_path, upstream="http://127.0.0.1:9") as r:
        status, _, body = await exchange(r.proxied, "/v1/completions", {"prompt": "x"})
        health, _, _ = await exchange(r.proxied, PROXY_HEALTH_PATH, method="GET")
        await asyncio.sleep(0.2)
    assert status == 502 and b"not reachable" in body and health == 503
    (record,) = records(tmp_path)
    assert record["status"] == 502 and record["request"] == {"prompt": "x"} and record["response"] is None


async def test_readiness_is_the_model_servers_and_scrapes_are_not_recorded(tmp_path: Path) -> None:
    async with rig(tmp_path, health_path="/blob") as r:
        ready, _, _ = await exchange(r.proxied, PROXY_HEALTH_PATH, method="GET")
        await exchange(r.proxied, "/blob", method="GET")
        await exchange(r.proxied, "/metrics", method="GET")
        await asyncio.sleep(0.2)
    assert ready == 200
    assert records(tmp_path) == []
    async with rig(tmp_path, health_path="/missing") as r:
        not_ready, _, _ = await exchange(r.proxied, PROXY_HEALTH_PATH, method="GET")
    assert not_ready == 503


async def test_a_client_that_goes_away_is_still_recorded(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        async with aiohttp.ClientSession() as session, \
                session.get(r.proxied + "/blob?size=4000000") as response:
            assert response.status == 200  # and leaves without reading the body
        await asyncio.sleep(0.3)
        health, _, _ = await exchange(r.proxied, "/v1/completions", {"prompt": "x"})
        await asyncio.sleep(0.2)
    assert health == 200
    assert sorted((rec["path"], rec["status"]) for rec in records(tmp_path)) == [("/blob", 200),
                                                                                ("/v1/completions", 200)]


async def test_a_body_over_the_limit_is_passed_through_and_not_recorded(tmp_path: Path) -> None:
    async with rig(tmp_path, max_body_bytes=1024) as r:
        big = {"prompt": "y" * 5000}
        direct = await exchange(r.direct, "/v1/completions", big)
        proxied = await exchange(r.proxied, "/v1/completions", big)
        await asyncio.sleep(0.2)
    assert proxied[2] == direct[2]
    (record,) = records(tmp_path)
    assert record["truncated"] is True and record["request"] is None and record["response"] is None
