"""The platform's images the first `pulumi up` builds: what Cloud Build is sent, when it builds, what runs.

The build script runs here against a stand-in `gcloud` on PATH that records its calls, so the test holds the script
itself (its idempotence, its arguments), not a description of it. The build config is read as Cloud Build reads it:
user-defined substitutions are `$_NAME`, an underscore then upper-case letters, digits or underscores (Cloud Build
docs, "Substituting variable values"), replaced in `steps` and `images` by the values `--substitutions` passes.
"""
import re
from typing import Any

import yaml

from infra.offline import Plan, run_program
from infra.operator_image import BUILD_CONFIG, BUILD_SCRIPT, REPO_ROOT, source_tag
from modelplane.builders.workload import USER_ID

DOCKERFILE = REPO_ROOT / "platform/operator/Dockerfile"
SUBSTITUTION = re.compile(r"\$(_[A-Z0-9_]+)")


def test_the_stack_builds_both_images_and_runs_them(dev_plan: Plan) -> None:
    build = dev_plan.one("command:local:Command", "operator-image")
    tag = source_tag()
    registry = dev_plan.outputs["registry"]
    env = build.inputs["environment"]
    assert (env["REGISTRY"], env["TAG"]) == (registry, tag)
    assert [f"{registry}/{name}:{tag}" for name in env["IMAGES"].split()] == [
        dev_plan.outputs["operatorImage"], dev_plan.outputs["runtimeImage"]]
    assert env["BUILDER"] == dev_plan.outputs["releaseServiceAccount"]
    assert build.inputs["triggers"] == [tag]
    source = dev_plan.one("gcp:storage/bucket:Bucket", "operator-image-source")
    assert env["SOURCE_BUCKET"] == source.inputs["name"]
    grant = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "operator-image-source-reader")
    assert grant.urn in build.dependencies  # the build account can read the staged context before it runs
    assert dev_plan.one("gcp:artifactregistry/repository:Repository", "registry").urn in build.dependencies
    config = yaml.safe_load((REPO_ROOT / BUILD_CONFIG).read_text())
    assert config["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def dockerfile_stages() -> dict[str, list[list[str]]]:
    """The Dockerfile's stages by name (`FROM base AS name`), each instruction as its words, comments dropped."""
    stages: dict[str, list[list[str]]] = {}
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            current = stages.setdefault(words[3] if len(words) == 4 and words[2] == "AS" else words[1], [])
        if words and not words[0].startswith("#"):
            current.append(words)
    return stages


def instruction(stage: list[list[str]], name: str) -> str:
    """The arguments of the stage's last `name` instruction, as written."""
    return " ".join([words for words in stage if words[0] == name][-1][1:])


def installed(stages: dict[str, list[list[str]]], target: str) -> str:
    """The pip install that fills the target's /usr/local (the stage its `COPY --from=...` reads)."""
    (copy,) = [words for words in stages[target] if words[0] == "COPY"]
    return instruction(stages[copy[1].removeprefix("--from=")], "RUN")


def test_cloud_build_pushes_each_image_the_stack_runs_from_its_own_target(dev_plan: Plan) -> None:
    """The images the build config pushes, with the substitutions the script passes, are exactly the two the stack
    resolves (same source tag), each built from the Dockerfile target that runs it as its program expects."""
    config = yaml.safe_load((REPO_ROOT / BUILD_CONFIG).read_text())
    passed = re.search(r'--substitutions "([^"]+)"', BUILD_SCRIPT)
    assert passed and passed.group(1) == "_REGISTRY=$REGISTRY,_TAG=$TAG"
    values = {"_REGISTRY": dev_plan.outputs["registry"], "_TAG": source_tag()}

    def substituted(text: str) -> str:
        return SUBSTITUTION.sub(lambda m: values[m.group(1)], text)

    pushed = [substituted(image) for image in config["images"]]
    operator, runtime = dev_plan.outputs["operatorImage"], dev_plan.outputs["runtimeImage"]
    assert pushed == [operator, runtime]
    targets = {}
    for step in config["steps"]:
        args = [substituted(arg) for arg in step["args"]]
        assert step["name"] == "gcr.io/cloud-builders/docker" and args[-1] == "."
        assert args[:3] == ["build", "--file", "platform/operator/Dockerfile"]
        targets[args[args.index("--tag") + 1]] = args[args.index("--target") + 1]
    assert set(targets) == set(pushed)
    stages = dockerfile_stages()
    # The operator: its console script, as the user the restricted namespace's Deployment runs.
    assert instruction(stages[targets[operator]], "ENTRYPOINT") == '["modelplane-operator"]'
    assert instruction(stages[targets[operator]], "USER") == "65532:65532"
    assert installed(stages, targets[operator]).endswith("--constraint requirements.lock .")
    # The runtime: `python`, to which the operator passes `-m modelplane.capture` or `-m modelplane.monitor`, as the
    # user every tenant pod runs as.
    assert instruction(stages[targets[runtime]], "ENTRYPOINT") == '["python"]'
    assert instruction(stages[targets[runtime]], "USER") == f"{USER_ID}:{USER_ID}"
    assert installed(stages, targets[runtime]).endswith('--constraint requirements.lock ".[monitor]"')


def test_a_pinned_pair_of_images_is_not_built(dev_values: dict[str, Any]) -> None:
    digest = "@sha256:" + "a" * 64
    operator = f"ghcr.io/example/modelplane-operator:0.1.0{digest}"
    runtime = f"ghcr.io/example/modelplane-runtime:0.1.0{digest}"
    plan = run_program("dev", {**dev_values, "modelplane:images": {"operator": operator, "runtime": runtime}})
    assert plan.of_type("command:local:Command") == []
    assert (plan.outputs["operatorImage"], plan.outputs["runtimeImage"]) == (operator, runtime)
