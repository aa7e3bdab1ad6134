"""Where records go: a queue bounded in bytes, written in batches of gzip JSON lines by one background task.

Serving must never wait for the bucket. `offer` only appends to the queue (or drops the record and counts it when
the queue is full); the writer takes a batch every `flushSeconds`, or as soon as `batchRecords` are waiting,
compresses and writes it in a thread, and only then frees its bytes. A write that hangs (a stalled FUSE mount)
holds one batch; the queue fills, and new records are dropped and counted while requests go on being served. A
write that fails drops its batch, counts its records and goes on.

Each batch is one file, written under a temporary name beside it and renamed once closed: over GCS FUSE a file is
uploaded when it is closed, so a reader of the bucket never sees half of one, and the temporary name (a dot file,
without the batch suffix) is one the monitor does not read.

A batch goes to the date partition of its first record: it gathers records for at most flushSeconds, so one that
straddles midnight holds a few records of the next day (the monitor widens the partitions it reads for that).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from modelplane.capture.record import PayloadRecord, batch_path

log = logging.getLogger("modelplane.capture")

QUEUE_FULL, WRITE_FAILED = "queue_full", "write_failed"


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: to a temporary name in the same directory, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


async def in_thread(function: Callable[[], None]) -> None:
    """Run `function` in a thread of its own, a daemon: a write stuck on a hung mount then holds no executor thread
    that the interpreter would wait for at exit, so shutdown keeps its deadline."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():  # the awaiting task was cancelled (shutdown's deadline passed)
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            function()
        except BaseException as raised:  # handed to the awaiting task, which decides
            error = raised
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for this write any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name="capture-writer", daemon=True).start()
    await done


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter("modelplane_payload_records_total", "Records written to the bucket.",
                               registry=registry)
        self.dropped = Counter("modelplane_payload_dropped_total", "Records dropped, by why.", ["reason"],
                               registry=registry)
        for reason in (QUEUE_FULL, WRITE_FAILED):  # exported at 0, so an alert's rate() has a series from the start
            self.dropped.labels(reason)
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
        self._stopping = False
        self._errors_seen: set[str] = set()

    @property
    def pending(self) -> int:
        """Records queued and not yet handed to a write."""
        return len(self._pending)

    def offer(self, record: PayloadRecord) -> bool:
        """Queue a record; False (and counted) when the queue is full. Never blocks."""
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if self.queued + len(line) > self.queue_bytes:
            self.metrics.dropped.labels(QUEUE_FULL).inc()
            return False
        self._pending.append((record["time"], line))
        self.queued += len(line)
        self.metrics.queued.set(self.queued)
        if len(self._pending) >= self.batch_records:
            self._wake.set()
        return True

    async def run(self) -> None:
        """Write batches: a full one as soon as it is queued, whatever is queued every flushSeconds; after `stop`,
        everything left, then return (the caller bounds that with its shutdown deadline)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            while self._pending:
                await self._write_batch()
                if len(self._pending) < self.batch_records and not self._stopping:
                    break  # a partial batch waits for the next tick
            if self._stopping:
                return

    def stop(self) -> None:
        """Have `run` write what is queued and return (at shutdown, once no request can add a record)."""
        self._stopping = True
        self._wake.set()

    async def _write_batch(self) -> None:
        batch, self._pending = self._pending[:self.batch_records], self._pending[self.batch_records:]
        size = sum(len(line) for _, line in batch)
        first = datetime.fromisoformat(batch[0][0])
        path = self.directory / batch_path(self.model_version, first.strftime("%Y-%m-%d"),
                                           datetime.now(UTC).strftime("%H%M%S"), secrets.token_hex(4))
        data = b"".join(line for _, line in batch)
        try:
            await in_thread(lambda: self.write(path, gzip.compress(data, compresslevel=6, mtime=0)))
        except OSError as error:
            self.metrics.dropped.labels(WRITE_FAILED).inc(len(batch))
            kind = f"{type(error).__name__} {error.errno}"
            if kind not in self._errors_seen:  # once per kind of error, not once per batch
                self._errors_seen.add(kind)
                log.warning("writing payload batches fails (records are dropped and counted): %s", error)
        else:
            self.metrics.records.inc(len(batch))
            self.metrics.batches.inc()
        finally:
            self.queued -= size
            self.metrics.queued.set(self.queued)
