"""What the capture proxy writes and the monitor reads: one JSON object per request, in gzip JSON-lines batches.

The layout under a ModelServer's payload prefix (layout.payloads_prefix, mounted read-write
into the proxy at /content/payloads and read-only into the monitor):

    version=<model version>/date=<YYYY-MM-DD>/part-<HHMMSS>-<8 hex>.jsonl.gz

Each pod serves one model version (the operator rolls the Deployment to a new one), so the version in the path is
the version that answered every record of the batch. A batch is written once and closed: over GCS FUSE, a file is
uploaded when it is closed, and a reader never sees half of one.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

BATCH_SUFFIX = ".jsonl.gz"


class Usage(TypedDict, total=False):
    promptTokens: int
    completionTokens: int


class StreamSummary(TypedDict):
    """An SSE (streamed) response reassembled on the side: what a plain response's body would have said."""

    text: str  # the completion's text: the `delta.content` (chat) or `text` (completions) of every chunk, joined
    finishReason: str | None
    usage: NotRequired[Usage]


class PayloadRecord(TypedDict):
    time: str  # when the request arrived, RFC 3339 UTC with milliseconds ("2026-12-03T07:01:02.345Z")
    id: str  # the request's x-request-id header, or one the proxy made
    server: str  # the ModelServer's name
    modelVersion: int | None  # the Model version this pod serves (None: a server of weights with no versions)
    method: str
    path: str  # without the query string
    status: int  # the server's HTTP status; 502 when the server could not be reached
    latencyMs: float  # from the request's arrival to the response's last byte
    stream: bool  # the response was `text/event-stream`
    request: Any  # the JSON request body after redaction; None when it is not JSON or is over maxBodyBytes
    response: Any  # the JSON response body (plain) or a StreamSummary (SSE), after redaction; None as for request
    truncated: bool  # a body was over maxBodyBytes: its part is None


def batch_path(version: int | None, date: str, clock: str, suffix: str) -> str:
    """A batch's path relative to the payload prefix: `version=<v>/date=<date>/part-<clock>-<suffix>.jsonl.gz`
    (`version=none` for weights with no version)."""
    return f"version={'none' if version is None else version}/date={date}/part-{clock}-{suffix}{BATCH_SUFFIX}"
