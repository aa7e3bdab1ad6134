"""The operator process imports no Pulumi and needs none of the CLI's packages (the Dockerfile's targets, users and
constraints are tests/*/infra/test_operator_image.py's)."""
import subprocess
import sys
from pathlib import Path


def test_operator_process_imports_no_pulumi() -> None:
    code = ("import sys, modelplane.operator.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'infra')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


# The image installs the base dependencies only: the CLI's extra (kubernetes, rich) is not there. A module in
# sys.modules as None fails to import, as an absent one does.
WITHOUT_CLI_PACKAGES = "import sys; sys.modules.update(kubernetes=None, rich=None); "


def run_without_cli_packages(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_CLI_PACKAGES + code], capture_output=True, text=True)


def test_operator_starts_without_the_cli_packages(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t0k3n\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")  # read, not parsed, until a call is made
    code = ("import modelplane.operator.main, modelplane.capture.__main__; from pathlib import Path; "
            "from modelplane.operator import login; "
            "env = {'KUBERNETES_SERVICE_HOST': '10.0.0.1', 'KUBERNETES_SERVICE_PORT': '443'}; "
            f"c = login.in_cluster(env, Path({str(tmp_path)!r})); print(c.server, c.authorization())")
    ran = run_without_cli_packages(code)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["https://10.0.0.1:443", "Bearer", "t0k3n"]


def test_operator_outside_a_cluster_without_the_kubernetes_package_says_what_to_install() -> None:
    ran = run_without_cli_packages("from modelplane.operator import login; login.load({})")
    assert ("LoginError: not in a pod, so the operator reads your kubeconfig, with the `kubernetes` package"
            in ran.stderr)
    assert "pip install 'modelplane[cli]'" in ran.stderr


def test_plugins_without_their_packages_say_what_to_install() -> None:
    ran = run_without_cli_packages("import modelplane.cli.notebook")
    assert ran.returncode == 1
    assert ran.stderr.strip() == ("modelplane's kubectl plugins need the kubernetes package: "
                                  "pip install 'modelplane[cli]'")
