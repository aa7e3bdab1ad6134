"""`python -m modelplane.monitor`: one monitor run, under the container contract of every Job (examples/loop/README.md).

Under the root $MODELPLANE_CONTENT (default /content):
    payloads/      the ModelServer's captured traffic, every version and date (read-only)
    data/          the reference Dataset version's files: .csv and .jsonl, in any folder (read-only)
    params.json    MonitorSettings, camelCase (absent: the defaults)
    artifacts/     where the run writes report.json, a DriftReport
Environment: MODELPLANE_WINDOW_START and MODELPLANE_WINDOW_END (RFC 3339) bound the window, the end excluded;
MODELPLANE_MODEL_VERSION is the served version whose traffic is read (empty: every version's); MODELPLANE_REFERENCE
says what data/ is, for the report ("Dataset churn v2").

Features only the traffic has (latency_ms, finish_reason, token counts) are compared with the version's earliest
traffic: the first window-long span of it, ending at the latest where the window starts. The first hours after a
rollout are the nearest to a known-good baseline a version has; the span just before the window would follow a
slow drift along and never see it. A version younger than that, or with fewer than minSamples records in it, leaves
those features out, and the message says so.

The same inputs give the same report, byte for byte (sorted files, a seeded forest). Exit status 2 means missing or
malformed inputs, with the reason on stderr in one line; a corrupt batch is not one (it is skipped and counted).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from modelplane.api.monitoring import MonitorSettings
from modelplane.builders.workload import PARAMS_KEY
from modelplane.monitor.detect import Sample, detect
from modelplane.monitor.features import Reference, ReferenceError, Row, parse_reference, traffic_rows
from modelplane.monitor.payloads import batches, first_time, parse_time
from modelplane.monitor.report import REPORT, DriftReport, Window

REFERENCE_SUFFIXES = (".csv", ".jsonl")


class InputError(Exception):
    """Inputs missing or malformed: the run fails with this message."""


def rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_settings(path: Path) -> MonitorSettings:
    if not path.is_file():
        return MonitorSettings()
    try:
        return MonitorSettings.model_validate_json(path.read_bytes())
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in error.errors())
        raise InputError(f"{path}: {problems}") from None


def read_window(env: Mapping[str, str]) -> tuple[datetime, datetime]:
    bounds = []
    for key in ("MODELPLANE_WINDOW_START", "MODELPLANE_WINDOW_END"):
        try:
            bounds.append(parse_time(env.get(key, "")))
        except ValueError:
            raise InputError(f"{key} must be an RFC 3339 time with its offset, not {env.get(key, '')!r}") from None
    start, end = bounds
    if end <= start:
        raise InputError(f"the window ends ({rfc3339(end)}) before it starts ({rfc3339(start)})")
    return start, end


def read_version(env: Mapping[str, str]) -> int | None:
    text = env.get("MODELPLANE_MODEL_VERSION", "")
    if text and not (text.isascii() and text.isdigit()):
        raise InputError(f"MODELPLANE_MODEL_VERSION must be a version number or empty, not {text!r}")
    return int(text) if text else None


def read_reference(data: Path) -> Reference:
    """The reference from every .csv and .jsonl file under data/, in path order."""
    if not data.is_dir():
        raise InputError(f"{data} is missing: the monitor needs the reference Dataset version mounted there")
    paths = sorted(path for path in data.rglob("*") if path.is_file() and path.suffix in REFERENCE_SUFFIXES)
    try:
        # utf-8-sig: a spreadsheet's CSV starts with a byte-order mark, which would otherwise join the first column
        return parse_reference([(str(path.relative_to(data)), path.read_text(encoding="utf-8-sig")) for path in paths])
    except (ReferenceError, UnicodeDecodeError) as error:
        raise InputError(f"reference data in {data}: {error}") from None


def read_traffic(payloads: Path, version: int | None, start: datetime, end: datetime,
                 vocabulary: frozenset[str]) -> tuple[list[Row], int, list[Path]]:
    """(feature rows, records, corrupt batches skipped) of the traffic in [start, end)."""
    rows: list[Row] = []
    records = 0
    corrupt = []
    for batch in batches(payloads, version, start, end):
        if batch.records is None:
            corrupt.append(batch.path)
            continue
        records += len(batch.records)
        for record in batch.records:
            rows.extend(traffic_rows(record, vocabulary))
    return rows, records, corrupt


def run(root: Path, env: Mapping[str, str]) -> DriftReport:
    settings = read_settings(root / PARAMS_KEY)
    start, end = read_window(env)
    version = read_version(env)
    reference = read_reference(root / "data")
    payloads = root / "payloads"
    rows, records, corrupt = read_traffic(payloads, version, start, end, reference.vocabulary)
    baseline = None
    first = first_time(payloads, version) if records >= settings.min_samples else None
    if first is not None and first < start:
        until = min(first + (end - start), start)
        baseline_rows, baseline_records, also_corrupt = read_traffic(payloads, version, first, until,
                                                                     reference.vocabulary)
        corrupt += also_corrupt
        whose = f"version {version}'s" if version is not None else "the"
        baseline = Sample(baseline_rows, baseline_records,
                          f"{whose} earliest traffic, {rfc3339(first)} to {rfc3339(until)}")
    for path in corrupt:
        print(f"monitor: skipped a corrupt batch: {path.relative_to(payloads)}", file=sys.stderr)
    notes = [f"{len(corrupt)} corrupt batch{'es' if len(corrupt) > 1 else ''} skipped"] if corrupt else []
    return detect(Sample(rows, records),
                  Sample(reference.rows, len(reference.rows), env.get("MODELPLANE_REFERENCE") or "the reference data"),
                  baseline, settings, span=Window(start=rfc3339(start), end=rfc3339(end)), model_version=version,
                  notes=notes)


def main() -> int:
    root = Path(os.environ.get("MODELPLANE_CONTENT") or "/content")
    try:
        report = run(root, os.environ)
    except InputError as error:
        print(f"monitor: {error}", file=sys.stderr)
        return 2
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / REPORT).write_text(report.model_dump_json(by_alias=True))
    print(f"monitor: {report.message}; wrote {artifacts / REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
