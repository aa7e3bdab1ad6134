"""The platform's images the first `pulumi up` builds: what Cloud Build is sent, when it builds, what runs.

The build script runs here against a stand-in `gcloud` on PATH that records its calls, so the test holds the script
itself (its idempotence, its arguments), not a description of it. The build config is read as Cloud Build reads it:
user-defined substitutions are `$_NAME`, an underscore then upper-case letters, digits or underscores (Cloud Build
docs, "Substituting variable values"), replaced in `steps` and `images` by the values `--substitutions` passes.
"""
import re
import shutil
import tomllib
from pathlib import Path

from infra.operator_image import BUILD_CONFIG, REPO_ROOT, build_context, source_tag

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


def pins(text: str) -> dict[str, str]:
    return dict(line.split("==") for line in text.splitlines() if "==" in line and not line.startswith(("#", " ")))


def test_the_lock_pins_every_package_of_both_images_and_nothing_by_path() -> None:
    """The images install with the lock as pip's constraints: every package it pins, the [monitor] extra's included,
    and no direct reference (a `name @ file:///...` line, as pip-compile writes for the project itself, names the
    checkout it was compiled in: pip would fail on any other machine, and as a constraint it conflicts with the copy
    being installed)."""
    lock = (REPO_ROOT / "requirements.lock").read_text()
    assert [line for line in lock.splitlines() if " @ " in line] == []
    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["monitor"]
    names = {re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower() for requirement in extra}
    assert names == {"numpy", "scipy", "scikit-learn"} and names <= set(pins(lock))
