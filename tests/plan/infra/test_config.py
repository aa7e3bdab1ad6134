"""Bad stack config fails before any resource is planned, with a message that names the key and the fix."""
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main
from infra.config import ConfigError
from infra.offline import STACKS_DIR, Plan, read_stack_values, run_program
from tests.support.stack_cases import BAD_CONFIGS, Values, pool


@pytest.mark.parametrize(("mutate", "key", "fragment"), [case[1:] for case in BAD_CONFIGS],
                         ids=[case[0] for case in BAD_CONFIGS])
def test_bad_config_is_named_and_nothing_is_planned(dev_values: Values, mutate: Callable[[Values], None], key: str,
                                                   fragment: str) -> None:
    values = copy.deepcopy(dev_values)
    mutate(values)
    plan = Plan(stack="dev")
    with pytest.raises(ConfigError) as raised:
        run_program("dev", values, plan)
    matching = [p for p in raised.value.problems if p.startswith(f"{key}: ")]
    assert matching, f"no problem for {key} in {raised.value.problems}"
    assert fragment in matching[0]
    assert plan.resources == []


def test_all_problems_are_reported_at_once(dev_values: Values) -> None:
    values = copy.deepcopy(dev_values)
    values.update({"modelplane:region": "nowhere", "modelplane:releaseChannel": "FAST",
                   "modelplane:tenants": ["Bad_NS"]})
    pool(values).update({"gpuType": "nvidia-a10"})
    with pytest.raises(ConfigError) as raised:
        run_program("dev", values)
    keys = {problem.split(": ")[0] for problem in raised.value.problems}
    assert {"modelplane:region", "modelplane:releaseChannel", "modelplane:tenants[0].name",
            "modelplane:gpuPools[0].gpuType"} <= keys
    assert str(raised.value).count("\n  - ") == len(raised.value.problems)


def dev_file(mutate: Callable[[dict[str, Any]], None]) -> str:
    """stacks/Pulumi.dev.yaml with `mutate` applied to its document, as a stack file's text."""
    document = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())
    mutate(document)
    return yaml.safe_dump(document, sort_keys=False)


def dev_config(key: str, value: Any) -> str:
    return dev_file(lambda document: document["config"].update({key: value}))


def dev_pool_named(name: str) -> str:
    return dev_file(lambda document: document["config"]["modelplane:gpuPools"][0].update({"name": name}))


# Stack files with one mistake each, the key the error names ({file}: the stack file, for problems of the file
# itself), and what the message says.
BAD_FILES: list[tuple[str, str, str, str]] = [
    ("GPU pool named system", dev_pool_named("system"), "modelplane:gpuPools[0].name", "is the name of a CPU pool"),
    ("GPU pool named builds", dev_pool_named("builds"), "modelplane:gpuPools[0].name", "is the name of a CPU pool"),
    ("zone that does not exist", dev_config("modelplane:zones", ["us-central1-a", "us-central1-z"]), "modelplane:zones",
     "'us-central1-z' is not a zone of region us-central1; its zones are us-central1-a, us-central1-b"),
    ("misspelt region", dev_config("modelplane:region", "us-centrall1"), "modelplane:region",
     "'us-centrall1' is not a GCP region; did you mean us-central1?"),
    ("system pool machine type that does not exist",
     dev_config("modelplane:systemPool", {"machineType": "e2-huge-999"}), "modelplane:systemPool.machineType",
     "'e2-huge-999' is not a general-purpose machine type; use <family>-<standard|highmem|highcpu>-<vCPUs>"),
    ("GPU machine type for the build pool", dev_config("modelplane:buildPool", {"machineType": "g2-standard-8"}),
     "modelplane:buildPool.machineType", "'g2-standard-8' is a GPU machine type (it comes with nvidia-l4)"),
    ("A100 machine type for the system pool", dev_config("modelplane:systemPool", {"machineType": "a2-highgpu-1g"}),
     "modelplane:systemPool.machineType", "'a2-highgpu-1g' is a GPU machine type"),
    ("key without the namespace", dev_config("region", "us-east1"), "region",
     "not a modelplane: key, so nothing would read it (this program reads only modelplane: keys); "
     "write modelplane:region"),
    ("GCP provider key", dev_config("gcp:region", "us-east1"), "gcp:region",
     "(the GCP provider is configured from modelplane:project and modelplane:region); write modelplane:region"),
    ("section key at the top level", dev_config("modelplane:machineType", "e2-standard-8"), "modelplane:machineType",
     "unknown key; machineType is a key of systemPool, buildPool, gpuPools: indent it under one of them"),
    ("config key outside config:", "config:\n  modelplane:project: modelplane-dev\nmodelplane:region: us-east1\n",
     "{file}:3", "'modelplane:region' is outside `config:` and nothing reads it; indent it under `config:`"),
    ("no tenants", dev_config("modelplane:tenants", []), "modelplane:tenants", "needs at least one namespace"),
    ("YAML syntax error", "config:\n  modelplane:project: modelplane-dev\n  modelplane:zones: [us-central1-a\n",
     "{file}:4:1", "not valid YAML"),
    ("config written as a list", "config:\n  - modelplane:project: modelplane-dev\n", "{file}:2",
     "`config:` must be a mapping of keys such as modelplane:project, not a list"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [case[1:] for case in BAD_FILES],
                         ids=[case[0] for case in BAD_FILES])
def test_bad_stack_file_exits_2_naming_the_key_and_plans_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, fragment: str) -> None:
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(text)
    assert main(["plan", "--stack", "broken", "--stacks-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    problems = [line for line in captured.err.splitlines() if line.startswith(f"  - {key.format(file=path)}: ")]
    assert problems, captured.err
    assert fragment in problems[0]
    assert f"Nothing was planned. Fix the keys above in {path} " in captured.err
    assert "Traceback" not in captured.err


def planned_names(plan: Plan) -> set[tuple[str, str]]:
    """The globally or project-wide unique names a stack's resources take in GCP."""
    named = {"gcp:container/cluster:Cluster": "name", "gcp:storage/bucket:Bucket": "name",
             "gcp:serviceaccount/account:Account": "accountId",
             "gcp:artifactregistry/repository:Repository": "repositoryId", "gcp:kms/keyRing:KeyRing": "name"}
    return {(type_, str(resource.inputs[key])) for type_, key in named.items() for resource in plan.of_type(type_)}


def test_stacks_whose_default_names_would_be_cut_alike_share_no_resource_name(tmp_path: Path) -> None:
    text = dev_config("modelplane:secretsEncryption", True)  # so each stack has its KMS key ring
    names = {}
    for stack in ("staging-west", "staging-west2"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(text)
        names[stack] = planned_names(run_program(stack, read_stack_values(stack, tmp_path)))
    assert {type_ for type_, _ in names["staging-west"]} == {
        "gcp:container/cluster:Cluster", "gcp:storage/bucket:Bucket", "gcp:serviceaccount/account:Account",
        "gcp:artifactregistry/repository:Repository", "gcp:kms/keyRing:KeyRing"}
    assert names["staging-west"].isdisjoint(names["staging-west2"])
