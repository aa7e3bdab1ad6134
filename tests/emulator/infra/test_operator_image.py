"""The platform's images the first `pulumi up` builds: what Cloud Build is sent, when it builds, what runs.

The build script runs here against a stand-in `gcloud` on PATH that records its calls, so the test holds the script
itself (its idempotence, its arguments), not a description of it. The build config is read as Cloud Build reads it:
user-defined substitutions are `$_NAME`, an underscore then upper-case letters, digits or underscores (Cloud Build
docs, "Substituting variable values"), replaced in `steps` and `images` by the values `--substitutions` passes.
"""
import os
import subprocess
from pathlib import Path

from infra.operator_image import BUILD_CONFIG, BUILD_SCRIPT
from tests.support.programs import stand_in


def run_script(tmp_path: Path, in_registry: tuple[str, ...]) -> list[str]:
    """The build script with a `gcloud` that logs its arguments and finds only the images `in_registry`."""
    log = tmp_path / "calls"
    found = " | ".join(f'"artifacts docker images describe r/{name}:0.1.0-abc "*' for name in in_registry)
    script = f'echo "$*" >> {log}\n' + (f"case \"$*\" in {found}) exit 0;; esac\n" if in_registry else "")
    script += 'case "$*" in "artifacts docker images describe"*) exit 1;; esac\n'
    bin_dir = stand_in(tmp_path, "gcloud", script)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "REGISTRY": "r", "TAG": "0.1.0-abc",
           "IMAGES": "modelplane-operator modelplane-runtime", "PROJECT": "p", "REGION": "us-central1",
           "CONFIG": BUILD_CONFIG, "BUILDER": "rel@p.iam.gserviceaccount.com", "SOURCE_BUCKET": "p-src"}
    subprocess.run(["/bin/sh", "-c", BUILD_SCRIPT], env=env, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    log.unlink()
    return calls
DESCRIBED = ["artifacts docker images describe r/modelplane-operator:0.1.0-abc --project p",
             "artifacts docker images describe r/modelplane-runtime:0.1.0-abc --project p"]
SUBMIT = ("builds submit . --project p --region us-central1 --config platform/operator/cloudbuild.yaml "
          "--substitutions _REGISTRY=r,_TAG=0.1.0-abc --service-account "
          "projects/p/serviceAccounts/rel@p.iam.gserviceaccount.com --gcs-source-staging-dir gs://p-src/source")


def test_the_build_runs_once_per_tag(tmp_path: Path) -> None:
    assert run_script(tmp_path, ()) == [*DESCRIBED, SUBMIT]
    assert run_script(tmp_path, ("modelplane-operator",)) == [*DESCRIBED, SUBMIT]  # the runtime is missing
    assert run_script(tmp_path, ("modelplane-operator", "modelplane-runtime")) == DESCRIBED
