"""`modelplane plan` and `modelplane render` print the same bytes for the same stack, in every process.

GitOps diffs and plan reviews only mean something if an unchanged stack renders unchanged: no key order that
follows protobuf map or hash order, no `replicas: 1.0` because numbers crossed Pulumi's wire format as floats.
Order can depend on hash seeds and on the runtime's threads, so each run is its own process.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.offline import REPO_ROOT


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
