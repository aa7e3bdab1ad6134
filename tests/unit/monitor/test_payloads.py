"""Reading a time span of captured traffic from the batch layout: only the partitions that can hold it, only its
records, corrupt batches skipped whole."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import numpy as np

from modelplane.capture.record import batch_path
from modelplane.monitor.payloads import Batch, batches, first_time
from tests.support.traffic import END, START, customers, rfc3339, tabular_records, write_batches


def times_of(found: list[Batch]) -> list[str]:
    return sorted(record["time"] for batch in found for record in batch.records or [])


def test_only_the_window_and_the_version_are_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inside = tabular_records(rng, customers(rng, 50))
    before = tabular_records(rng, customers(rng, 20), start=START - timedelta(days=3), end=START - timedelta(days=2))
    edge = tabular_records(rng, customers(rng, 5), start=END, end=END + timedelta(minutes=30))  # the end is excluded
    other = tabular_records(rng, customers(rng, 30), version=4)
    write_batches(tmp_path, inside + before + edge + other, per_batch=10)
    found = list(batches(tmp_path, 3, START, END))
    assert times_of(found) == sorted(record["time"] for record in inside)
    assert {batch.path.parent.name for batch in found} == {"date=2026-12-02", "date=2026-12-03"}  # not 11-29
    assert {batch.path.parent.parent.name for batch in found} == {"version=3"}
    every = list(batches(tmp_path, None, START, END))
    assert times_of(every) == sorted(record["time"] for record in inside + other)


def test_a_record_in_the_next_days_partition_is_found(tmp_path: Path) -> None:
    """A batch that straddles midnight is in one day's partition, with records of the other day."""
    rng = np.random.default_rng(1)
    late = tabular_records(rng, customers(rng, 3), start=END - timedelta(minutes=20), end=END - timedelta(minutes=1))
    path = tmp_path / batch_path(3, "2026-12-03", "000500", "0000abcd")
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress("".join(f'{{"time": "{r["time"]}", "x": 1}}\n' for r in late).encode()))
    assert times_of(list(batches(tmp_path, 3, START, END))) == sorted(r["time"] for r in late)
    assert list(batches(tmp_path, 3, START - timedelta(days=2), START - timedelta(days=1))) == []


def test_corrupt_batches_are_skipped_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    [good, *_] = write_batches(tmp_path, tabular_records(rng, customers(rng, 40)), per_batch=10)
    whole = gzip.compress(b'{"time": "2026-12-02T10:00:00.000Z"}\n')
    corrupt = {"part-100000-00000001.jsonl.gz": b"not gzip at all",
               "part-100000-00000002.jsonl.gz": whole[:len(whole) // 2],  # cut short
               "part-100000-00000003.jsonl.gz": gzip.compress(b'{"time": "2026-12-02T10:00:00.000Z"}\n{"ti'),
               "part-100000-00000004.jsonl.gz": gzip.compress(b'{"time": "2026-12-02T10:00:00"}\n'),  # no offset
               "part-100000-00000005.jsonl.gz": gzip.compress(b'{"id": "no time"}\n'),
               "part-100000-00000006.jsonl.gz": gzip.compress(b'["a list"]\n')}
    for name, content in corrupt.items():
        (good.parent / name).write_bytes(content)
    found = list(batches(tmp_path, 3, START, END))
    assert sorted(batch.path.name for batch in found if batch.records is None) == sorted(corrupt)
    assert sum(len(batch.records or []) for batch in found) == 40


def test_first_time_is_the_versions_earliest_record(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    earliest = START - timedelta(days=5, hours=-7)
    early = tabular_records(rng, customers(rng, 10), start=earliest, end=earliest + timedelta(hours=1))
    older = tabular_records(rng, customers(rng, 10), version=2, start=earliest - timedelta(days=9),
                            end=earliest - timedelta(days=8))
    write_batches(tmp_path, early + older + tabular_records(rng, customers(rng, 10)), per_batch=5)
    first = first_time(tmp_path, 3)
    assert first is not None and rfc3339(first) == min(record["time"] for record in early)
    every = first_time(tmp_path, None)
    assert every is not None and rfc3339(every) == min(record["time"] for record in older)
    assert first_time(tmp_path, 4) is None and first_time(tmp_path / "missing", None) is None
    unreadable = tmp_path / batch_path(3, "2026-11-01", "000000", "00000000")
    unreadable.parent.mkdir(parents=True)
    unreadable.write_bytes(b"corrupt")  # an earlier partition with nothing readable does not count
    assert first_time(tmp_path, 3) == first
