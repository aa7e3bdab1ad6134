"""ML users start in their tenant's namespace: the stack's kubeconfig and `modelplane kubeconfig --tenant`."""
from pathlib import Path

import pytest

from infra.cli import main


def test_without_pulumi_the_user_is_told_where_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["kubeconfig", "--stack", "dev", "--tenant", "ml"]) == 3
    assert "pulumi CLI is not on PATH" in capsys.readouterr().err
