"""The capture proxy's parts: the SSE reassembler over any chunking, redaction, the settings the operator writes
into the sidecar's environment read back as the proxy reads them, and a batch file written whole or not at all."""

from __future__ import annotations

import json
import resource
import signal
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from fakes.openai import CHUNKS, chunk
from modelplane.api.modelserver import Redaction
from modelplane.capture.config import CaptureConfig
from modelplane.capture.redact import MAX_DEPTH, REDACTED, Redactor
from modelplane.capture.sink import write_file
from modelplane.capture.stream import StreamReassembler

STREAM = b"".join(chunk(p, "stop" if i == len(CHUNKS) - 1 else None) for i, p in enumerate(CHUNKS)) + \
    b'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 5}}\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_any_chunking_gives_the_same_summary(size: int) -> None:
    """Chunk boundaries anywhere: inside `data:`, inside a line end, inside the two bytes of `ö`."""
    stream = StreamReassembler(limit=4096)
    for start in range(0, len(STREAM), size):
        stream.feed(STREAM[start:start + size])
    assert stream.summary() == {"text": "".join(CHUNKS), "finishReason": "stop",
                                "usage": {"promptTokens": 4, "completionTokens": 5}}


def test_crlf_and_cr_line_ends_and_multi_line_data() -> None:
    stream = StreamReassembler(limit=4096)
    stream.feed(b'data: {"choices": [{"text": "a"}]}\r\n\r')
    stream.feed(b'\ndata: {"choices": \rdata: [{"text": "b", "finish_reason": "length"}]}\r\r')
    assert stream.summary() == {"text": "ab", "finishReason": "length"}


def test_text_past_the_limit_is_not_kept() -> None:
    stream = StreamReassembler(limit=8)
    stream.feed(STREAM)
    assert stream.truncated and len(stream.summary()["text"].encode()) <= 8


def test_events_of_other_shapes_are_skipped_and_an_endless_one_is_not_kept() -> None:
    stream = StreamReassembler(limit=4096)
    for event in ['{"choices": {"0": 1}}', '{"choices": ["x"], "usage": {"prompt_tokens": "many"}}', "[" * 5000,
                  '{"choices": [{"delta": "hi", "text": 3, "finish_reason": 1}]}', '{"choices": [{"text": "ok"}]}']:
        stream.feed(f"data: {event}\n\n".encode())
    assert stream.summary() == {"text": "ok", "finishReason": None,
                                "usage": {"promptTokens": 0, "completionTokens": 0}}
    endless = StreamReassembler(limit=4096)
    tracemalloc.start()
    for _ in range(2000):
        endless.feed(b"data: " + b"x" * 100 + b"\n")  # data lines, and never the blank line that ends an event
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert endless.truncated and held < 50_000  # what was fed: 212 KB


def test_fields_and_patterns_are_redacted_in_a_copy() -> None:
    redactor = Redactor(["messages[*].content", "user"], ["email", "card", r"ACME-\d+"])
    request = {"user": "u-1", "messages": [{"role": "user", "content": "x"}], "note": "card 4111 1111 1111 1111, "
               "ticket ACME-42, mail a.b@c.io"}
    assert redactor(request) == {"user": REDACTED, "messages": [{"role": "user", "content": REDACTED}],
                                 "note": "card [CARD], ticket [REDACTED], mail [EMAIL]"}
    assert request["user"] == "u-1"  # the original is left alone
    assert redactor({"messages": "not a list"}) == {"messages": "not a list"}
    assert Redactor([], ["phone"]).text("call (415) 555-0100 now, order 12") == "call [PHONE] now, order 12"


def test_what_is_nested_too_deep_to_walk_is_redacted_whole() -> None:
    deep: Any = "a@b.io"
    for _ in range(2000):  # a 4 KB body, past the interpreter's stack
        deep = [deep]
    kept: Any = REDACTED
    for _ in range(MAX_DEPTH - 1):
        kept = [kept]
    assert Redactor([], ["email"])({"ok": "a@b.io", "deep": deep}) == {"ok": "[EMAIL]", "deep": kept}


def test_the_settings_round_trip_through_the_environment() -> None:
    config = CaptureConfig(server="clf", model_version=3, sample_rate=0.25, max_body_bytes=2048, batch_records=7,
                           flush_seconds=5, redact=Redaction(fields=["prompt"], patterns=["email", "x+"]))
    env = config.to_env()
    assert all(var.startswith("MODELPLANE_") for var in env) and json.loads(env["MODELPLANE_CAPTURE_REDACT"])
    assert CaptureConfig.from_env(env) == config
    unversioned = CaptureConfig(server="clf")
    assert CaptureConfig.from_env(unversioned.to_env()) == unversioned


@pytest.mark.parametrize(("env", "named"), [
    ({}, "MODELPLANE_SERVER"),
    ({"MODELPLANE_SERVER": "s", "MODELPLANE_CAPTURE_SAMPLE_RATE": "2"}, "MODELPLANE_CAPTURE_SAMPLE_RATE"),
    ({"MODELPLANE_SERVER": "s", "MODELPLANE_CAPTURE_REDACT": "{"}, "MODELPLANE_CAPTURE_REDACT"),
    ({"MODELPLANE_SERVER": "s", "MODELPLANE_CAPTURE_REDACT": '{"patterns": ["("]}'}, "MODELPLANE_CAPTURE_REDACT"),
])
def test_a_bad_variable_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        CaptureConfig.from_env(env)


def test_a_batch_appears_under_its_name_only_once_written_whole(tmp_path: Path) -> None:
    write_file(tmp_path / "part-1.jsonl.gz", b"batch")
    previous_limit, previous_handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ,
                                                                                                signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, previous_limit[1]))  # a disk that fills up mid-write
    try:
        with pytest.raises(OSError):
            write_file(tmp_path / "part-2.jsonl.gz", b"x" * 10_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert [p.name for p in tmp_path.iterdir()] == ["part-1.jsonl.gz"]  # neither half a batch nor a temporary file
    assert (tmp_path / "part-1.jsonl.gz").read_bytes() == b"batch"
