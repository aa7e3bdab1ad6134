"""`python -m modelplane.monitor` end to end on files laid out as the Job sees them: captured batches under
payloads/, the churn example's v2 training data under data/, params.json; report.json out, or a one-line reason and
exit status 2."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelplane.capture.record import PayloadRecord
from modelplane.monitor.__main__ import main
from modelplane.monitor.features import Row
from modelplane.monitor.payloads import parse_time
from modelplane.monitor.report import REPORT, DriftReport
from tests.support.traffic import END, START, llm_records, reference_jsonl, rfc3339, tabular_records, write_batches

CHURN_V2 = Path(__file__).resolve().parents[3] / "examples/loop/data/v2/train.csv"
FIRST_DAY = START - timedelta(days=7)  # version 3 went live a week before the window


@dataclass(frozen=True)
class Content:
    root: Path
    env: dict[str, str]

    def report(self) -> DriftReport:
        return DriftReport.model_validate_json((self.root / "artifacts" / REPORT).read_text())


def customers_like_v2(rng: np.random.Generator, n: int, more_calls: float = 0) -> list[Row]:
    """Rows drawn (with replacement) from v2's training data, as its customers would send them: without a label."""
    with CHURN_V2.open(newline="") as handle:
        rows = [{k: float(v) for k, v in row.items() if k != "label"} for row in csv.DictReader(handle)]
    return [{**rows[i], "support_calls": rows[i]["support_calls"] + more_calls}
            for i in rng.integers(len(rows), size=n).tolist()]


def content(tmp_path: Path, window: list[PayloadRecord], *, reference: str = "train.csv",
            params: dict[str, Any] | None = None, extra: Sequence[PayloadRecord] = ()) -> Content:
    """A content root: the reference (v2's train.csv, or this JSON-lines text), params.json, the records."""
    root = tmp_path / "content"
    (root / "data").mkdir(parents=True)
    if reference == "train.csv":
        shutil.copy(CHURN_V2, root / "data" / "train.csv")
    else:
        (root / "data" / "train.jsonl").write_text(reference)
    (root / "params.json").write_text(json.dumps(params or {}))
    write_batches(root / "payloads", [*window, *extra], per_batch=50)
    env = {"MODELPLANE_CONTENT": str(root), "MODELPLANE_WINDOW_START": rfc3339(START),
           "MODELPLANE_WINDOW_END": rfc3339(END), "MODELPLANE_MODEL_VERSION": "3",
           "MODELPLANE_REFERENCE": "Dataset churn v2" if reference == "train.csv" else "Dataset prompts v1"}
    return Content(root, env)


def since(records: Sequence[PayloadRecord]) -> str:
    """The span of traffic from the first of these records, one window long, as the report states it."""
    first = min(record["time"] for record in records)
    return f"{first[:19]}Z to {rfc3339(parse_time(first) + (END - START))[:19]}Z"


def tabular_content(tmp_path: Path, more_calls: float = 0) -> tuple[Content, str]:
    """300 records of version 3 in the window, its first day's traffic a week before, and what must be ignored:
    version 4 in the window and version 3 between its first day and the window, both with far more support calls;
    and a corrupt batch. Also the span of the version's earliest traffic."""
    rng = np.random.default_rng(11)
    window = tabular_records(rng, customers_like_v2(rng, 300, more_calls))
    first_day = tabular_records(rng, customers_like_v2(rng, 250), start=FIRST_DAY, end=FIRST_DAY + timedelta(days=1))
    between = tabular_records(rng, customers_like_v2(rng, 300, 5), start=START - timedelta(days=2), end=START)
    other_version = tabular_records(rng, customers_like_v2(rng, 300, 5), version=4)
    made = content(tmp_path, window, extra=first_day + between + other_version)
    corrupt = made.root / "payloads" / "version=3" / "date=2026-12-02" / "part-120000-deadbeef.jsonl.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip")
    return made, since(first_day)


def run_main(made: Content, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    return main()


def test_a_shift_is_reported_and_the_same_inputs_give_the_same_bytes(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    made, _ = tabular_content(tmp_path, more_calls=1)
    assert run_main(made, monkeypatch) == 0
    report = made.report()
    assert report.drift and {f.name for f in report.features if f.drift} == {"support_calls"}
    first = (made.root / "artifacts" / REPORT).read_bytes()
    assert run_main(made, monkeypatch) == 0
    assert (made.root / "artifacts" / REPORT).read_bytes() == first


def test_llm_traffic_with_longer_prompts_on_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    reference = reference_jsonl(rng, 400)  # 200 of them measure oov_rate, 100 of those calibrate the outliers
    window = llm_records(rng, 250, prompt_words=55)
    first_day = llm_records(rng, 250, start=FIRST_DAY, end=FIRST_DAY + timedelta(hours=12))
    made = content(tmp_path, window, reference=reference, extra=first_day)
    assert run_main(made, monkeypatch) == 0
    report = made.report()
    drifted = {feature.name for feature in report.features if feature.drift}
    assert {"prompt_chars", "prompt_tokens"} <= drifted
    assert not drifted & {"completion_chars", "completion_tokens", "finish_reason", "latency_ms"}
    assert {feature.name for feature in report.features} == {
        "completion_chars", "completion_tokens", "finish_reason", "latency_ms", "oov_rate", "prompt_chars",
        "prompt_tokens"}
    assert report.reference == ("Dataset prompts v1; completion_tokens, finish_reason, latency_ms, prompt_tokens: "
                                f"version 3's earliest traffic, {since(first_day)}")
    assert report.outliers is not None and report.reference_samples == 400


def test_too_few_records_in_the_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(13)
    made = content(tmp_path, tabular_records(rng, customers_like_v2(rng, 120, more_calls=3)),
                   params={"minSamples": 150})
    assert run_main(made, monkeypatch) == 0
    report = made.report()
    assert not report.enough and not report.drift and report.samples == 120
    assert report.message == "too few samples: 120 records in the window, minSamples is 150; no verdict"


@pytest.mark.parametrize(("change", "reason"), [
    ({"params": '{"significance": 2, "outliers": {"method": "lof"}}'},
     "params.json: significance: Input should be less than 0.5; outliers.method: Input should be 'isolationForest' "
     "or 'robustZ'"),
    ({"params": "{not json"}, "params.json: params: Invalid JSON"),
    ({"MODELPLANE_WINDOW_END": "yesterday"}, "MODELPLANE_WINDOW_END must be an RFC 3339 time with its offset, not "
                                             "'yesterday'"),
    ({"MODELPLANE_WINDOW_START": "2026-12-02T00:00:00"}, "MODELPLANE_WINDOW_START must be an RFC 3339 time"),
    ({"MODELPLANE_WINDOW_START": "2026-12-04T00:00:00Z"}, "the window ends (2026-12-03T00:00:00Z) before it starts"),
    ({"MODELPLANE_MODEL_VERSION": "v3"}, "MODELPLANE_MODEL_VERSION must be a version number or empty, not 'v3'"),
    ({"data": "a,b\n1,2\n3\n"}, "/data: train.csv:3: 1 values for 2 columns"),
    ({"data": None}, "data is missing: the monitor needs the reference Dataset version mounted there"),
])
def test_malformed_inputs_exit_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], change: dict[str, str | None],
                                               reason: str) -> None:
    rng = np.random.default_rng(14)
    made = content(tmp_path, tabular_records(rng, customers_like_v2(rng, 10)))
    env = {**made.env, **{k: v for k, v in change.items() if k.startswith("MODELPLANE_") and v is not None}}
    if "params" in change:
        (made.root / "params.json").write_text(str(change["params"]))
    if "data" in change:
        shutil.rmtree(made.root / "data")
        if change["data"] is not None:
            (made.root / "data").mkdir()
            (made.root / "data" / "train.csv").write_text(change["data"])
    assert run_main(Content(made.root, env), monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("monitor: ")
    assert reason in err, err
    assert not (made.root / "artifacts").exists()


def test_the_program_reports_unshifted_traffic_on_files(tmp_path: Path) -> None:
    made, earliest = tabular_content(tmp_path)
    done = subprocess.run([sys.executable, "-m", "modelplane.monitor"], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ.get("PATH", ""), **made.env})
    assert done.returncode == 0, done.stderr
    report = made.report()
    assert (report.samples, report.reference_samples, report.model_version, report.enough) == (300, 240, 3, True)
    assert (report.window.start, report.window.end) == ("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z")
    assert not report.drift, report.message
    assert [feature.name for feature in report.features] == ["annual_contract", "latency_ms", "monthly_fee",
                                                             "support_calls", "tenure_years"]  # no label
    assert report.reference == f"Dataset churn v2; latency_ms: version 3's earliest traffic, {earliest}"
    assert report.outliers is not None and not report.outliers.flagged
    assert report.message.endswith("; 1 corrupt batch skipped")
    assert "skipped a corrupt batch: version=3/date=2026-12-02/part-120000-deadbeef.jsonl.gz" in done.stderr
    assert done.stdout.startswith(f"monitor: {report.message}; wrote ")
    assert json.loads((made.root / "artifacts" / REPORT).read_text())["referenceSamples"] == 240  # camelCase
