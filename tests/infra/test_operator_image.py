"""The operator image the first `pulumi up` builds: what Cloud Build is sent, when it builds, what runs.

The build script runs here against a stand-in `gcloud` on PATH that records its calls, so the test holds the script
itself (its idempotence, its arguments), not a description of it.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.offline import Plan, run_program
from infra.operator_image import BUILD_CONFIG, BUILD_SCRIPT, REPO_ROOT, build_context, source_tag
from tests.support.programs import stand_in

DOCKERFILE = REPO_ROOT / "platform/operator/Dockerfile"


def copied_sources() -> list[str]:
    """What the Dockerfile's COPY instructions take from the build context (not from another stage)."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    return sources


def test_cloud_build_is_sent_exactly_what_the_dockerfile_copies() -> None:
    sent = {p.relative_to(REPO_ROOT).as_posix() for p in build_context()}
    needed = set()
    for source in copied_sources():
        path = REPO_ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        needed |= {f.relative_to(REPO_ROOT).as_posix() for f in files if "__pycache__" not in f.parts}
    assert needed and needed <= sent
    assert sent - needed == {"platform/operator/Dockerfile", BUILD_CONFIG}
    assert not [f for f in sent if f.startswith(("tests/", ".venv/", "stacks/"))]


def test_the_tag_follows_the_build_context_only(tmp_path: Path) -> None:
    for name in (".gcloudignore", "pyproject.toml", "requirements.lock", "platform/operator/Dockerfile", BUILD_CONFIG,
                 "platform/operator/modelplane/names.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    first = source_tag(tmp_path)
    assert re.fullmatch(r"\d+\.\d+\.\d+-[0-9a-f]{12}", first)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_x.py").write_text("x = 1\n")
    assert source_tag(tmp_path) == first  # not sent to Cloud Build, not part of the image
    (tmp_path / "platform/operator/modelplane/names.py").write_text("CHANGED = 1\n")
    assert source_tag(tmp_path) != first


def test_the_stack_builds_the_operator_and_runs_it(dev_plan: Plan) -> None:
    build = dev_plan.one("command:local:Command", "operator-image")
    tag = source_tag()
    registry = dev_plan.outputs["registry"]
    env = build.inputs["environment"]
    assert env["IMAGE"] == f"{registry}/modelplane-operator:{tag}" == dev_plan.outputs["operatorImage"]
    assert env["BUILDER"] == dev_plan.outputs["releaseServiceAccount"]
    assert build.inputs["triggers"] == [tag]
    source = dev_plan.one("gcp:storage/bucket:Bucket", "operator-image-source")
    assert env["SOURCE_BUCKET"] == source.inputs["name"]
    grant = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "operator-image-source-reader")
    assert grant.urn in build.dependencies  # the build account can read the staged context before it runs
    assert dev_plan.one("gcp:artifactregistry/repository:Repository", "registry").urn in build.dependencies
    config = yaml.safe_load((REPO_ROOT / BUILD_CONFIG).read_text())
    assert config["steps"][0]["args"] == ["build", "--file", "platform/operator/Dockerfile", "--tag", "$_IMAGE", "."]
    assert config["images"] == ["$_IMAGE"] and config["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def test_a_pinned_operator_image_is_not_built(dev_values: dict[str, Any]) -> None:
    pinned = "ghcr.io/example/modelplane-operator:0.1.0@sha256:" + "a" * 64
    plan = run_program("dev", {**dev_values, "modelplane:images": {"operator": pinned}})
    assert plan.of_type("command:local:Command") == [] and plan.outputs["operatorImage"] == pinned


def run_script(tmp_path: Path, image_exists: bool) -> list[str]:
    """The build script with a `gcloud` that logs its arguments and answers `describe` as told."""
    log = tmp_path / "calls"
    found = stand_in(tmp_path, "gcloud", f'echo "$*" >> {log}\n'
                     f'case "$*" in "artifacts docker images describe"*) exit {0 if image_exists else 1};; esac\n')
    env = {"PATH": f"{found}:{os.environ['PATH']}", "IMAGE": "r/modelplane-operator:0.1.0-abc",
           "PROJECT": "p", "REGION": "us-central1", "CONFIG": BUILD_CONFIG, "BUILDER": "rel@p.iam.gserviceaccount.com",
           "SOURCE_BUCKET": "p-src"}
    subprocess.run(["/bin/sh", "-c", BUILD_SCRIPT], env=env, check=True, capture_output=True)
    return log.read_text().splitlines()


def test_the_build_runs_once_per_tag(tmp_path: Path) -> None:
    calls = run_script(tmp_path, image_exists=False)
    assert calls[1] == ("builds submit . --project p --region us-central1 --config platform/operator/cloudbuild.yaml "
                        "--substitutions _IMAGE=r/modelplane-operator:0.1.0-abc --service-account "
                        "projects/p/serviceAccounts/rel@p.iam.gserviceaccount.com "
                        "--gcs-source-staging-dir gs://p-src/source")
    (tmp_path / "calls").unlink()
    shutil.rmtree(tmp_path / "bin")
    assert run_script(tmp_path, image_exists=True) == [
        "artifacts docker images describe r/modelplane-operator:0.1.0-abc --project p"]
