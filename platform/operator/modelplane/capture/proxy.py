"""The capture proxy: a reverse proxy in front of the model server that passes every byte through and records a
sample of the traffic.

What goes through is what came: the method, the path and query, the headers less the hop-by-hop ones (RFC 9110
section 7.6.1: Connection and every header it names, Proxy-Connection, Keep-Alive, TE, Trailer, Transfer-Encoding,
Upgrade; Host included, so the server sees the name the client asked for), the body as it arrives, and the
answer's status, headers and body, chunk by chunk as the server writes them (an SSE stream reaches the client event
by event) and never decompressed.

Recording happens beside it, and only for the sampled requests: a copy of at most `maxBodyBytes` of each body is
kept while it streams, and the record is parsed, redacted and queued once the response has ended, so no client
waits for it. An SSE answer is the one exception, read as it passes, each chunk after it was handed to the client:
reassembling the text as it comes keeps at most `maxBodyBytes` of text per stream, where keeping the raw events
until the end would hold several times that (each token carries a JSON envelope) for every stream in flight.

The proxy answers one path itself, `GET /-/capture/healthz`: the pod's readiness, which is the model server's
(its health path, asked through the proxy, since the server listens on the pod's loopback only). Everything else is
the model server's. Scrapes and health checks (`/metrics`, the health path) pass through unrecorded: they are not
traffic.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry, Counter

from modelplane.capture.config import PROXY_HEALTH_PATH, CaptureConfig
from modelplane.capture.record import PayloadRecord
from modelplane.capture.redact import Redactor
from modelplane.capture.sink import Sink
from modelplane.capture.stream import StreamReassembler

HOP_BY_HOP = frozenset({"connection", "proxy-connection", "keep-alive", "te", "trailer", "transfer-encoding",
                        "upgrade"})
READ_CHUNK = 64 * 1024
HEALTH_TIMEOUT = 5.0


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """The headers a proxy forwards: all but the hop-by-hop ones and those Connection names."""
    named = {token.strip().lower() for value in headers.getall("Connection", []) for token in value.split(",")}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP | named)


class Body:
    """A copy of the first `limit` bytes of a body, kept while it streams past."""

    def __init__(self, limit: int) -> None:
        self.limit, self.data, self.truncated = limit, bytearray(), False

    def keep(self, chunk: bytes) -> None:
        if self.truncated:
            return
        if len(self.data) + len(chunk) > self.limit:
            self.truncated = True
            self.data.clear()
        else:
            self.data.extend(chunk)

    def json(self) -> Any:
        if self.truncated or not self.data:
            return None
        try:
            return json.loads(self.data)
        except (ValueError, RecursionError):  # not JSON, or nested past what the parser's stack takes
            return None


class CaptureProxy:
    def __init__(self, config: CaptureConfig, sink: Sink, registry: CollectorRegistry,
                 chance: Callable[[], float] = random.random) -> None:
        self.config, self.sink, self.chance = config, sink, chance
        self.redact = Redactor(config.redact.fields, config.redact.patterns)
        self.requests = Counter("modelplane_payload_requests_total", "Requests proxied, by status code.", ["code"],
                                registry=registry)
        self.session: aiohttp.ClientSession | None = None
        self.unrecorded = frozenset({"/metrics", config.health_path})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=0)
        app.router.add_get(PROXY_HEALTH_PATH, self.health)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _app: web.Application) -> None:
        # No timeout of the proxy's own: a long generation streams for as long as the server streams.
        self.session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None),
                                             connector=aiohttp.TCPConnector(limit=0))

    async def _close(self, _app: web.Application) -> None:
        if self.session:
            await self.session.close()

    async def health(self, _request: web.Request) -> web.Response:
        """Ready when the model server says it is (200 from its health path); 503 otherwise."""
        assert self.session is not None
        try:
            async with self.session.get(self.config.upstream + self.config.health_path,
                                        timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)) as upstream:
                ok = 200 <= upstream.status < 300
                return web.Response(status=200 if ok else 503, text=f"model server: {upstream.status}\n")
        except (aiohttp.ClientError, TimeoutError) as error:
            return web.Response(status=503, text=f"model server not reachable: {error}\n")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        arrived, started = datetime.now(UTC), time.perf_counter()
        sampled = request.path not in self.unrecorded and self.chance() < self.config.sample_rate
        limit = self.config.max_body_bytes
        sent, answered = Body(limit), Body(limit)
        stream: StreamReassembler | None = None

        async def request_body() -> AsyncIterator[bytes]:
            async for chunk in request.content.iter_chunked(READ_CHUNK):
                if sampled:
                    sent.keep(chunk)
                yield chunk

        has_body = request.body_exists
        status: int | None = None  # the server's, once it answered
        response: web.StreamResponse
        try:
            async with self.session.request(
                    request.method, self.config.upstream + request.rel_url.raw_path_qs,
                    headers=end_to_end(request.headers),
                    data=request_body() if has_body else None, allow_redirects=False) as upstream:
                status = upstream.status
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                              headers=end_to_end(upstream.headers))
                await response.prepare(request)
                if sampled and upstream.content_type == "text/event-stream":
                    stream = StreamReassembler(limit)
                async for chunk in upstream.content.iter_any():
                    try:
                        await response.write(chunk)  # on its way to the client before the copy below
                    except ConnectionResetError:  # the client went away: the exchange ends here, and is recorded
                        break
                    if stream is not None:
                        stream.feed(chunk)
                    elif sampled:
                        answered.keep(chunk)
                else:
                    await response.write_eof()
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            if status is not None:  # the server went away mid-response: the client's connection ends with it
                raise
            status = 502
            response = web.Response(status=status, text=f"the model server is not reachable: {error}\n")
            if sampled:  # what was asked, for the record
                async for chunk in request.content.iter_chunked(READ_CHUNK):
                    sent.keep(chunk)
        self.requests.labels(str(status)).inc()
        if sampled:
            self.sink.offer(self._record(request, arrived, started, status, sent, answered, stream))
        return response

    def _record(self, request: web.Request, arrived: datetime, started: float, status: int, sent: Body,
                answered: Body, stream: StreamReassembler | None) -> PayloadRecord:
        """The record of a finished exchange, redacted (built after the response ended: no client waits for it)."""
        response = stream.summary() if stream is not None else answered.json()
        return PayloadRecord(
            time=arrived.strftime("%Y-%m-%dT%H:%M:%S.") + f"{arrived.microsecond // 1000:03d}Z",
            id=request.headers.get("X-Request-Id") or uuid.uuid4().hex, server=self.config.server,
            modelVersion=self.config.model_version, method=request.method, path=request.path, status=status,
            latencyMs=round((time.perf_counter() - started) * 1000, 3), stream=stream is not None,
            request=self.redact(sent.json()), response=self.redact(response),
            truncated=sent.truncated or answered.truncated or bool(stream and stream.truncated))
