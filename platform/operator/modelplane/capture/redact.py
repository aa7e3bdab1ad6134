"""Redaction: what never leaves the pod. Listed fields are replaced whole; patterns are replaced inside every string
of the request and the response (values only: keys are never rewritten).

Named patterns are deliberately plain: an e-mail address, a phone number in the forms people type (at least nine
digits with an optional leading `+` or `(`, and spaces, dots, dashes and parentheses between them), and a payment
card number (13 to 19 digits in groups). They over-redact a little (a long order number may read as a phone number)
rather than miss; a tenant adds its own regular expressions for the rest.

A value nested deeper than MAX_DEPTH is replaced whole: it could not be walked without exhausting the interpreter's
stack (a 2 KB body of nested lists does it), and what cannot be inspected does not leave the pod either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

NAMED = {
    "email": (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
    "card": (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[CARD]"),
    "phone": (re.compile(r"(?<![\w+(])[+(]?(?:\d[\s().-]{0,2}){8,14}\d\b"), "[PHONE]"),
}
ORDER = ("email", "card", "phone")  # a card number is also a long digit run: cards first
REDACTED = "[REDACTED]"
MAX_DEPTH = 64  # far deeper than any completion API's JSON


def compile_patterns(patterns: Sequence[str]) -> list[tuple[re.Pattern[str], str]]:
    """Named patterns by name, anything else as a regular expression (ValueError names one that does not compile)."""
    named = [NAMED[name] for name in ORDER if name in patterns]
    custom = []
    for pattern in patterns:
        if pattern in NAMED:
            continue
        try:
            custom.append((re.compile(pattern), REDACTED))
        except re.error as error:
            raise ValueError(f"redact pattern {pattern!r} is not a regular expression: {error}") from None
    return named + custom


def parse_path(path: str) -> list[str]:
    """`messages[*].content` -> ["messages", "*", "content"]."""
    return [part for step in path.split(".") for part in (
        [step[:-3], "*"] if step.endswith("[*]") else [step])]


class Redactor:
    def __init__(self, fields: Sequence[str], patterns: Sequence[str]) -> None:
        self.paths = [parse_path(f) for f in fields]
        self.patterns = compile_patterns(patterns)

    def __call__(self, value: Any) -> Any:
        """A redacted copy of a JSON value (the original is left alone)."""
        for path in self.paths:
            value = _replace(value, path)
        return self._scrub(value, 0)

    def text(self, value: str) -> str:
        for pattern, mark in self.patterns:
            value = pattern.sub(mark, value)
        return value

    def _scrub(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | dict) and depth >= MAX_DEPTH:
            return REDACTED
        if isinstance(value, list):
            return [self._scrub(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {k: self._scrub(v, depth + 1) for k, v in value.items()}
        return value


def _replace(value: Any, path: list[str]) -> Any:
    if not path:
        return REDACTED
    head, rest = path[0], path[1:]
    if head == "*":
        return [_replace(v, rest) for v in value] if isinstance(value, list) else value
    if isinstance(value, dict) and head in value:
        return {**value, head: _replace(value[head], rest)}
    return value
