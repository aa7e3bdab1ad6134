"""Feature rows from captured records (LLM and tabular) and from reference files (CSV and JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelplane.monitor.features import ReferenceError, oov_rate, parse_reference, traffic_rows
from tests.support.traffic import START, record

CHURN_V2 = Path(__file__).resolve().parents[3] / "examples/loop/data/v2/train.csv"
VOCABULARY = frozenset({"who", "wrote", "hamlet"})


def test_a_chat_record() -> None:
    request = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": [{"type": "text", "text": "Who wrote Hamlet?"},
                                                                       {"type": "image_url", "image_url": {}}]}]}
    response = {"choices": [{"message": {"role": "assistant", "content": "Shakespeare."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
    [row] = traffic_rows(record(START, request, response, latency=830.5), VOCABULARY)
    prompt = "Be brief.\nWho wrote Hamlet?"
    assert row == {"prompt_chars": len(prompt), "oov_rate": 2 / 5, "completion_chars": len("Shakespeare."),
                   "finish_reason": "stop", "prompt_tokens": 12, "completion_tokens": 3, "latency_ms": 830.5}


def test_a_completions_record_with_a_list_of_prompts() -> None:
    request = {"prompt": ["Who wrote", "Hamlet?"]}
    response = {"choices": [{"text": " Shakespeare", "finish_reason": "length"}]}
    [row] = traffic_rows(record(START, request, response), VOCABULARY)
    assert row == {"prompt_chars": len("Who wrote\nHamlet?"), "oov_rate": 0.0, "completion_chars": 12,
                   "finish_reason": "length", "latency_ms": 50.0}


def test_a_streamed_record_reads_the_stream_summary() -> None:
    request = {"messages": [{"role": "user", "content": "who"}], "stream": True}
    summary = {"text": "Shakespeare wrote it.", "finishReason": "stop", "usage": {"promptTokens": 4,
                                                                                 "completionTokens": 5}}
    [row] = traffic_rows(record(START, request, summary, stream=True), VOCABULARY)
    assert row == {"prompt_chars": 3, "oov_rate": 0.0, "completion_chars": 21, "finish_reason": "stop",
                   "prompt_tokens": 4, "completion_tokens": 5, "latency_ms": 50.0}


@pytest.mark.parametrize("status", [400, 502])
def test_a_failed_request_gives_only_its_request_features(status: int) -> None:
    error = {"error": {"message": "bad"}, "choices": [{"text": "not an answer", "finish_reason": "error"}]}
    [row] = traffic_rows(record(START, {"prompt": "who wrote"}, error, status=status), VOCABULARY)
    assert row == {"prompt_chars": 9, "oov_rate": 0.0}


def test_without_a_vocabulary_there_is_no_oov_rate_and_a_wordless_prompt_has_none() -> None:
    [row] = traffic_rows(record(START, {"prompt": "who wrote"}, None), frozenset())
    assert "oov_rate" not in row and row["prompt_chars"] == 9
    assert oov_rate("?!", VOCABULARY) is None
    [tokens] = traffic_rows(record(START, {"prompt": [101, 2040]}, None), VOCABULARY)  # token ids: no text
    assert tokens == {"latency_ms": 50.0}


def test_tabular_instances_are_rows_with_one_latency_per_record() -> None:
    request = {"instances": [{"tenure_years": 2, "plan": "gold", "annual_contract": True, "notes": None},
                             {"tenure_years": 3.5, "plan": "basic", "tags": ["a"], "extra": {"x": 1}}, [1, 2]]}
    rows = traffic_rows(record(START, request, {"predictions": [1, 0]}, latency=12.0), VOCABULARY)
    assert rows == [{"tenure_years": 2.0, "plan": "gold", "annual_contract": "true", "latency_ms": 12.0},
                    {"tenure_years": 3.5, "plan": "basic"}]


def test_a_record_without_a_body_has_its_latency() -> None:
    truncated: dict[str, Any] = {**record(START, None, None, latency=7.0), "truncated": True}
    assert traffic_rows(truncated, VOCABULARY) == [{"latency_ms": 7.0}]


def test_the_churn_csv_is_numeric_rows() -> None:
    reference = parse_reference([("train.csv", CHURN_V2.read_text())])
    assert len(reference.rows) == 240 and reference.vocabulary == frozenset()
    assert reference.rows[0] == {"tenure_years": 3.54, "monthly_fee": 0.72, "support_calls": 2.0,
                                 "annual_contract": 0.0, "label": 0.0}


def test_csv_cells_empty_or_text() -> None:
    reference = parse_reference([("t.csv", "a,b,c\n1,,x\nnan,2,\n")])
    assert reference.rows == [{"a": 1.0, "c": "x"}, {"b": 2.0}]


def test_jsonl_examples_hold_out_every_other_one_for_oov() -> None:
    """The vocabulary comes from the even examples; the odd ones' prompts are measured against it."""
    lines = [{"prompt": "alpha beta", "completion": "gamma"},
             {"messages": [{"role": "user", "content": "alpha delta"}, {"role": "assistant", "content": "beta!"}]},
             {"messages": [{"role": "user", "content": "epsilon"}]},
             {"prompt": "gamma epsilon zeta eta", "completion": "theta"},
             {"tenure_years": 4, "plan": "gold"}]
    reference = parse_reference([("train.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")])
    assert reference.vocabulary == {"alpha", "beta", "gamma", "epsilon"}
    assert reference.rows == [{"prompt_chars": 10, "completion_chars": 5},
                              {"prompt_chars": 11, "completion_chars": 5, "oov_rate": 0.5},
                              {"prompt_chars": 7},
                              {"prompt_chars": 22, "completion_chars": 5, "oov_rate": 0.5},
                              {"tenure_years": 4.0, "plan": "gold"}]


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("t.csv", "", "t.csv: no header row"),
    ("t.csv", "a,b\n1,2\n3\n", "t.csv:3: 1 values for 2 columns"),
    ("t.jsonl", '{"prompt": "a"}\n{"prompt": \n', "t.jsonl:2: not JSON"),
    ("t.jsonl", '["a"]\n', "t.jsonl:1: not a JSON object"),
])
def test_malformed_reference_files_are_named(name: str, text: str, problem: str) -> None:
    with pytest.raises(ReferenceError, match=problem):
        parse_reference([(name, text)])
