"""The operator process imports no Pulumi (the Dockerfile's targets, users and constraints are
tests/*/infra/test_operator_image.py's)."""
import subprocess
import sys


def test_operator_process_imports_no_pulumi() -> None:
    code = ("import sys, modelplane.operator.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'infra')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
