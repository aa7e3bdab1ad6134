"""Events are posted beside the syncs, not by them, as client-go's EventRecorder posts them (tools/record: a sync
hands its Events to a broadcaster and goes on; a goroutine writes them to the API server).

A worker is then free one round trip sooner after its status write, and a slow or throttled events API (the
EventRateLimit admission plugin, an API server under load) slows no sync. As client-go's broadcaster does
(maxQueuedEvents = 1000, dropped when full), the recorder is bounded: past QUEUE_LIMIT syncs' Events not yet
posted, a sync's Events are dropped and logged, never blocking it. Best effort, as there: an Event the API server
refuses or cannot take is logged, not retried (the status already says what it says). Dropped Events are counted
(`modelplane_events_dropped_total`).

POSTERS posters share the work, each with its own line; an object's Events always go to the same line, so they are
posted in the order its syncs recorded them (as the work queue ordered the syncs), while other objects' go on
beside them. The posters and the workers share the client's connections (kube.CONNECTIONS holds both), so a hung
events API holds at most POSTERS of them. At shutdown the lines are drained (handlers.stop).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from modelplane.operator.kube import Kube, RefusedError, TransientError
from modelplane.operator.metrics import Metrics
from modelplane.reconcile.notices import Notice

QUEUE_LIMIT = 1000  # syncs whose Events are not posted yet; client-go's maxQueuedEvents
# Events posted at once. A sync makes ~3 calls and records ~1 Event, and a busy API server serves its clients'
# connections in turn: with fewer than a third of the workers' connections the Events fall behind the syncs and,
# past QUEUE_LIMIT, are dropped (4 posters beside 32 workers dropped thousands at 10,000 Datasets: the benchmark,
# bench/operator_throughput.py, counts them); half of the workers' keeps pace (none dropped).
POSTERS = 16

log = logging.getLogger("modelplane.operator")


@dataclass(frozen=True)
class Batch:
    """The Events of one sync: about one object, at one time."""

    involved: dict[str, Any]  # the object reference (apiVersion, kind, name, namespace, uid, resourceVersion)
    notices: list[Notice]
    at: str  # when the sync wrote the status they announce


class Recorder:
    """The syncs' Events waiting to be posted, a line per poster, and the loop its posters run."""

    def __init__(self, kube: Kube, metrics: Metrics) -> None:
        self.kube, self.metrics = kube, metrics
        self._lines: list[asyncio.Queue[Batch]] = [asyncio.Queue() for _ in range(POSTERS)]
        self._unfinished = 0  # batches recorded and not yet posted (or given up): in a line or being posted

    def record(self, batch: Batch) -> None:
        """Queue a sync's Events; never waits."""
        involved = batch.involved
        if self._unfinished >= QUEUE_LIMIT:
            log.warning("dropped %d events on %s %s/%s: the Events of %d syncs wait to be posted",
                        len(batch.notices), involved["kind"], involved["namespace"], involved["name"],
                        self._unfinished)
            self.metrics.events_dropped.inc(len(batch.notices))
            return
        self._unfinished += 1
        self._lines[hash((involved["namespace"], involved["name"])) % len(self._lines)].put_nowait(batch)

    async def post(self, poster: int) -> None:
        """Poster number `poster`: posts its line's batches as they come, until cancelled. No failure stops it, not
        even a bug."""
        line = self._lines[poster]
        while True:
            batch = await line.get()
            try:
                for notice in batch.notices:
                    await self._post(batch, notice)
            finally:
                self._unfinished -= 1
                line.task_done()

    async def _post(self, batch: Batch, notice: Notice) -> None:
        try:
            await self.kube.post_event(batch.involved, notice.type, notice.reason, notice.message, batch.at)
        except Exception as error:
            log.warning("could not post %s on %s %s/%s: %s", notice.reason, batch.involved["kind"],
                        batch.involved["namespace"], batch.involved["name"], error,
                        exc_info=not isinstance(error, RefusedError | TransientError))

    def unfinished(self) -> int:
        """Syncs whose Events are not posted yet (waiting, or being posted)."""
        return self._unfinished

    async def drain(self, within: float | None = None) -> int:
        """Wait (up to `within` seconds) until every batch recorded so far is posted or given up; return how many
        syncs' Events are still not posted."""
        if self._unfinished:
            joined = asyncio.ensure_future(asyncio.gather(*(line.join() for line in self._lines)))
            if not (await asyncio.wait({joined}, timeout=None if within is None else max(within, 0.0)))[0]:
                joined.cancel()
        return self._unfinished
