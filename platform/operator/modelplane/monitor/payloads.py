"""Reading captured traffic (the layout of modelplane.capture.record): the records of a model version, or of every
version, that arrived in a time span.

Only the date partitions that can hold the span's records are read: a batch gathers records for at most
flushSeconds (an hour at most) before it is written, so a record can sit in the partition of the day before or after
its own when its batch straddles midnight; the partitions read are those of the span widened by that hour.

A batch is used whole or not at all: a file that is not gzip, is cut short, or holds a line that is not a JSON
object with an RFC 3339 `time` is skipped and reported, rather than failing the run or counting half of it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from modelplane.capture.record import BATCH_SUFFIX

BATCH_SPAN = timedelta(hours=1)  # the longest a batch gathers records: PayloadLogging.flushSeconds is at most 3600


@dataclass(frozen=True)
class Batch:
    path: Path
    records: list[dict[str, Any]] | None  # those in the span, in the file's order; None: corrupt, skipped


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with its offset ("2026-12-03T07:01:02.345Z"); ValueError for one without."""
    time = datetime.fromisoformat(text)
    if time.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return time


def _partitions(root: Path, version: int | None) -> list[tuple[date, Path]]:
    """(day, directory) of every date partition of the version (all versions: None), by day, then path."""
    versions = [root / f"version={version}"] if version is not None else sorted(root.glob("version=*"))
    found = []
    for version_dir in versions:
        for day_dir in sorted(version_dir.glob("date=*")):
            try:
                found.append((date.fromisoformat(day_dir.name.removeprefix("date=")), day_dir))
            except ValueError:
                continue  # not a partition this layout writes
    return sorted(found)


def _read(path: Path) -> list[tuple[datetime, dict[str, Any]]] | None:
    """A batch's records with their times, or None when any of it cannot be read."""
    try:
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        return [(parse_time(record["time"]), record) for record in records]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None


def batches(root: Path, version: int | None, start: datetime, end: datetime) -> Iterator[Batch]:
    """Every batch in the partitions that can hold records of [start, end), with only those records; one at a time,
    so that a long window's raw bodies are never all in memory."""
    first, last = ((start - BATCH_SPAN).astimezone(UTC).date(), (end + BATCH_SPAN).astimezone(UTC).date())
    for day, day_dir in _partitions(root, version):
        if first <= day <= last:
            for path in sorted(day_dir.glob(f"*{BATCH_SUFFIX}")):
                read = _read(path)
                yield Batch(path, None if read is None else [record for time, record in read if start <= time < end])


def first_time(root: Path, version: int | None) -> datetime | None:
    """When the version's (every version's: None) first recorded request arrived: the earliest time in the earliest
    date partition that has a readable record; None without any."""
    partitions = _partitions(root, version)
    for day in sorted({day for day, _ in partitions}):
        times = [time for at, day_dir in partitions if at == day for path in sorted(day_dir.glob(f"*{BATCH_SUFFIX}"))
                 for time, _ in _read(path) or []]
        if times:
            return min(times)
    return None
