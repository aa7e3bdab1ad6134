"""The operator's cluster facts come from the environment the stack's ConfigMap provides."""

import json

import pytest

from modelplane.cluster import ClusterFacts
from modelplane.layout import GpuPool


def test_facts_from_the_stack_outputs() -> None:
    facts = ClusterFacts.from_env({
        "MODELPLANE_PROJECT": "p", "MODELPLANE_BUCKET": "b", "MODELPLANE_REGISTRY": "r",
        "MODELPLANE_GPU_POOLS": json.dumps([
            {"name": "l4", "gpuType": "nvidia-l4", "gpusPerNode": 1, "spot": True, "machineType": "g2-standard-8"},
            {"name": "a100", "gpuType": "nvidia-tesla-a100", "gpusPerNode": 2, "spot": False}]),
        "MODELPLANE_WORKLOAD_KSA": "ml-workload",
        "MODELPLANE_BUILD_NAMESPACE": "builds",
    })
    assert facts.gpu_pools == (GpuPool("l4", "nvidia-l4", 1, True), GpuPool("a100", "nvidia-tesla-a100", 2, False))
    assert facts.gpu_types == ("nvidia-l4", "nvidia-tesla-a100")
    assert facts.workload_service_account == "ml-workload"
    assert facts.server_image.startswith("docker.io/vllm/vllm-openai:")
    assert facts.build_namespace == "builds"
    assert ClusterFacts.from_env({"MODELPLANE_PROJECT": "p", "MODELPLANE_BUCKET": "b", "MODELPLANE_REGISTRY": "r"}
                                 ).build_namespace == "modelplane-builds"


def test_missing_facts_are_named() -> None:
    with pytest.raises(ValueError, match="MODELPLANE_BUCKET, MODELPLANE_REGISTRY"):
        ClusterFacts.from_env({"MODELPLANE_PROJECT": "p"})
