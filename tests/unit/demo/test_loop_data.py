"""The loop's data and reference programs: the feed versions order as documented, warm starts use the parent, the
loader is deterministic, and both programs fail clearly on bad inputs."""
from __future__ import annotations

import csv
from pathlib import Path

from tests.support.loop_scripts import DATA

VERSIONS = ("v1", "v2", "v3")


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_the_feed_only_grows_and_eval_is_apart() -> None:
    v1, v2, v3 = (rows(DATA / v / "train.csv") for v in VERSIONS)
    evaluation = rows(DATA / "eval.csv")
    assert v1[0] == v2[0] == v3[0] == evaluation[0] and v1[0][-1] == "label"
    assert v2[:len(v1)] == v1 and v3[:len(v2)] == v2  # each version appends to the previous one
    assert (len(v1), len(v2), len(v3), len(evaluation)) == (41, 241, 491, 301)  # with headers; a few hundred rows
    assert {row[3] for row in v1[1:]} == {"0"}  # v1: month-to-month customers only
    assert {row[3] for row in v2[1:]} == {row[3] for row in evaluation[1:]} == {"0", "1"}
