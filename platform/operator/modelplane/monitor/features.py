"""Features of captured traffic and of the reference data, as rows of named values. Pure: text in, rows out.

A row maps a feature's name to a number or a category; a feature a record does not have is absent from its row. The
tests later take each feature's values across rows, so a row is the unit that the outlier detector scores and a
feature is the unit that the drift tests compare.

Two kinds of traffic, told apart by the request body:
- OpenAI-compatible LLM traffic (`messages` or `prompt`): one row per record with `prompt_chars`, `oov_rate` (the
  share of the prompt's words missing from the reference vocabulary), and from a successful response
  `completion_chars`, `prompt_tokens` and `completion_tokens` (from `usage`) and the category `finish_reason`.
- Tabular traffic (`{"instances": [{column: value}, ...]}`): one row per instance, numbers numeric, strings (and
  booleans) categorical.
Both carry `latency_ms` of a successful response, once per record (on its first row), so that a request of many
instances counts one latency, not many copies of it, which a two-sample test would take for independent values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Value = float | str
Row = dict[str, Value]

PROMPT_CHARS = "prompt_chars"
COMPLETION_CHARS = "completion_chars"
PROMPT_TOKENS = "prompt_tokens"
COMPLETION_TOKENS = "completion_tokens"
OOV_RATE = "oov_rate"
FINISH_REASON = "finish_reason"
LATENCY = "latency_ms"

_WORD = re.compile(r"\w+")


class ReferenceError(ValueError):
    """The reference data cannot be read as CSV or JSON lines."""


@dataclass(frozen=True)
class Reference:
    """The reference dataset as rows (one per CSV row or JSONL line), and the vocabulary that `oov_rate` is
    measured against."""

    rows: list[Row]
    vocabulary: frozenset[str]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def oov_rate(text: str, vocabulary: frozenset[str]) -> float | None:
    """Share of the text's words not in the vocabulary; None for a text without words (a rate of nothing)."""
    found = words(text)
    return sum(word not in vocabulary for word in found) / len(found) if found else None


def _scalar(value: Any) -> Value | None:
    """A JSON value as a feature value: numbers numeric, strings and booleans categorical, the rest (null, lists,
    objects, NaN) no value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return None


def _cell(text: str) -> Value | None:
    """A CSV cell: a finite number when it reads as one, else its text; empty is no value."""
    if not text.strip():
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else None


def _instance_row(instance: Mapping[str, Any]) -> Row:
    return {str(name): value for name, raw in instance.items() if (value := _scalar(raw)) is not None}


def _content(content: Any) -> str:
    """A chat message's text: a string, or the text parts of a list of parts (images and the like have none)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _messages_text(messages: list[Any]) -> str:
    return "\n".join(_content(message.get("content")) for message in messages if isinstance(message, dict))


def _prompt(request: Mapping[str, Any]) -> str | None:
    """The prompt of a chat (`messages`) or completions (`prompt`: a string or a list of them) request; None when
    it has no text (token-id prompts)."""
    messages, prompt = request.get("messages"), request.get("prompt")
    if isinstance(messages, list):
        return _messages_text(messages)
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(part, str) for part in prompt):
        return "\n".join(prompt)
    return None


def _count(value: Any) -> float | None:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _response_features(response: Any) -> Row:
    """Completion features of a plain OpenAI response (`choices`, `usage` in snake_case) or of the capture proxy's
    StreamSummary of a streamed one (`text`, `finishReason`, `usage` in camelCase)."""
    row: Row = {}
    if not isinstance(response, dict):
        return row
    choices, usage = response.get("choices"), response.get("usage")
    if isinstance(choices, list):
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = choice.get("message")
        text = _content(message.get("content")) if isinstance(message, dict) else choice.get("text")
        reason, prompt_key, completion_key = choice.get("finish_reason"), "prompt_tokens", "completion_tokens"
    else:
        text, reason = response.get("text"), response.get("finishReason")
        prompt_key, completion_key = "promptTokens", "completionTokens"
    if isinstance(text, str):
        row[COMPLETION_CHARS] = float(len(text))
    if isinstance(reason, str):
        row[FINISH_REASON] = reason
    if isinstance(usage, dict):
        for key, name in ((prompt_key, PROMPT_TOKENS), (completion_key, COMPLETION_TOKENS)):
            if (tokens := _count(usage.get(key))) is not None:
                row[name] = tokens
    return row


def traffic_rows(record: Mapping[str, Any], vocabulary: frozenset[str]) -> list[Row]:
    """A captured record's feature rows (see the module's docstring). A response that is not a success (status
    outside 2xx: an error body, or the proxy's 502) gives no response features and no latency, which would describe
    the failure rather than the traffic. Without a vocabulary (a reference with no text) there is no `oov_rate`."""
    status = record.get("status")
    ok = isinstance(status, int) and 200 <= status < 300
    request = record.get("request")
    request = request if isinstance(request, dict) else {}
    latency = record.get("latencyMs")
    first: Row = {LATENCY: float(latency)} if ok and isinstance(latency, int | float) and latency >= 0 else {}
    instances = request.get("instances")
    if isinstance(instances, list):
        rows = [_instance_row(instance) for instance in instances if isinstance(instance, dict)] or [{}]
        rows[0].update(first)
        return rows
    prompt = _prompt(request)
    if prompt is not None:
        first[PROMPT_CHARS] = float(len(prompt))
        rate = oov_rate(prompt, vocabulary) if vocabulary else None
        if rate is not None:
            first[OOV_RATE] = rate
    if ok:
        first.update(_response_features(record.get("response")))
    return [first]


def _text_example(example: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    """(prompt, completion) of an LLM example, `prompt`/`completion` or chat `messages` (a final assistant message
    is the completion); None for a line that is not one."""
    messages = example.get("messages")
    if isinstance(messages, list):
        last = messages[-1] if messages else None
        if isinstance(last, dict) and last.get("role") == "assistant":
            return _messages_text(messages[:-1]), _content(last.get("content"))
        return _messages_text(messages), None
    prompt, completion = example.get("prompt"), example.get("completion")
    if isinstance(prompt, str) or isinstance(completion, str):
        return (prompt if isinstance(prompt, str) else None,
                completion if isinstance(completion, str) else None)
    return None


def _csv_rows(name: str, text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ReferenceError(f"{name}: no header row")
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise ReferenceError(f"{name}:{line}: {len(cells)} values for {len(header)} columns")
        rows.append({column: value for column, cell in zip(header, cells, strict=True)
                     if (value := _cell(cell)) is not None})
    return rows


def _jsonl_objects(name: str, text: str) -> list[dict[str, Any]]:
    objects = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            value = json.loads(content)
        except ValueError as error:
            raise ReferenceError(f"{name}:{line}: not JSON: {error}") from None
        if not isinstance(value, dict):
            raise ReferenceError(f"{name}:{line}: not a JSON object")
        objects.append(value)
    return objects


def parse_reference(files: Iterable[tuple[str, str]]) -> Reference:
    """The reference from its files' (name, text), in a fixed order: `.csv` files with a header row, `.jsonl` files
    of LLM examples (`prompt`/`completion` or `messages`) or of tabular rows (any other object: its scalar fields).

    `oov_rate` needs a reference of its own: measured against a vocabulary built from the very examples it is
    measured on, it would be 0 for every one of them, and any traffic would drift from that. So the vocabulary is
    built from every other text example (the even ones, prompts and completions), and the reference `oov_rate` is
    that of the odd ones' prompts: held-out text, like traffic, measured against the same vocabulary traffic is.
    """
    rows: list[Row] = []
    vocabulary: set[str] = set()
    held_out: list[tuple[Row, str]] = []  # the odd examples' rows and prompts, for oov_rate once vocabulary is whole
    texts = 0
    for name, text in files:
        if name.endswith(".csv"):
            rows.extend(_csv_rows(name, text))
            continue
        for obj in _jsonl_objects(name, text):
            example = _text_example(obj)
            if example is None:
                rows.append(_instance_row(obj))
                continue
            prompt, completion = example
            row: Row = {}
            if prompt is not None:
                row[PROMPT_CHARS] = float(len(prompt))
            if completion is not None:
                row[COMPLETION_CHARS] = float(len(completion))
            if texts % 2 == 0:
                vocabulary.update(words(f"{prompt or ''}\n{completion or ''}"))
            elif prompt is not None:
                held_out.append((row, prompt))
            texts += 1
            rows.append(row)
    frozen = frozenset(vocabulary)
    for row, prompt in held_out:
        rate = oov_rate(prompt, frozen)
        if rate is not None:
            row[OOV_RATE] = rate
    return Reference(rows, frozen)
