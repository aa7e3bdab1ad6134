"""ML users start in their tenant's namespace: the stack's kubeconfig and `modelplane kubeconfig --tenant`."""
import os
import stat
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.offline import Plan
from tests.support.programs import stand_in


def namespaces(text: str) -> list[str]:
    return [c["context"].get("namespace") for c in yaml.safe_load(text)["contexts"]]


def test_the_stacks_kubeconfig_works_in_its_first_tenant(prod_plan: Plan) -> None:
    assert namespaces(prod_plan.outputs["kubeconfig"]) == [prod_plan.outputs["tenants"][0]]


@pytest.fixture
def pulumi_on_path(tmp_path: Path, prod_plan: Plan, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` that answers `stack output kubeconfig` with the planned kubeconfig and logs its arguments."""
    (tmp_path / "kubeconfig").write_text(prod_plan.outputs["kubeconfig"])
    found = stand_in(tmp_path, "pulumi", f'echo "$*" > {tmp_path}/args\ncat {tmp_path}/kubeconfig\n')
    monkeypatch.setenv("PATH", f"{found}:{os.environ['PATH']}")
    return tmp_path


def test_a_tenants_kubeconfig_is_in_its_namespace(pulumi_on_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = pulumi_on_path / "product-ml.yaml"
    assert main(["kubeconfig", "--stack", "prod", "--tenant", "product-ml", "--out", str(out)]) == 0
    assert namespaces(out.read_text()) == ["product-ml"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (pulumi_on_path / "args").read_text().split() == [
        "stack", "output", "kubeconfig", "--show-secrets", "--stack", "prod"]


def test_an_unknown_tenant_is_refused_before_pulumi_runs(pulumi_on_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kubeconfig", "--stack", "prod", "--tenant", "ml"]) == 2
    assert "'ml' is not a tenant of stack 'prod'; its tenants: research, product-ml" in capsys.readouterr().err
    assert not (pulumi_on_path / "args").exists()
