"""Versions, pure: a Dataset version's manifest and digest, the diff between two versions, and whether a new Model
version is better than the champion."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from modelplane.api.model import Evaluation

Manifest = list[dict[str, Any]]  # [{"name", "size", "md5", "crc32c"}], sorted by name: what a version holds


def digest(manifest: Manifest) -> str:
    """sha256 of the manifest: equal digests, equal data (names, sizes and the checksums GCS keeps)."""
    return hashlib.sha256(json.dumps(sorted(manifest, key=lambda f: f["name"]), sort_keys=True).encode()).hexdigest()


def diff(old: Manifest | None, new: Manifest, old_version: int | None, new_version: int) -> dict[str, Any]:
    """What changed from `old` to `new`: the file names added, changed (size or checksum) and removed."""
    before = {f["name"]: (f["size"], f["md5"], f.get("crc32c", "")) for f in old or []}
    after = {f["name"]: (f["size"], f["md5"], f.get("crc32c", "")) for f in new}
    return {"from": old_version, "to": new_version,
            "added": sorted(set(after) - set(before)),
            "changed": sorted(n for n in set(after) & set(before) if after[n] != before[n]),
            "removed": sorted(set(before) - set(after))}


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def judge(evaluation: Evaluation | None, candidate: dict[str, float] | None,
          champion: dict[str, float] | None) -> Verdict:
    """Whether a new version becomes the champion: every threshold holds, and the first metric beats the champion's
    by evaluation.minImprovement. Without evaluation every successful version is promoted."""
    if evaluation is None:
        return Verdict(True, "promoted: no evaluation configured")
    metrics = candidate or {}
    for metric in evaluation.metrics:
        if metric.name not in metrics:
            return Verdict(False, f"not promoted: metrics.json has no {metric.name!r}")
        value, threshold = metrics[metric.name], metric.threshold
        if threshold is not None and (value < threshold if metric.goal == "maximize" else value > threshold):
            return Verdict(False, f"not promoted: {metric.name} {value:g} misses the threshold {threshold:g}")
    first = evaluation.metrics[0]
    if not champion or first.name not in champion:
        return Verdict(True, f"promoted: first version with {first.name} {metrics[first.name]:g}")
    gain = metrics[first.name] - champion[first.name]
    if first.goal == "minimize":
        gain = -gain
    if gain <= evaluation.min_improvement:  # strictly better, by more than the margin
        return Verdict(False, f"not promoted: {first.name} {metrics[first.name]:g} against the champion's "
                              f"{champion[first.name]:g} (needs an improvement above {evaluation.min_improvement:g})")
    return Verdict(True, f"promoted: {first.name} {metrics[first.name]:g} beats the champion's "
                         f"{champion[first.name]:g}")
