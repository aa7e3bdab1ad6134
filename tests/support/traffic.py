"""Synthetic traffic for the monitor's tests, from seeded numpy generators: churn-like tabular requests drawn as
examples/loop/data/generate.py draws customers, and OpenAI-style LLM requests over a Zipf vocabulary, each as the
capture proxy records them, and gzip JSON-lines batches in its layout."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.capture.record import PayloadRecord, batch_path
from modelplane.monitor.features import Row, traffic_rows

START = datetime(2026, 12, 2, tzinfo=UTC)  # the window under test: one day
END = START + timedelta(days=1)
WORDS = [f"w{i}" for i in range(3000)]
_ZIPF = 1 / np.arange(1, len(WORDS) + 1) ** 1.1
ZIPF = _ZIPF / _ZIPF.sum()


def rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def times(rng: np.random.Generator, n: int, start: datetime = START, end: datetime = END) -> list[datetime]:
    seconds = np.sort(rng.uniform(0, (end - start).total_seconds(), n))
    return [start + timedelta(seconds=float(s)) for s in seconds]


def customers(rng: np.random.Generator, n: int, calls: float = 1.5) -> list[Row]:
    """Rows as the churn generator draws them (no label: traffic has none)."""
    columns = {"tenure_years": np.round(rng.uniform(0, 6, n), 2), "monthly_fee": np.round(rng.uniform(0.2, 1.2, n), 2),
               "support_calls": np.minimum(rng.poisson(calls, n), 8).astype(float),
               "annual_contract": (rng.random(n) < 0.5).astype(float)}
    return [dict(zip(columns, values, strict=True)) for values in zip(*(c.tolist() for c in columns.values()),
                                                                      strict=True)]


def record(time: datetime, request: Any, response: Any, *, version: int | None = 3, status: int = 200,
           latency: float = 50.0, stream: bool = False, path: str = "/v1/predict") -> PayloadRecord:
    return {"time": rfc3339(time), "id": f"req-{time.timestamp():.3f}", "server": "clf", "modelVersion": version,
            "method": "POST", "path": path, "status": status, "latencyMs": latency, "stream": stream,
            "request": request, "response": response, "truncated": False}


def tabular_records(rng: np.random.Generator, instances: Sequence[Row], *, version: int | None = 3,
                    start: datetime = START, end: datetime = END) -> list[PayloadRecord]:
    """One record per instance, with lognormal latencies around 50 ms."""
    latencies = np.round(rng.lognormal(np.log(50), 0.3, len(instances)), 1).tolist()
    return [record(time, {"instances": [instance]}, {"predictions": [0]}, version=version, latency=latency)
            for time, instance, latency in zip(times(rng, len(instances), start, end), instances, latencies,
                                               strict=True)]


def texts(rng: np.random.Generator, lengths: Sequence[int]) -> list[str]:
    """Texts of these many words each, drawn from the Zipf vocabulary at once and cut from one joined string (a
    draw and a join per text would be most of the tests' time)."""
    drawn = [WORDS[i] for i in rng.choice(len(WORDS), size=int(sum(lengths)), p=ZIPF).tolist()]
    joined = " ".join(drawn)
    offsets = np.concatenate([[0], np.cumsum([len(word) + 1 for word in drawn])]).tolist()  # where each word starts
    ends = np.cumsum(lengths).tolist()
    return [joined[offsets[end - length]:offsets[end] - 1] for end, length in zip(ends, lengths, strict=True)]


def examples(rng: np.random.Generator, n: int, prompt_words: float = 25) -> list[tuple[str, str]]:
    """(prompt, completion) pairs: prompts of 5 + Poisson(prompt_words) words, completions of 1 + Poisson(20)."""
    prompts = texts(rng, (5 + rng.poisson(prompt_words, n)).tolist())
    return list(zip(prompts, texts(rng, (1 + rng.poisson(20, n)).tolist()), strict=True))


def llm_records(rng: np.random.Generator, n: int, *, prompt_words: float = 25, length_share: float = 0.1,
                version: int | None = 3, start: datetime = START, end: datetime = END) -> list[PayloadRecord]:
    """Chat, completions and streamed chat requests in turn, answered with `stop` or (a share) `length`."""
    records = []
    for i, (time, (prompt, completion)) in enumerate(zip(times(rng, n, start, end),
                                                         examples(rng, n, prompt_words), strict=True)):
        reason = "length" if rng.random() < length_share else "stop"
        tokens = {"prompt": round(1.3 * len(prompt.split())), "completion": round(1.3 * len(completion.split()))}
        latency = round(float(100 + 20 * tokens["completion"] * rng.lognormal(0, 0.2)), 1)
        kind = i % 3
        if kind == 0:
            request: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
            response: dict[str, Any] = {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": completion},
                             "finish_reason": reason}],
                "usage": {"prompt_tokens": tokens["prompt"], "completion_tokens": tokens["completion"]}}
        elif kind == 1:
            request = {"model": "m", "prompt": prompt, "max_tokens": 64}
            response = {"choices": [{"index": 0, "text": completion, "finish_reason": reason}],
                        "usage": {"prompt_tokens": tokens["prompt"], "completion_tokens": tokens["completion"]}}
        else:
            request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": prompt}]}
            response = {"text": completion, "finishReason": reason,
                        "usage": {"promptTokens": tokens["prompt"], "completionTokens": tokens["completion"]}}
        records.append(record(time, request, response, version=version, latency=latency, stream=kind == 2,
                              path="/v1/completions" if kind == 1 else "/v1/chat/completions"))
    return records


def reference_jsonl(rng: np.random.Generator, n: int) -> str:
    """LLM reference examples, half `prompt`/`completion`, half chat `messages` with the answer last."""
    lines = []
    for i, (prompt, completion) in enumerate(examples(rng, n)):
        lines.append(json.dumps({"prompt": prompt, "completion": completion} if i % 2 else
                                {"messages": [{"role": "user", "content": prompt},
                                              {"role": "assistant", "content": completion}]}))
    return "\n".join(lines) + "\n"


def write_batches(root: Path, records: Sequence[PayloadRecord], per_batch: int = 100) -> list[Path]:
    """The records as the capture proxy writes them: per version and date, batches of `per_batch`, gzip JSON
    lines at `version=<v>/date=<d>/part-<HHMMSS>-<8 hex>.jsonl.gz`."""
    groups: dict[tuple[int | None, str], list[PayloadRecord]] = {}
    for rec in records:
        groups.setdefault((rec["modelVersion"], rec["time"][:10]), []).append(rec)
    paths: list[Path] = []
    for (version, date), group in sorted(groups.items(), key=str):
        for at in range(0, len(group), per_batch):
            batch = group[at:at + per_batch]
            path = root / batch_path(version, date, batch[0]["time"][11:19].replace(":", ""), f"{len(paths):08x}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress("".join(json.dumps(rec) + "\n" for rec in batch).encode()))
            paths.append(path)
    return paths


def llm_rows(records: Sequence[PayloadRecord], vocabulary: frozenset[str]) -> list[Row]:
    return [row for rec in records for row in traffic_rows(rec, vocabulary)]
