"""Bad stack config fails before any resource is planned, with a message that names the key and the fix."""

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main
from infra.config import ConfigError, parse_pulumi_config, parse_stack_config
from infra.offline import STACKS_DIR, Plan, read_stack_values, run_program

Values = dict[str, Any]


def pool(values: Values, index: int = 0) -> dict[str, Any]:
    pools: list[dict[str, Any]] = values["modelplane:gpuPools"]
    return pools[index]


DIGEST = "sha256:" + "a" * 64
OPERATOR = f"ghcr.io/example/modelplane-operator:0.1.0@{DIGEST}"
RUNTIME = f"ghcr.io/example/modelplane-runtime:0.1.0@{DIGEST}"

BAD_CONFIGS: list[tuple[str, Callable[[Values], None], str, str]] = [
    ("missing project", lambda v: v.pop("modelplane:project"), "modelplane:project", "required"),
    ("malformed project", lambda v: v.update({"modelplane:project": "My_Project"}), "modelplane:project",
     "is not a GCP project id"),
    ("misspelt key", lambda v: v.update({"modelplane:gpuPool": []}), "modelplane:gpuPool",
     "did you mean 'gpuPools'"),
    ("bad region", lambda v: v.update({"modelplane:region": "uscentral"}), "modelplane:region",
     "is not a GCP region"),
    ("zone of another region", lambda v: v.update({"modelplane:zones": ["europe-west4-a"]}), "modelplane:zones",
     "is not a zone of region us-central1"),
    ("unknown release channel", lambda v: v.update({"modelplane:releaseChannel": "FAST"}),
     "modelplane:releaseChannel", "use one of RAPID, REGULAR, STABLE, EXTENDED"),
    ("unknown GPU type", lambda v: pool(v).update({"gpuType": "nvidia-a10"}), "modelplane:gpuPools[0].gpuType",
     "use one of nvidia-l4, nvidia-tesla-a100"),
    ("machine type without that GPU", lambda v: pool(v).update({"machineType": "a2-highgpu-1g"}),
     "modelplane:gpuPools[0].machineType", "does not carry 1 x nvidia-l4; use one of g2-standard-8"),
    ("GPU count no shape offers", lambda v: pool(v).update({"gpusPerNode": 3, "machineType": None}),
     "modelplane:gpuPools[0].gpusPerNode", "nvidia-l4 comes 1, 2, 4, 8 per node, not 3"),
    ("fractional H100 on demand", lambda v: pool(v).update(
        {"gpuType": "nvidia-h100-80gb", "machineType": None, "spot": False}),
     "modelplane:gpuPools[0].gpusPerNode", "exists only as Spot capacity"),
    ("min above max", lambda v: pool(v, 1).update({"minNodes": 3, "maxNodes": 1}),
     "modelplane:gpuPools[1].maxNodes", "1 is below minNodes 3"),
    ("duplicate pool name", lambda v: pool(v, 1).update({"name": "l4"}), "modelplane:gpuPools",
     "pool name 'l4' is used twice"),
    ("unknown pool key", lambda v: pool(v).update({"gpus": 2}), "modelplane:gpuPools[0].gpus",
     "did you mean 'gpusPerNode'"),
    ("wrong value type", lambda v: pool(v).update({"maxNodes": "two"}), "modelplane:gpuPools[0].maxNodes",
     "expected an integer, got 'two'"),
    ("cluster name too long", lambda v: v.update({"modelplane:clusterName": "modelplane-development-x"}),
     "modelplane:clusterName", "at most 21 characters"),
    ("overlapping ranges", lambda v: v.update({"modelplane:network": {"podsCidr": "10.10.0.0/16"}}),
     "modelplane:network.podsCidr", "overlaps subnetCidr 10.10.0.0/20"),
    ("bad authorized network", lambda v: v.update(
        {"modelplane:masterAuthorizedNetworks": [{"name": "office", "cidr": "203.0.113.0/33"}]}),
     "modelplane:masterAuthorizedNetworks[0].cidr", "is not a CIDR block"),
    ("build pool min above max", lambda v: v.update({"modelplane:buildPool": {"minNodes": 3, "maxNodes": 2}}),
     "modelplane:buildPool.maxNodes", "2 is below minNodes 3"),
    ("build pool negative min", lambda v: v.update({"modelplane:buildPool": {"minNodes": -1}}),
     "modelplane:buildPool.minNodes", "-1 is out of range; use 0..100"),
    ("unknown build pool key", lambda v: v.update({"modelplane:buildPool": {"machine": "e2-standard-8"}}),
     "modelplane:buildPool.machine", "did you mean 'machineType'"),
    ("GPU pool named like a CPU pool", lambda v: pool(v).update({"name": "builds"}), "modelplane:gpuPools[0].name",
     "'builds' is the name of a CPU pool"),
    ("build namespace as tenant", lambda v: v.update({"modelplane:tenants": ["modelplane-builds"]}),
     "modelplane:tenants[0].name", "'modelplane-builds' is a system namespace"),
    ("system namespace as tenant", lambda v: v.update({"modelplane:tenants": ["ml", "kube-system"]}),
     "modelplane:tenants[1].name", "'kube-system' is a system namespace"),
    ("tenant named after the uploads folder", lambda v: v.update({"modelplane:tenants": ["ml", "uploads"]}),
     "modelplane:tenants[1].name", "'uploads' is a top-level folder of the artifacts bucket"),
    ("tenant name too long for its repository", lambda v: v.update({"modelplane:tenants": ["t" * 42]}),
     "modelplane:tenants[0].name", "at most 41 characters"),
    ("tenant member that is no IAM principal", lambda v: v.update(
        {"modelplane:tenants": [{"name": "ml", "members": ["ada@example.com"]}]}),
     "modelplane:tenants[0].members[0]", "'ada@example.com' is not an IAM principal such as user:"),
    ("group member without Google Groups for RBAC", lambda v: v.update(
        {"modelplane:tenants": [{"name": "ml", "members": ["group:ml@example.com"]}]}),
     "modelplane:rbacSecurityGroup", "required when a tenant member is a group"),
    ("RBAC group GKE would not accept", lambda v: v.update({"modelplane:rbacSecurityGroup": "ml@example.com"}),
     "modelplane:rbacSecurityGroup", "gke-security-groups@<your domain>"),
    ("no tenants", lambda v: v.update({"modelplane:tenants": []}),
     "modelplane:tenants", "needs at least one namespace"),
    ("server image by tag only", lambda v: v.update({"modelplane:images": {"server": "vllm/vllm-openai:latest"}}),
     "modelplane:images.server", "is not pinned by digest"),
    ("operator image by tag outside the platform repository", lambda v: v.update(
        {"modelplane:images": {"operator": "ghcr.io/someone/operator:1"}}),
     "modelplane:images.operator", "is not pinned by digest"),
    ("runtime image by tag only", lambda v: v.update({"modelplane:images": {
        "operator": OPERATOR, "runtime": "ghcr.io/example/modelplane-runtime:0.1.0"}}),
     "modelplane:images.runtime", "is not pinned by digest"),
    ("operator image without its runtime", lambda v: v.update({"modelplane:images": {"operator": OPERATOR}}),
     "modelplane:images.runtime", "set with images.operator, from the same release, or neither"),
    ("runtime image without its operator", lambda v: v.update({"modelplane:images": {"runtime": RUNTIME}}),
     "modelplane:images.runtime", "images.operator is not set, images.runtime ghcr.io/example/modelplane-runtime"),
    ("runtime image in a tenant's repository", lambda v: v.update({"modelplane:images": {
        "operator": OPERATOR, "runtime": f"us-central1-docker.pkg.dev/modelplane-dev/modelplane-dev-ml/x@{DIGEST}"}}),
     "modelplane:images.runtime", "lies in a tenant's repository"),
    ("unknown Binary Authorization mode", lambda v: v.update({"modelplane:binaryAuthorization": {"mode": "audit"}}),
     "modelplane:binaryAuthorization.mode", "use one of enforce, dryrun, off"),
    ("label value GCP refuses", lambda v: v["modelplane:labels"].update({"team": "ML Platform"}),
     "modelplane:labels.team", "a GCP label value is lower-case"),
    ("soft delete outside GCS range", lambda v: v.update({"modelplane:buckets": {"softDeleteDays": 3}}),
     "modelplane:buckets.softDeleteDays", "use 0 (off) or 7..90"),
    ("maintenance time not RFC 3339", lambda v: v.update({"modelplane:maintenanceWindow": {"startTime": "2am"}}),
     "modelplane:maintenanceWindow.startTime", "is not an RFC 3339 UTC time"),
    ("system pool size that does not exist", lambda v: v["modelplane:systemPool"].update(
        {"machineType": "e2-standard-64"}), "modelplane:systemPool.machineType",
     "e2-standard comes with 2, 4, 8, 16, 32 vCPUs"),
    ("empty section", lambda v: v.update({"modelplane:buckets": None}), "modelplane:buckets", "has no value"),
    ("yes for a boolean", lambda v: pool(v).update({"spot": "yes"}), "modelplane:gpuPools[0].spot",
     "expected true or false, got 'yes'"),
    ("queued provisioning on spot", lambda v: pool(v, 1).update({"queuedProvisioning": True}),
     "modelplane:gpuPools[1].queuedProvisioning", "cannot be combined with Spot VMs: set spot: false"),
    ("queued provisioning of a GPU GKE does not queue", lambda v: pool(v).update(
        {"queuedProvisioning": True, "spot": False}), "modelplane:gpuPools[0].queuedProvisioning",
     "serves nvidia-tesla-a100, nvidia-a100-80gb, nvidia-h100-80gb, not nvidia-l4"),
    ("queued provisioning with standing nodes", lambda v: pool(v, 1).update(
        {"queuedProvisioning": True, "spot": False, "minNodes": 1}), "modelplane:gpuPools[1].queuedProvisioning",
     "set minNodes: 0"),
    ("quota of a pool that does not exist", lambda v: v.update({"modelplane:queueing": {"pools": {"h100": {}}}}),
     "modelplane:queueing", "pools.h100: no GPU pool is named 'h100'; quotas are keyed by gpuPools' names (l4, a100)"),
    ("cohort that is not a name", lambda v: v.update({"modelplane:queueing": {"cohort": "GPU Pool"}}),
     "modelplane:queueing.cohort", "must be lower-case letters"),
]


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


def test_every_bad_config_class_has_its_own_message() -> None:
    assert len(BAD_CONFIGS) >= 12
    assert len({(key, fragment) for _, _, key, fragment in BAD_CONFIGS}) == len(BAD_CONFIGS)


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


def test_only_the_project_is_required() -> None:
    config = parse_stack_config({"project": "my-ml-project"}, stack="sandbox")
    assert config.cluster_name == "modelplane-sandbox"
    assert config.region == "us-central1" and config.zones == ("us-central1-a", "us-central1-c")
    assert config.private_nodes and config.dns_endpoint and not config.deletion_protection
    assert [(p.name, p.gpu_type, p.machine_type, p.min_nodes, p.spot) for p in config.gpu_pools] == [
        ("l4", "nvidia-l4", "g2-standard-8", 0, True)]
    assert config.tenant_names == ("ml",)
    build = config.build_pool
    assert (build.machine_type, build.min_nodes, build.max_nodes, build.disk_size_gb) == ("e2-standard-4", 0, 2, 200)


def test_pulumi_strings_are_decoded() -> None:
    """`pulumi config set` stores scalars as strings; they parse like YAML-typed values."""
    config = parse_stack_config({"project": "my-ml-project", "deletionProtection": "true",
                                 "systemPool": {"minNodes": "2", "maxNodes": "4"}}, stack="dev")
    assert config.deletion_protection is True
    assert (config.system_pool.min_nodes, config.system_pool.max_nodes) == (2, 4)


def test_gpu_pool_defaults_to_stack_zones_and_catalogue_machine() -> None:
    config = parse_stack_config({"project": "my-ml-project", "zones": ["us-central1-b"],
                                 "gpuPools": [{"name": "a100x8", "gpuType": "nvidia-tesla-a100", "gpusPerNode": 8}]},
                                stack="dev")
    (only,) = config.gpu_pools
    assert only.machine_type == "a2-highgpu-8g" and only.zones == ("us-central1-b",)
    assert config.gpu_types == ("nvidia-tesla-a100",)


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


def test_pulumi_settings_are_not_refused() -> None:
    config = parse_pulumi_config({"modelplane:project": "my-ml-project", "pulumi:tags": "{}"}, stack="dev")
    assert config.project == "my-ml-project"


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


@pytest.mark.parametrize("stack", ["staging-w-east", "Staging_West"])
def test_default_cluster_name_is_a_valid_name(stack: str) -> None:
    name = parse_stack_config({"project": "my-ml-project"}, stack=stack).cluster_name
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,19}[a-z0-9])?", name), name
    assert name.startswith("modelplane-")
