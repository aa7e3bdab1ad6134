"""kmock's Kubernetes emulator as its own process for benchmarks, playing the Job controller.

Every Job the operator creates is completed shortly after (a status patch through the API, so watches see it);
the time a Dataset's status first says ready is recorded, and `GET /_ready?name=N` answers once Dataset N is ready
(the benchmark's clients wait on it).

It is the tests' emulator (tests/support/emulator.py: server-side apply creates a missing object, a no-op write
stores nothing and wakes no watch, the status subresource, watches from a resourceVersion, a namespace's watch woken
only by its namespace's changes), so both runs meet the API server's rules. Where kmock
0.8 costs what a real API server does not, this emulator does as the API server does, so that neither run of the
benchmark is charged for the emulator's shortcuts:
- kmock matches each request against its request log, which holds every request still being served (each watch,
  each waiting client): here the log a request is matched against is that request alone (the API server routes a
  request by its own path, whatever else is open), and each request leaves the log when it is answered;
- kmock finds the object a GET, PATCH or DELETE names by scanning every stored object; the API server reads one key
  (from etcd or its watch cache), so here it is one dictionary lookup, whatever else is stored (Events included);
- kmock puts a Python traceback in every 404's Status; the API server's NotFound carries the name and kind only.

    python -m bench.emulator PORT     (from the repository root)
"""

from __future__ import annotations

import asyncio
import contextvars
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import aiohttp.web
import kmock
from kmock._internal.k8s import KubernetesError

from modelplane.api import GROUP, KINDS, VERSION
from tests.support.emulator import ApiServerEmulator, upstream_reason

JOB_SECONDS = 0.05
SERVING: contextvars.ContextVar[Any] = contextvars.ContextVar("serving")  # the request this task is answering


def request_kind(method: str, path: str, watch: bool) -> str:
    """`GET jobs`, `LIST pods`, `WATCH datasets`, `PATCH datasets/status`: what a request does to what."""
    parts = [p for p in path.split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    plural, rest = (parts[0], parts[1:]) if parts else (path, [])
    verb = ("WATCH" if watch else "LIST") if method == "GET" and not rest else method
    return f"{verb} {plural}" + (f"/{rest[1]}" if len(rest) > 1 else "")


class BenchEmulator(ApiServerEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.ready_at: dict[str, float] = {}
        self.by_kind: dict[str, int] = {}  # "GET jobs", "LIST pods", "PATCH datasets/status", ...
        self.total = 0
        self.session: aiohttp.ClientSession | None = None
        self.completing: set[asyncio.Future[None]] = set()
        self.became_ready: dict[str, asyncio.Event] = {}

    def _KubernetesEmulator__get_obj(self, request: Any, strict: bool) -> Any:  # noqa: N802  (kmock's private name)
        """The one object a request names, by key (kmock scans them all)."""
        if strict and request.name is not None and request.resource is not None:
            key = (request.resource, request.namespace, request.name)
            return self._objects[key] if key in self._objects else None  # noqa: SIM401 (no .get)
        objs = self._KubernetesEmulator__get_objs(request, strict=strict)  # type: ignore[attr-defined]
        return objs[0] if objs else None

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        """The Status of an API error, without kmock's traceback in it."""
        if not isinstance(exc, KubernetesError):
            return await super()._render_error(exc)
        exc = upstream_reason(exc)
        return aiohttp.web.json_response({
            "apiVersion": "v1", "kind": "Status", "metadata": {}, "code": exc.status, "status": "Failure",
            "reason": exc.reason or type(exc).__name__, "message": exc.message or repr(exc),
            "details": exc.details or {}}, status=exc.status)

    async def until_ready(self, name: str) -> dict[str, float]:
        """Answers once Dataset `name` is ready."""
        if name not in self.ready_at:
            await self.became_ready.setdefault(name, asyncio.Event()).wait()
        return {"ready_at": self.ready_at[name]}

    def __iter__(self) -> Iterator[Any]:
        """The request log as kmock's routing reads it: only the request this task serves."""
        request = SERVING.get(None)
        if request is not None:
            yield request

    async def _handle(self, request: Any) -> Any:
        SERVING.set(request)  # each request is served in its own task (aiohttp), so in its own context
        try:
            return await super()._handle(request)
        finally:
            self._requests.remove(request)
            self.total += 1
            path = str(request.url.path)
            kind = request_kind(request.method.name, path, "watch" in request.params)
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if request.method.name == "POST" and path.endswith("/jobs") and isinstance(request.data, dict):
                asyncio.get_running_loop().call_later(JOB_SECONDS, self._complete, request.data["metadata"])
            data = request.data if isinstance(request.data, dict) else {}
            if "/datasets/" in path and path.endswith("/status") and data.get("status", {}).get("ready"):
                name = path.split("/")[-2]
                self.ready_at.setdefault(name, time.time())
                self.became_ready.setdefault(name, asyncio.Event()).set()

    def _complete(self, meta: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._patch_complete(meta))
        self.completing.add(task)  # keep a reference until done, or the task may vanish mid-flight
        task.add_done_callback(self.completing.discard)

    async def _patch_complete(self, meta: dict[str, Any]) -> None:
        assert self.session is not None
        url = f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status"
        body = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
        async with self.session.patch(url, json=body) as response:
            response.raise_for_status()


async def main(port: int) -> None:
    async with BenchEmulator() as k8s, kmock.Server(k8s, port=port):
        k8s.session = aiohttp.ClientSession(f"http://127.0.0.1:{port}")
        k8s.resources.load_bundled()
        for kind in KINDS:
            k8s.resources[f"{GROUP}/{VERSION}/{kind.plural}"] = kmock.ResourceInfo(
                kind=kind.kind, singular=kind.singular, namespaced=True, subresources={"status"},
                verbs={"list", "watch", "get", "patch", "create", "delete"})
        k8s.resources["jobset.x-k8s.io/v1alpha2/jobsets"] = kmock.ResourceInfo(
            kind="JobSet", singular="jobset", namespaced=True, subresources={"status"},
            verbs={"list", "watch", "get", "patch", "create", "delete"})  # the operator watches them
        k8s["get /_ready"] << (lambda request: k8s.until_ready(request.params["name"]))
        k8s["get /_stats"] << (lambda: {
            "ready_at": k8s.ready_at, "requests": k8s.total, "by_kind": k8s.by_kind, "cpu_s": time.process_time(),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        print("READY", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
