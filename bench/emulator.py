"""kmock's Kubernetes emulator as its own process for benchmarks, playing the Job controller.

Every Job the operator creates is completed shortly after (a status patch through the API, so watches see it);
the time a Dataset's status first says ready is recorded. kmock 0.8 matches each request against its whole
request log, so the log is dropped after each request to keep the emulator linear.

    python bench/emulator.py PORT
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from typing import Any

import aiohttp
import kmock

from modelplane.api import GROUP, KINDS, VERSION

JOB_SECONDS = 0.05


def request_kind(method: str, path: str, watch: bool) -> str:
    """`GET jobs`, `LIST pods`, `WATCH datasets`, `PATCH datasets/status`: what a request does to what."""
    parts = [p for p in path.split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    plural, rest = (parts[0], parts[1:]) if parts else (path, [])
    verb = ("WATCH" if watch else "LIST") if method == "GET" and not rest else method
    return f"{verb} {plural}" + (f"/{rest[1]}" if len(rest) > 1 else "")


class BenchEmulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.ready_at: dict[str, float] = {}
        self.by_kind: dict[str, int] = {}  # "GET jobs", "LIST pods", "PATCH datasets/status", ...
        self.total = 0
        self.session: aiohttp.ClientSession | None = None
        self.completing: set[asyncio.Future[None]] = set()

    async def _handle(self, request: Any) -> Any:
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
                self.ready_at.setdefault(path.split("/")[-2], time.time())

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
        k8s["get /_stats"] << (lambda: {
            "ready_at": k8s.ready_at, "requests": k8s.total, "by_kind": k8s.by_kind, "cpu_s": time.process_time(),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        print("READY", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
