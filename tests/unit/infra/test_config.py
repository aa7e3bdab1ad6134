"""Bad stack config fails before any resource is planned, with a message that names the key and the fix."""
import re

import pytest

from infra.config import parse_pulumi_config, parse_stack_config
from tests.support.stack_cases import BAD_CONFIGS


def test_every_bad_config_class_has_its_own_message() -> None:
    assert len(BAD_CONFIGS) >= 12
    assert len({(key, fragment) for _, _, key, fragment in BAD_CONFIGS}) == len(BAD_CONFIGS)


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


def test_pulumi_settings_are_not_refused() -> None:
    config = parse_pulumi_config({"modelplane:project": "my-ml-project", "pulumi:tags": "{}"}, stack="dev")
    assert config.project == "my-ml-project"


@pytest.mark.parametrize("stack", ["staging-w-east", "Staging_West"])
def test_default_cluster_name_is_a_valid_name(stack: str) -> None:
    name = parse_stack_config({"project": "my-ml-project"}, stack=stack).cluster_name
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,19}[a-z0-9])?", name), name
    assert name.startswith("modelplane-")
