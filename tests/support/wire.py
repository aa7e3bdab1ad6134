"""Typed Kubernetes objects as the API server sends them: tests build them with the client's models (so a misspelt
field is an error) and hand the operator the JSON it reads."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient


def wire(typed: Any) -> dict[str, Any]:
    """The object's JSON form (camelCase keys, no unset fields), as a watch or a GET delivers it."""
    found = ApiClient().sanitize_for_serialization(typed)  # type: ignore[no-untyped-call]
    assert isinstance(found, dict)
    return found
