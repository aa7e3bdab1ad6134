"""A fake OpenAI-compatible model server (aiohttp) for the capture proxy's tests and benchmark: plain and streamed
completions, with a gate the test opens to prove a stream reaches the client event by event, a binary endpoint and
one that echoes the request it got."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

# A chat request with personal data in it, for redaction.
CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi, I am bob@example.org, call +1 415 555 0100"}]}
CHUNKS = ["Hel", "lo, ", "wörld", "! ", "Mail me: ana@example.com"]  # a multi-byte character, an address


def chunk(piece: str, finish: str | None = None) -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": finish}]}
    return f"data: {json.dumps(event)}\n\n".encode()


class FakeServer:
    def __init__(self, pause: float = 0.001) -> None:
        self.pause = pause  # between a stream's events, as a model generating tokens
        self.gate = asyncio.Event()  # a gated stream waits here after its first event
        self.gate.set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/blob", self.blob)
        app.router.add_route("*", "/echo", self.echo)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        if not body.get("stream"):
            answer = {"id": "c1", "object": "chat.completion", "model": "m",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(CHUNKS)},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}}
            return web.json_response(answer, headers={"X-Served-By": "fake"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        for i, piece in enumerate(CHUNKS):
            await response.write(chunk(piece, "stop" if i == len(CHUNKS) - 1 else None))
            if i == 0:
                await self.gate.wait()
            await asyncio.sleep(self.pause)
        usage = {"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}}
        await response.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"choices": [{"text": str(body.get("prompt", ""))[::-1], "finish_reason": "length"}],
                                  "usage": {"prompt_tokens": 3, "completion_tokens": 3}}, status=200)

    async def blob(self, request: web.Request) -> web.Response:
        size = int(request.query.get("size", "200000"))
        return web.Response(body=bytes(range(256)) * (size // 256), content_type="application/octet-stream")

    async def echo(self, request: web.Request) -> web.Response:
        """What arrived: method, path and query, headers in order, and the body (bytes as latin-1)."""
        body = await request.read()
        return web.json_response({"method": request.method, "path": request.path_qs,
                                  "headers": list(request.headers.items()), "body": body.decode("latin-1")})
