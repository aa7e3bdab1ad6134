"""A streamed (SSE) completion, reassembled on the side as the bytes pass: what the record says it answered.

Parsed as the HTML Living Standard's event-stream format says (lines end in CRLF, LF or CR; `data:` lines
accumulate, joined by LF, until a blank line dispatches the event; a single space after the colon is dropped), over
bytes, so a chunk boundary inside a line or inside a multi-byte character changes nothing. Each event's data is an
OpenAI chunk: `choices[0].delta.content` (chat) or `choices[0].text` (completions), `finish_reason`, and a final
`usage`; `[DONE]` ends the stream. Memory is bounded: text past `limit` bytes is not kept (the record says
truncated), nor is a line, or an event's data, longer than `limit`. An event of another shape is skipped: the
reassembler reads a stream the client is being sent, and must never fail it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelplane.capture.record import StreamSummary, Usage

_LINE_END = re.compile(rb"\r\n|\r|\n")


class StreamReassembler:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._line = bytearray()
        self._overlong = False  # the current line passed the limit: it is skipped
        self._data: list[str] = []  # the event's data lines so far
        self._data_size = 0  # their length, bounded like a line: an event past the limit is dropped whole
        self._text: list[str] = []
        self._size = 0
        self._after_cr = False
        self.truncated = False
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> None:
        if self._after_cr and chunk.startswith(b"\n"):  # the LF of a CRLF split across chunks
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        *lines, rest = _LINE_END.split(bytes(self._line) + chunk)
        for line in lines:
            if self._overlong:  # the end of the line that was too long: dropped, dispatching nothing
                self._overlong = False
                continue
            self._end_line(line)
        self._line = bytearray() if self._overlong else bytearray(rest)
        if len(self._line) > self.limit:  # a line this long is no completion chunk worth keeping
            self._overlong, self.truncated = True, True
            self._line.clear()

    def _end_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace")
        if not line:
            self._dispatch()
        elif line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
            self._data_size += len(raw)
            if self._data_size > self.limit:  # data lines and no blank line to end the event: not a completion
                self._data.clear()
                self.truncated = True

    def _dispatch(self) -> None:
        data, self._data, self._data_size = "\n".join(self._data), [], 0
        if not data or data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):
            return
        if isinstance(event, dict):
            self._take(event)

    def _take(self, event: dict[str, Any]) -> None:
        """What a chunk adds; a field of another shape than OpenAI's is ignored (a stream is never failed over it)."""
        choices = event.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        delta = first.get("delta")
        piece = delta.get("content") if isinstance(delta, dict) else None
        if piece is None:
            piece = first.get("text")
        if isinstance(piece, str) and piece:
            if self._size + len(piece.encode()) > self.limit:
                self.truncated = True
            else:
                self._text.append(piece)
                self._size += len(piece.encode())
        if isinstance(first.get("finish_reason"), str):
            self.finish_reason = first["finish_reason"]
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(promptTokens=_count(usage.get("prompt_tokens")),
                               completionTokens=_count(usage.get("completion_tokens")))

    def summary(self) -> StreamSummary:
        if self._line and not self._overlong:  # a last line the stream did not end
            self._end_line(bytes(self._line))
        self._dispatch()
        found = StreamSummary(text="".join(self._text), finishReason=self.finish_reason)
        if self.usage is not None:
            found["usage"] = self.usage
        return found


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
