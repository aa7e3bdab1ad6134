"""Every `./run` command the README shows runs and succeeds as written, except `./run test` and `./run demo`
(CI runs both: the demo is tests/emulator/operator/test_loop.py).

`pulumi` is stood in by a script that answers `stack output kubeconfig` with the planned kubeconfig (the one command
that reads a deployed stack); `--out` paths are moved into a temporary directory. The ML user's kubectl steps are
run by tests/emulator/operator/test_walkthrough.py.
"""
import os
import re
import shlex
from pathlib import Path

import pytest

from infra.cli import main
from infra.offline import Plan
from tests.support.programs import stand_in

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_run_commands() -> list[list[str]]:
    commands = []
    for line in README.read_text().splitlines():
        found = re.search(r"(?:^\s{4}|`)\./run (?!test\b|demo\b)([^`#&]+)", line)
        if found:
            commands.append(shlex.split(found.group(1)))
    return commands


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    verbs = [command[0] for command in readme_run_commands()]
    assert {"plan", "render", "kubeconfig"} <= set(verbs) and len(verbs) >= 6


@pytest.mark.parametrize("command", readme_run_commands(), ids=" ".join)
def test_each_readme_command_succeeds(command: list[str], tmp_path: Path, dev_plan: Plan,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kubeconfig").write_text(dev_plan.outputs["kubeconfig"])
    monkeypatch.setenv("PATH", f"{stand_in(tmp_path, 'pulumi', f'cat {tmp_path}/kubeconfig')}:{os.environ['PATH']}")
    args = [str(tmp_path / Path(a).name) if previous == "--out" else a
            for previous, a in zip(["", *command[:-1]], command, strict=True)]
    assert main(args) == 0
