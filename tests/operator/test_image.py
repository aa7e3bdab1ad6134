"""The operator image stays lean: its dependency closure has no Pulumi, its process imports none (the Dockerfile's
targets, users and constraints are tests/infra/test_operator_image.py's)."""

import subprocess
import sys
from importlib.metadata import requires


def test_runtime_dependencies_exclude_pulumi_and_test_tools() -> None:
    runtime = [r for r in requires("modelplane") or [] if "extra ==" not in r]
    names = {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in runtime}
    assert names == {"aiohttp", "cronsim", "google-cloud-storage", "kopf", "kubernetes", "pathspec",
                     "prometheus-client", "pydantic", "pyyaml", "rich"}


def test_operator_process_imports_no_pulumi() -> None:
    code = ("import sys, modelplane.operator.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'infra')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
