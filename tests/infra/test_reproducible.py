"""`modelplane plan` and `modelplane render` print the same bytes for the same stack, in every process.

GitOps diffs and plan reviews only mean something if an unchanged stack renders unchanged: no key order that
follows protobuf map or hash order, no `replicas: 1.0` because numbers crossed Pulumi's wire format as floats.
Order can depend on hash seeds and on the runtime's threads, so each run is its own process.
"""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main, render_plan
from infra.offline import REPO_ROOT, Plan, from_wire
from tests.conftest import plan_for

# A YAML scalar that is a whole number written as a float: `maxLength: 4096.0`, `- 1.0` (a string would be quoted).
WHOLE_FLOAT = re.compile(r"(?:^|:|-)\s+-?\d+\.0\s*$", re.MULTILINE)


def in_two_processes(commands: list[list[str]]) -> list[str]:
    """Run `modelplane COMMAND` for each command concurrently, each process with its own hash seed; their stdout."""
    processes = [subprocess.Popen([sys.executable, "-m", "infra.cli", *command], cwd=REPO_ROOT,
                                  env={**os.environ, "PYTHONHASHSEED": str(seed)}, stdout=subprocess.PIPE, text=True)
                 for seed, command in enumerate(commands, start=1)]
    stdouts = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * len(commands)
    return stdouts


def files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_render_writes_the_same_bytes_in_every_process(stack: str, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    in_two_processes([["render", "--stack", stack, "--out", str(out)] for out in (first, second)])
    assert files(first) == files(second)


def test_plan_prints_the_same_bytes_in_every_process() -> None:
    first, second = in_two_processes([["plan", "--stack", "prod"]] * 2)
    assert first == second


def test_plan_order_does_not_follow_registration_order() -> None:
    """The runtime registers resources from its threads, so siblings may arrive in any order."""
    plan = plan_for("dev")
    shuffled = Plan(stack=plan.stack, resources=list(reversed(plan.resources)), outputs=plan.outputs,
                    secret_outputs=plan.secret_outputs)
    assert render_plan(shuffled) == render_plan(plan)


def whole_floats(value: Any, path: str = "") -> Iterator[str]:
    """Where a parsed document holds a float that is a whole number."""
    if isinstance(value, float) and value.is_integer():
        yield f"{path}: {value}"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from whole_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from whole_floats(item, f"{path}[{index}]")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_render_writes_integers_as_integers(stack: str, tmp_path: Path) -> None:
    assert main(["render", "--stack", stack, "--out", str(tmp_path)]) == 0
    for path in sorted(tmp_path.glob("*.yaml")):
        text = path.read_text()
        assert WHOLE_FLOAT.findall(text) == [], path.name
        assert [where for doc in yaml.safe_load_all(text) for where in whole_floats(doc)] == [], path.name


def test_whole_float_pattern_finds_what_the_wire_format_made() -> None:
    """The text check above would pass vacuously if its pattern never matched."""
    assert WHOLE_FLOAT.findall("replicas: 1.0\nitems:\n- 4096.0\ndescription: version 1.0 of x\nratio: 0.5\n") == [
        ": 1.0", "- 4096.0"]


def test_only_whole_floats_become_integers() -> None:
    """Compared as repr, where `1` and `1.0` differ: fractions, bools and numeric strings stay as they are."""
    sent = {"replicas": 1.0, "schema": {"maxLength": 4096.0, "default": 0.5, "enum": [2.0, -3.0, 1.25]},
            "flags": [True, False], "version": "1.0"}
    assert repr(from_wire(sent)) == repr({"replicas": 1, "schema": {"maxLength": 4096, "default": 0.5,
                                                                    "enum": [2, -3, 1.25]},
                                          "flags": [True, False], "version": "1.0"})
