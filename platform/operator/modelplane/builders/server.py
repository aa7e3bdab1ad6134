"""What serves a Model: a Deployment (rolling, a replica always serving), a ClusterIP Service, optionally an HPA.

Named after the ModelServer itself, so `kubectl port-forward service/<name> 8080:8080` just works.
"""

from __future__ import annotations

from typing import Any

from modelplane.api.modelserver import ModelServerSpec
from modelplane.builders.workload import MODEL_PATH, Mount, params_config_map, pod_template
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner, child_name, labels, metadata

PORT = 8080
SERVER_LABEL = "modelplane.dev/server"
MODEL_URL_ANNOTATION = "modelplane.dev/model-url"


def default_server_args(model_name: str) -> list[str]:
    """The default image is an OpenAI-compatible server (vLLM) reading the weights from /content/model."""
    return ["--model", MODEL_PATH, "--served-model-name", model_name, "--host", "0.0.0.0", "--port", str(PORT)]


def server_children(owner: Owner, spec: ModelServerSpec, image: str, default_image: bool, model_prefix: str,
                    model_url: str, cluster: ClusterFacts) -> list[dict[str, Any]]:
    """ConfigMap, Deployment, Service (and HPA) serving the weights at `model_prefix`."""
    selector = {SERVER_LABEL: owner.name}
    pod_labels = {**labels(owner, generation=False), **selector}
    config_map = params_config_map(metadata(owner, child_name(owner, "params"), generation=False), spec.params)
    probe = {"httpGet": {"path": "/health" if default_image else "/", "port": PORT}, "periodSeconds": 10,
             "failureThreshold": 3}
    template = pod_template(
        labels=pod_labels, image=image, spec=spec, cluster=cluster,
        mounts=[Mount("model", model_prefix, MODEL_PATH, read_only=True)],
        params_config_map=config_map["metadata"]["name"],
        args=default_server_args(spec.model.name) if default_image and not spec.command else None,
        ports=[{"name": "http", "containerPort": PORT}], probe=probe, restart_policy="Always",
        # A retrained Model changes this URL, and with it the template: the Deployment rolls to the new weights.
        annotations={MODEL_URL_ANNOTATION: model_url})
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        # The Deployment controller marks a rollout that is not done by then ProgressDeadlineExceeded: the
        # operator then rolls back to the last good version (reconcile/server.py).
        "progressDeadlineSeconds": spec.rollout_deadline_seconds,
        "template": template,
    }
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.replicas  # with autoscaling the HPA owns the count
    children = [
        config_map,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(owner, owner.name, generation=False),
         "spec": deployment_spec},
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, owner.name, generation=False),
         "spec": {"type": "ClusterIP", "selector": selector,
                  "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}]}},
    ]
    if spec.autoscaling:
        scaling = spec.autoscaling
        children.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(owner, owner.name, generation=False),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.name},
                     "minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": scaling.target_cpu_utilization}}}]},
        })
    return children


def service_url(owner: Owner) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc.cluster.local:{PORT}"
