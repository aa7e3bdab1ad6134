"""Bad stack config fails before any resource is planned, with a message that names the key and the fix."""

import copy
from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.offline import Plan, run_program

Values = dict[str, Any]


def pool(values: Values, index: int = 0) -> dict[str, Any]:
    pools: list[dict[str, Any]] = values["modelplane:gpuPools"]
    return pools[index]


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
     "expected int, got 'two'"),
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
     "modelplane:tenants[0].members", "'ada@example.com' is not an IAM principal such as user:"),
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
    ("unknown Binary Authorization mode", lambda v: v.update({"modelplane:binaryAuthorization": {"mode": "audit"}}),
     "modelplane:binaryAuthorization.mode", "use one of enforce, dryrun, off"),
    ("label value GCP refuses", lambda v: v["modelplane:labels"].update({"team": "ML Platform"}),
     "modelplane:labels.team", "a GCP label value is lower-case"),
    ("soft delete outside GCS range", lambda v: v.update({"modelplane:buckets": {"softDeleteDays": 3}}),
     "modelplane:buckets.softDeleteDays", "use 0 (off) or 7..90"),
    ("maintenance time not RFC 3339", lambda v: v.update({"modelplane:maintenanceWindow": {"startTime": "2am"}}),
     "modelplane:maintenanceWindow.startTime", "is not an RFC 3339 UTC time"),
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
    assert {"modelplane:region", "modelplane:releaseChannel", "modelplane:tenants",
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
