"""Builders are pure: the manifests they make, checked field by field and against Kubernetes' own schemas."""

import json
from typing import Any

import kubernetes_validate
import pytest

from modelplane.api.common import Workload
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import ModelSpec
from modelplane.builders.job import BACKOFF_LIMIT, run_children
from modelplane.builders.workload import Mount, gpu_problem, param_env, user_env
from modelplane.cluster import ClusterFacts
from modelplane.layout import GpuPool
from modelplane.meta import child_name
from tests.support.facts import DEV_CLUSTER, KUBERNETES_VERSION, owner

TRAIN = ModelSpec.model_validate({
    "image": "trainer:1", "baseModel": {"name": "falcon-7b"}, "dataset": {"name": "squad"},
    "params": {"epochs": 1, "learningRate": 0.0002, "lora": True, "target": "q_proj"},
    "env": {"HF_TOKEN": "${{ secrets.huggingface.token }}", "MODE": "fast"},
    "resources": {"cpu": 8, "memory": "32Gi", "gpu": {"type": "nvidia-l4", "count": 1}},
})
MOUNTS = [Mount("artifacts", "ml/models/ft/v1/", "/content/artifacts", read_only=False),
          Mount("basemodel", "ml/models/falcon-7b/v1/", "/content/model", read_only=True),
          Mount("dataset", "ml/datasets/squad/v1/", "/content/data", read_only=True)]


def children(spec: Workload = TRAIN, cluster: ClusterFacts = DEV_CLUSTER) -> tuple[dict[str, Any], dict[str, Any]]:
    config_map, job = run_children(owner("Model", "ft"), spec, "trainer:1", cluster, MOUNTS, "model-ft-1")
    return config_map, job


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def test_job_is_bounded_owned_and_labelled() -> None:
    _, job = children()
    assert job["metadata"]["name"] == "model-ft-1"
    assert job["metadata"]["namespace"] == "ml"
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelplane"
    (ref,) = job["metadata"]["ownerReferences"]
    assert ref == {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "name": "ft", "uid": "uid-model-ft",
                   "controller": True, "blockOwnerDeletion": True}
    assert job["spec"]["backoffLimit"] == BACKOFF_LIMIT <= 3
    assert job["spec"]["ttlSecondsAfterFinished"] >= 24 * 3600
    assert pod(job)["restartPolicy"] == "Never"


def test_fuse_volumes_scope_each_prefix_and_protect_inputs() -> None:
    _, job = children()
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"
    volumes = {v["name"]: v for v in pod(job)["volumes"]}
    out, base, data = volumes["artifacts"]["csi"], volumes["basemodel"]["csi"], volumes["dataset"]["csi"]
    assert {out["driver"], base["driver"]} == {"gcsfuse.csi.storage.gke.io"}
    assert out["readOnly"] is False and base["readOnly"] is True and data["readOnly"] is True
    assert out["volumeAttributes"]["bucketName"] == DEV_CLUSTER.bucket
    assert "only-dir=ml/models/ft/v1" in out["volumeAttributes"]["mountOptions"]
    assert "only-dir=ml/models/falcon-7b/v1" in base["volumeAttributes"]["mountOptions"]
    assert "file-cache:enable-parallel-downloads:true" in base["volumeAttributes"]["mountOptions"]
    assert "file-cache" not in out["volumeAttributes"]["mountOptions"]
    mounts = {m["mountPath"]: m for m in pod(job)["containers"][0]["volumeMounts"]}
    assert mounts["/content/artifacts"]["readOnly"] is False
    assert mounts["/content/model"]["readOnly"] is True and mounts["/content/data"]["readOnly"] is True
    assert mounts["/content/params.json"]["subPath"] == "params.json"


@pytest.mark.parametrize(("disk", "per_input_mib", "limit"), [
    (None, 5120, "20Gi"),  # the default 20Gi: half for the cache, split between the base model and the dataset
    ("100G", 23841, "100G"),  # 10^11 bytes / 2 / 2 inputs, in MiB, rounded down
    (2**31, 512, "2147483648"),  # a number of bytes
])
def test_file_cache_is_bounded_by_half_the_pods_disk(disk: str | int | None, per_input_mib: int, limit: str) -> None:
    resources = {**TRAIN.resources.model_dump(by_alias=True, exclude_none=True), **({"disk": disk} if disk else {})}
    _, job = children(ModelSpec.model_validate({**TRAIN.model_dump(by_alias=True), "resources": resources}))
    options = {v["name"]: v["csi"]["volumeAttributes"]["mountOptions"].split(",") for v in pod(job)["volumes"]
               if "csi" in v}
    assert f"file-cache:max-size-mb:{per_input_mib}" in options["basemodel"]
    assert f"file-cache:max-size-mb:{per_input_mib}" in options["dataset"]
    assert not [o for o in options["artifacts"] if o.startswith("file-cache")]  # outputs are not cached
    assert pod(job)["containers"][0]["resources"]["limits"]["ephemeral-storage"] == limit


def test_params_reach_the_file_and_the_environment() -> None:
    config_map, job = children()
    assert json.loads(config_map["data"]["params.json"]) == TRAIN.params
    assert {v["name"] for v in pod(job)["volumes"] if "configMap" in v} == {"params"}
    assert pod(job)["volumes"][-1]["configMap"]["name"] == config_map["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in pod(job)["containers"][0]["env"]}
    assert env["PARAM_EPOCHS"] == "1" and env["PARAM_LEARNING_RATE"] == "0.0002"
    assert env["PARAM_LORA"] == "true" and env["PARAM_TARGET"] == "q_proj"


def test_param_names_become_upper_snake() -> None:
    assert [e["name"] for e in param_env({"hf-model.name": 1, "batchSize": 2, "max_len": 3})] == [
        "PARAM_BATCH_SIZE", "PARAM_HF_MODEL_NAME", "PARAM_MAX_LEN"]


def test_secret_references_become_secret_key_refs() -> None:
    assert user_env({"HF_TOKEN": "${{ secrets.huggingface.token }}", "MODE": "fast",
                     "ODD": "${{secrets.hub.api.key}}"}) == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "huggingface", "key": "token"}}},
        {"name": "MODE", "value": "fast"},
        {"name": "ODD", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "api.key"}}},
    ]


def test_gpu_request_schedules_on_the_pool() -> None:
    _, job = children()
    container = pod(job)["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"] == {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "20Gi"}
    assert pod(job)["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    tolerations = pod(job)["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true",
            "effect": "NoSchedule"} in tolerations


def test_on_demand_pool_gets_no_spot_toleration_and_cpu_work_no_gpu() -> None:
    on_demand = ClusterFacts(project="p", bucket="b", registry="r", gpu_pools=(GpuPool("l4", "nvidia-l4", 1, False),))
    _, job = children(cluster=on_demand)
    assert all(t["key"] != "cloud.google.com/gke-spot" for t in pod(job)["tolerations"])
    _, cpu_job = children(spec=DatasetSpec.model_validate({"image": "loader:1"}))
    assert "nodeSelector" not in pod(cpu_job) and "tolerations" not in pod(cpu_job)
    assert "nvidia.com/gpu" not in pod(cpu_job)["containers"][0]["resources"]["limits"]


def test_workload_runs_as_non_root_with_workload_identity() -> None:
    _, job = children()
    assert pod(job)["serviceAccountName"] == "modelplane-workload"
    assert pod(job)["automountServiceAccountToken"] is False  # Workload Identity and GCS FUSE need no API token
    security = pod(job)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 1000 and security["fsGroup"] == 1000
    container = pod(job)["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize(("gpu", "problem"), [
    ({"type": "nvidia-h100-80gb"}, "nvidia-h100-80gb is not offered by this cluster; offered GPU types: "
                                   "nvidia-l4, nvidia-tesla-a100"),
    ({"type": "nvidia-l4", "count": 4}, "count 4 exceeds the 1 nvidia-l4 GPUs per node"),
    ({"type": "nvidia-l4", "count": 1}, None),
])
def test_gpu_problems_name_what_is_offered(gpu: dict[str, Any], problem: str | None) -> None:
    spec = DatasetSpec.model_validate({"image": "x", "resources": {"gpu": gpu}})
    found = gpu_problem(spec, DEV_CLUSTER)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_long_names_are_shortened_deterministically() -> None:
    long = owner("Dataset", "d" * 60, generation=12)
    name = child_name(long, 12)
    assert len(name) <= 63 and name == child_name(long, 12) and name != child_name(owner("Dataset", "d" * 59, 12), 12)
    assert child_name(owner("Model", "m"), 3, "params") == "model-m-3-params"


@pytest.mark.parametrize("spec", [TRAIN, DatasetSpec.model_validate({"image": "loader:1", "command": ["python"]})],
                         ids=["training-job", "cpu-loader"])
def test_every_manifest_is_valid_kubernetes(spec: Workload) -> None:
    for manifest in children(spec):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(("cpu", "rendered"), [(0.5, "0.5"), (4, "4"), ("500m", "500m"), (1e-7, "0.0000001"),
                                              (2.0, "2")])
def test_quantities_render_as_kubernetes_quantity_strings(cpu: float | int | str, rendered: str) -> None:
    """A YAML number (`cpu: 0.5`, as in Pod specs) becomes a plain decimal quantity, never `5e-01`."""
    _, job = children(ModelSpec.model_validate({**TRAIN.model_dump(by_alias=True), "resources": {"cpu": cpu}}))
    assert pod(job)["containers"][0]["resources"]["requests"]["cpu"] == rendered
