"""How the API server applies a JSON merge patch (`application/merge-patch+json`): RFC 7396 (which obsoletes RFC
7386), section 2's MergePatch, ported line by line. An object in the patch is merged into the target key by key
(a non-object target is first replaced by {}), null removes a key, and anything else (a list, a scalar) replaces
the target whole. kmock's own merge refuses to turn a scalar into an object or back, which the RFC allows.
"""

from __future__ import annotations

import copy
from typing import Any


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """The target (not changed in place) with the patch merged in."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = apply_merge_patch(merged.get(name), value)
    return merged
