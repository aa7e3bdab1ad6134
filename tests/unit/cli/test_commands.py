"""The plugins' refusals before any cluster call: bad arguments and files, a missing kubeconfig, and `--help`
listing the exit codes; each is one line and an exit code."""
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from modelplane.cli import applybuild, notebook
from modelplane.cli.command import UNEXPECTED
from modelplane.cli.errors import Exit
from tests.support.cli import clean, context_dir, model_manifest, use_kubeconfig


def exit_code(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """What the shell would see, argparse's own exits included."""
    try:
        return main(argv)
    except SystemExit as exited:
        return int(exited.code or 0)


def test_no_cluster_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    use_kubeconfig(monkeypatch, tmp_path / "missing")
    # Credentials for the sync are there (an emulator needs none), so the kubeconfig is what is missing; without
    # this the test passed only after another had started fake-gcs-server for the session.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    (tmp_path / "nb").mkdir()
    assert notebook.main(["-d", str(tmp_path / "nb")]) == Exit.NO_CLUSTER
    assert f"no kubeconfig at {tmp_path / 'missing'}" in clean(capsys.readouterr().err)


@pytest.mark.parametrize(("main", "argv", "named"), [
    (applybuild.main, ["-f", "missing.yaml", "src"], "-f missing.yaml: No such file"),
    (applybuild.main, ["-f", "model.yaml", "no-dockerfile"], "no Dockerfile at no-dockerfile/Dockerfile"),
    (applybuild.main, ["-f", "model.yaml", "missing-dir"], "missing-dir: not a directory"),
    (applybuild.main, ["-f", "pod.yaml", "src"], "-f pod.yaml: expected one Dataset or Model or ModelServer or"),
    (applybuild.main, ["-f", "broken.yaml", "src"], "-f broken.yaml: not one YAML document"),
    (notebook.main, ["-f", "missing.yaml"], "-f missing.yaml: No such file"),
    (notebook.main, ["-f", "model.yaml"], "-f model.yaml: expected one Notebook"),
    (notebook.main, ["-d", "missing-dir"], "-d missing-dir: not a directory"),
    (notebook.main, ["-d", "src", "--gpu", "nvidia-l5"], "invalid choice: 'nvidia-l5'"),
    (notebook.main, ["-d", "src", "--sync-interval", "0"], "--sync-interval: invalid positive value"),
])
def test_arguments_are_checked_before_the_cluster(
        main: Callable[[Sequence[str]], int], argv: list[str], named: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With no cluster at all, a bad argument or file is a usage error (2), never `no cluster` (3) or a traceback."""
    use_kubeconfig(monkeypatch, tmp_path / "no-kubeconfig")
    monkeypatch.chdir(tmp_path)
    context_dir(tmp_path / "src")
    (tmp_path / "no-dockerfile").mkdir()
    model_manifest(tmp_path)
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n")
    (tmp_path / "broken.yaml").write_text("kind: Model\nmetadata: {name: [\n")
    assert exit_code(main, argv) == Exit.USAGE
    assert named in clean(capsys.readouterr().err)


def test_unexpected_failures_are_one_line_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def broken(directory: Path) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("modelplane.cli.applybuild.pack", broken)
    assert applybuild.main(["-f", str(model_manifest(tmp_path)), str(context_dir(tmp_path / "src"))]) == Exit.FAILED
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and "RuntimeError: boom" in err and UNEXPECTED in err


@pytest.mark.parametrize("main", [notebook.main, applybuild.main])
def test_help_lists_the_exit_codes(main: Callable[[Sequence[str]], int], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(main, ["--help"]) == Exit.OK
    shown = " ".join(capsys.readouterr().out.split())
    for code in Exit:
        assert f"{code.value} {' '.join(code.meaning.split())}" in shown
