"""Notebook: Jupyter with its inputs read-only and its workspace in the bucket; suspend frees the GPU, keeps work."""
from typing import Any

import kubernetes_validate

from modelplane.api.notebook import NotebookSpec
from modelplane.reconcile.common import RefState, RolloutState
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from tests.support.facts import DEV_CLUSTER, KUBERNETES_VERSION, owner

NOW = "2026-11-24T10:00:00Z"
SPEC = NotebookSpec.model_validate({"model": {"name": "m"}, "resources": {"gpu": {"type": "nvidia-l4"}}})
MODEL = {"model": RefState(found=True, ready=True, url="gs://b/ml/models/m/v1/")}


def by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in children}


def test_notebook_runs_jupyter_with_a_token_and_its_workspace() -> None:
    outcome = reconcile_notebook(owner("Notebook", "nb"), SPEC, {}, DEV_CLUSTER,
                                 NotebookObserved(refs=MODEL, new_token="s3cret"), NOW)
    children = by_kind(outcome.children)
    assert set(children) == {"Secret", "ConfigMap", "Service", "StatefulSet"}
    assert children["Secret"]["stringData"] == {"token": "s3cret"}
    assert children["Service"]["spec"]["clusterIP"] == "None"  # headless: no reachable address of its own
    sts = children["StatefulSet"]["spec"]
    assert sts["replicas"] == 1
    pod = sts["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "notebook-nb-token", "key": "token"}}} \
        in container["env"]
    assert container["ports"] == [{"name": "jupyter", "containerPort": 8888}]
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v["csi"] for v in pod["volumes"] if "csi" in v}
    assert volumes["workspace"]["readOnly"] is False and volumes["model"]["readOnly"] is True
    assert "only-dir=ml/notebooks/nb/workspace" in volumes["workspace"]["volumeAttributes"]["mountOptions"]
    assert outcome.status["tokenSecret"] == "notebook-nb-token" and outcome.status["port"] == 8888
    assert outcome.status["pod"] == "nb-0" and outcome.status["conditions"][0]["reason"] == "Starting"
    for child in outcome.children:
        kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


def test_suspend_scales_to_zero_and_keeps_the_workspace_mount() -> None:
    suspended = NotebookSpec.model_validate({**SPEC.model_dump(by_alias=True, exclude_none=True), "suspend": True})
    outcome = reconcile_notebook(owner("Notebook", "nb"), suspended, {}, DEV_CLUSTER,
                                 NotebookObserved(refs=MODEL), NOW)
    sts = by_kind(outcome.children)["StatefulSet"]["spec"]
    assert sts["replicas"] == 0
    assert outcome.status["conditions"][0]["reason"] == "Suspended" and outcome.status["pod"] is None


def test_running_when_the_pod_is_ready_and_waiting_for_inputs() -> None:
    running = reconcile_notebook(owner("Notebook", "nb"), SPEC, {}, DEV_CLUSTER,
                                 NotebookObserved(refs=MODEL, pods=RolloutState(1, 1, 1)), NOW)
    assert running.status["ready"] is True
    assert "kubectl port-forward pod/nb-0 8888:8888" in running.status["conditions"][0]["message"]
    waiting = reconcile_notebook(owner("Notebook", "nb"), SPEC, {}, DEV_CLUSTER, NotebookObserved(), NOW)
    assert waiting.status["conditions"][0]["reason"] == "ModelNotFound" and waiting.children == []


def test_a_quota_refusal_is_named_not_left_pending() -> None:
    refused = "pods \"nb-0\" is forbidden: exceeded quota: modelplane-gpus, requested: requests.nvidia.com/gpu=1"
    outcome = reconcile_notebook(owner("Notebook", "nb"), SPEC, {}, DEV_CLUSTER,
                                 NotebookObserved(refs=MODEL, pods_refused=refused), NOW)
    condition = outcome.status["conditions"][0]
    assert condition["reason"] == "QuotaExceeded" and refused in condition["message"]
    assert outcome.children  # the StatefulSet stays: the pod starts as soon as the quota allows
