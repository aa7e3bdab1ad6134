"""Events are posted beside the syncs, not by them, as client-go's EventRecorder posts them (tools/record: a sync
hands its Events to a broadcaster and goes on; a goroutine writes them to the API server).

A worker is then free one round trip sooner after its status write, and a slow or throttled events API (the
EventRateLimit admission plugin, an API server under load) slows no sync. As client-go's broadcaster does
(maxQueuedEvents = 1000, dropped when full), the line is bounded: past QUEUE_LIMIT waiting batches an Event is
dropped and logged, never blocking a sync. Best effort, as there: an Event the API server refuses or cannot take is
logged, not retried (the status already says what it says). A sync's Events are posted in order, by one poster;
POSTERS of them share the line. At shutdown the line is drained (handlers.stop).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from modelplane.operator.kube import Kube, RefusedError, TransientError
from modelplane.reconcile.notices import Notice

QUEUE_LIMIT = 1000  # batches (one per sync) waiting to be posted; client-go's maxQueuedEvents
POSTERS = 4  # batches posted at once: the Events of ~2 syncs per object, at the pace of 16 workers

log = logging.getLogger("modelplane.operator")


@dataclass(frozen=True)
class Batch:
    """The Events of one sync: about one object, at one time."""

    involved: dict[str, Any]  # the object reference (apiVersion, kind, name, namespace, uid, resourceVersion)
    notices: list[Notice]
    at: str  # when the sync wrote the status they announce


class Recorder:
    """The line of the syncs' Events waiting to be posted, and the loop its posters run."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._line: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_LIMIT)

    def record(self, batch: Batch) -> None:
        """Queue a sync's Events; never waits."""
        try:
            self._line.put_nowait(batch)
        except asyncio.QueueFull:
            log.warning("dropped %d events on %s %s/%s: %d batches wait to be posted", len(batch.notices),
                        batch.involved["kind"], batch.involved["namespace"], batch.involved["name"], self._line.maxsize)

    async def post(self) -> None:
        """One poster: posts batches as they come, until cancelled. No failure stops it, not even a bug."""
        while True:
            batch = await self._line.get()
            try:
                for notice in batch.notices:
                    await self._post(batch, notice)
            finally:
                self._line.task_done()

    async def _post(self, batch: Batch, notice: Notice) -> None:
        try:
            await self.kube.post_event(batch.involved, notice.type, notice.reason, notice.message, batch.at)
        except Exception as error:
            log.warning("could not post %s on %s %s/%s: %s", notice.reason, batch.involved["kind"],
                        batch.involved["namespace"], batch.involved["name"], error,
                        exc_info=not isinstance(error, RefusedError | TransientError))

    def waiting(self) -> int:
        """Batches not taken by a poster yet."""
        return self._line.qsize()

    async def drain(self) -> None:
        """Return once every batch queued so far is posted (or given up)."""
        await self._line.join()
