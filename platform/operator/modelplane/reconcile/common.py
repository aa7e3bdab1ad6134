"""What every reconciler shares: the outcome type, what is known of a referenced object, and the status shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.conditions import condition

READY = "Ready"
KEPT = ("artifacts", "buildUpload", "image")  # facts that stay true while a new generation is in progress


@dataclass(frozen=True)
class Outcome:
    children: list[dict[str, Any]]
    status: dict[str, Any]


@dataclass(frozen=True)
class RefState:
    """A referenced Model or Dataset as observed."""

    found: bool
    ready: bool = False
    url: str | None = None  # its status.artifacts.url: the last weights or data that were Ready


def prefix_of_url(url: str) -> str:
    """`gs://bucket/a/b/` -> `a/b/`."""
    return url.removeprefix("gs://").split("/", 1)[1]


def summarise(status: dict[str, Any], generation: int, ok: bool, reason: str, message: str, now: str,
              **fields: Any) -> dict[str, Any]:
    """The new status: the Ready condition for this generation, kept facts, and the reconciler's own fields."""
    new = {key: status[key] for key in KEPT if key in status}
    new.update(ready=ok, observedGeneration=generation,
               conditions=[condition(READY, ok, reason, message, generation, now, status.get("conditions") or [])],
               **fields)
    return new
