"""Where records go: a queue bounded in bytes, written in batches of gzip JSON lines by one background task.

Serving must never wait for the bucket. `offer` only appends to the queue (or drops the record and counts it when
the queue is full); the writer takes a batch every `flushSeconds`, or as soon as `batchRecords` are waiting,
compresses and writes it in a thread, and only then frees its bytes. A write that hangs (a stalled FUSE mount)
holds one batch; the queue fills, and new records are dropped and counted while requests go on being served. A
write that fails drops its batch, counts its records and goes on.

Each batch is one file, written once and closed: over GCS FUSE a file is uploaded when it is closed, so a reader
of the bucket never sees half of one (the monitor skips a file it cannot read, should a local disk leave one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from modelplane.capture.record import PayloadRecord, batch_path

log = logging.getLogger("modelplane.capture")


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(data)


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter("modelplane_payload_records_total", "Records written to the bucket.",
                               registry=registry)
        self.dropped = Counter("modelplane_payload_dropped_total", "Records dropped, by why.", ["reason"],
                               registry=registry)
        self.queued = Gauge("modelplane_payload_queue_bytes", "Bytes of records waiting for the bucket.",
                            registry=registry)
        self.batches = Counter("modelplane_payload_batches_total", "Batch files written.", registry=registry)


class Sink:
    def __init__(self, directory: Path, model_version: int | None, *, batch_records: int, flush_seconds: float,
                 queue_bytes: int, metrics: SinkMetrics,
                 write: Callable[[Path, bytes], None] = write_file) -> None:
        self.directory, self.model_version = directory, model_version
        self.batch_records, self.flush_seconds, self.queue_bytes = batch_records, flush_seconds, queue_bytes
        self.metrics, self.write = metrics, write
        self.queued = 0  # bytes of the records waiting and of the batch being written
        self._pending: list[tuple[str, bytes]] = []  # (record time, JSON line)
        self._wake = asyncio.Event()
        self._errors_seen: set[str] = set()

    def offer(self, record: PayloadRecord) -> bool:
        """Queue a record; False (and counted) when the queue is full. Never blocks."""
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if self.queued + len(line) > self.queue_bytes:
            self.metrics.dropped.labels("queue_full").inc()
            return False
        self._pending.append((record["time"], line))
        self.queued += len(line)
        self.metrics.queued.set(self.queued)
        if len(self._pending) >= self.batch_records:
            self._wake.set()
        return True

    async def run(self) -> None:
        """Write batches until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            while self._pending:
                await self._write_batch()
                if len(self._pending) < self.batch_records:
                    break

    async def flush(self) -> None:
        """Write everything queued (at shutdown)."""
        while self._pending:
            await self._write_batch()

    async def _write_batch(self) -> None:
        batch, self._pending = self._pending[:self.batch_records], self._pending[self.batch_records:]
        size = sum(len(line) for _, line in batch)
        first = datetime.fromisoformat(batch[0][0])
        name = batch_path(self.model_version, first.strftime("%Y-%m-%d"),
                          datetime.now(UTC).strftime("%H%M%S"), secrets.token_hex(4))
        try:
            await asyncio.to_thread(self._compress_and_write, self.directory / name, [line for _, line in batch])
        except OSError as error:
            self.metrics.dropped.labels("write_failed").inc(len(batch))
            kind = type(error).__name__ + str(error.errno)
            if kind not in self._errors_seen:  # once per kind of error, not once per batch
                self._errors_seen.add(kind)
                log.warning("writing payload batches fails (records are dropped and counted): %s", error)
        else:
            self.metrics.records.inc(len(batch))
            self.metrics.batches.inc()
        finally:
            self.queued -= size
            self.metrics.queued.set(self.queued)

    def _compress_and_write(self, path: Path, lines: list[bytes]) -> None:
        self.write(path, gzip.compress(b"".join(lines), compresslevel=6, mtime=0))
