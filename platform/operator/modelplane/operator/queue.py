"""A work queue of object keys with per-key backoff: how every sync is scheduled, whatever asked for it.

Modelled on client-go's workqueue, which controller-runtime and Kubebuilder operators use: a key is queued at most
once however many events name it; a key is never synced by two workers at once (an event that arrives during its
sync queues it again for afterwards); a failed sync is retried after a delay that doubles per consecutive failure,
up to a cap, and forgotten on success. So a transient API error during a sync is retried whatever started it: the
object's own event, its Job's, an input's, the resync.

Not thread-safe: call it from the event loop (the informers' handlers and the workers run there). With `metrics`, it
reports what client-go's queue reports (depth, adds, time waiting, time worked, retries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from modelplane.operator.metrics import QUEUE_NAME, Metrics

K = TypeVar("K", bound=Hashable)

BASE_DELAY = 0.5  # seconds before the first retry
MAX_DELAY = 300.0  # the longest wait between retries: a fixed API or RBAC is noticed within five minutes


class WorkQueue(Generic[K]):
    def __init__(self, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                 metrics: Metrics | None = None) -> None:
        self.base_delay, self.max_delay = base_delay, max_delay
        self.series = metrics.work_queue(QUEUE_NAME) if metrics else None
        self._since: dict[K, float] = {}  # when a key was put in line, or when its sync started
        self._ready: asyncio.Queue[K | None] = asyncio.Queue()  # None: closed (passed on to every waiting worker)
        self._closed = False
        self._dirty: set[K] = set()  # wanted a sync (in _ready, or waiting for its active sync to end)
        self._active: set[K] = set()  # being synced now
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}

    def __len__(self) -> int:
        return len(self._dirty)

    def add(self, key: K) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if self.series:
            self.series.adds.inc()
            self.series.depth.set(len(self._dirty))
        if key not in self._active:
            self._line_up(key)

    def _line_up(self, key: K) -> None:
        self._since[key] = time.monotonic()
        self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` in `delay` seconds (the earliest of several requests wins)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending and pending[0] <= due:
            return
        if pending:
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> K | None:
        """The next key to sync, or None once the queue is closed: a worker then stops, and what is still in line
        is left for the next operator (which lists and syncs everything when it starts)."""
        key = await self._ready.get()
        if key is None or self._closed:
            self._ready.put_nowait(None)  # wakes the next waiting worker, which stops too
            return None
        self._dirty.discard(key)
        self._active.add(key)
        started = time.monotonic()
        if self.series:
            self.series.waited.observe(started - self._since.get(key, started))
            self.series.depth.set(len(self._dirty))
        self._since[key] = started
        return key

    def done(self, key: K) -> None:
        """The sync of `key` ended; if it was asked for again meanwhile, it goes back in line."""
        self._active.discard(key)
        started = self._since.pop(key, None)
        if self.series and started is not None:
            self.series.worked.observe(time.monotonic() - started)
        if key in self._dirty:
            self._line_up(key)

    def retry(self, key: K) -> float:
        """Queue `key` again after its backoff; returns the delay."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        if self.series:
            self.series.retries.inc()
        delay = min(self.base_delay * 2.0 ** (failures - 1), self.max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The sync succeeded: the next failure starts from the shortest delay again."""
        self._failures.pop(key, None)

    def close(self) -> None:
        """Hand out no more keys (syncs under way go on to their end) and fire no timers."""
        self._closed = True
        self._ready.put_nowait(None)
        for _due, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
