"""`modelplane plan` refuses an unknown stack by naming the known ones."""
import pytest

from infra.cli import main


def test_unknown_stack_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "staging"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.staging.yaml" in err and "dev, prod" in err
