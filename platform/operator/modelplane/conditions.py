"""Kubernetes-style conditions; `Ready` is the summary that kstatus, Argo CD and Flux read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def condition(type_: str, ok: bool, reason: str, message: str, generation: int, now: str,
              previous: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A condition; lastTransitionTime moves only when the status flips."""
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == type_), None)
    since = before["lastTransitionTime"] if before and before.get("status") == status and \
        before.get("lastTransitionTime") else now
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since, "observedGeneration": generation}


def find(conditions: Sequence[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
