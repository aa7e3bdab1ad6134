"""What serves a Model: a Deployment (rolling, a replica always serving), a ClusterIP Service, optionally an HPA.

Named after the ModelServer itself, so `kubectl port-forward service/<name> 8080:8080` just works.
"""

from __future__ import annotations

from typing import Any

from modelplane.api.modelserver import ModelServerSpec
from modelplane.builders.workload import MODEL_PATH, Mount, container_security, params_config_map, pod_template
from modelplane.capture.config import (
    PAYLOADS_DIR,
    PROXY_HEALTH_PATH,
    PROXY_PORT,
    UPSTREAM_HOST,
    UPSTREAM_PORT,
    CaptureConfig,
)
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner, child_name, labels, metadata
from modelplane.names import CAPTURE_METRICS_PORT, CAPTURE_METRICS_PORT_NAME, SERVER_PORT_NAME

PORT = PROXY_PORT  # the Service's port: the model server's, or the capture proxy's in front of it
SERVER_LABEL = "modelplane.dev/server"
MODEL_URL_ANNOTATION = "modelplane.dev/model-url"
SERVER_PORT_ENV = "MODELPLANE_SERVER_PORT"  # behind the capture proxy, where a server image must listen
SERVER_HOST_ENV = "MODELPLANE_SERVER_HOST"
# The capture proxy holds at most its queue (16 MiB by default) beside aiohttp's own few tens of MiB.
CAPTURE_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
                     "limits": {"memory": "256Mi", "ephemeral-storage": "64Mi"}}


def default_server_args(model_name: str, host: str = "0.0.0.0", port: int = PORT) -> list[str]:
    """The default image is an OpenAI-compatible server (vLLM) reading the weights from /content/model."""
    return ["--model", MODEL_PATH, "--served-model-name", model_name, "--host", host, "--port", str(port)]


def capture_container(owner: Owner, spec: ModelServerSpec, version: int | None, image: str,
                      health_path: str) -> dict[str, Any]:
    """The capture proxy: on the Service's port, in front of the model server, writing to the payloads mount. Its
    readiness is the model server's, asked through it (the server listens on the pod's loopback only)."""
    assert spec.logging is not None
    logging = spec.logging
    config = CaptureConfig(server=owner.name, model_version=version, sample_rate=logging.sample_rate,
                           redact=logging.redact, max_body_bytes=logging.max_body_bytes,
                           batch_records=logging.batch_records, flush_seconds=logging.flush_seconds,
                           health_path=health_path)
    return {
        "name": "capture", "image": image, "args": ["-m", "modelplane.capture"],
        "env": [{"name": k, "value": v} for k, v in sorted(config.to_env().items())],
        "ports": [{"name": SERVER_PORT_NAME, "containerPort": PROXY_PORT},
                  {"name": CAPTURE_METRICS_PORT_NAME, "containerPort": CAPTURE_METRICS_PORT}],
        "readinessProbe": {"httpGet": {"path": PROXY_HEALTH_PATH, "port": PROXY_PORT}, "periodSeconds": 10,
                           "timeoutSeconds": 6, "failureThreshold": 3},
        "resources": CAPTURE_RESOURCES,
        "volumeMounts": [{"name": "payloads", "mountPath": PAYLOADS_DIR}],
        "securityContext": {**container_security(), "readOnlyRootFilesystem": True},
    }


def server_children(owner: Owner, spec: ModelServerSpec, image: str, default_image: bool, model_prefix: str,
                    model_url: str, cluster: ClusterFacts, version: int | None = None,
                    payloads: str = "") -> list[dict[str, Any]]:
    """ConfigMap, Deployment, Service (and HPA) serving the weights at `model_prefix` (`version` of the Model);
    with `logging`, the capture proxy in front, writing to the bucket prefix `payloads`. The model server then
    listens on UPSTREAM_HOST:UPSTREAM_PORT, the pod's loopback, which SERVER_HOST_ENV and SERVER_PORT_ENV tell it
    (the default image by its arguments too): no other pod reaches it past the proxy."""
    selector = {SERVER_LABEL: owner.name}
    pod_labels = {**labels(owner, generation=False), **selector}
    config_map = params_config_map(metadata(owner, child_name(owner, "params"), generation=False), spec.params)
    captured = spec.logging is not None
    health = "/health" if default_image else "/"
    host, port = (UPSTREAM_HOST, UPSTREAM_PORT) if captured else ("0.0.0.0", PORT)
    probe = {"httpGet": {"path": health, "port": port}, "periodSeconds": 10, "failureThreshold": 3}
    env = {**spec.env, SERVER_HOST_ENV: host, SERVER_PORT_ENV: str(port)} if captured else spec.env
    template = pod_template(
        labels=pod_labels, image=image, spec=spec.model_copy(update={"env": env}), cluster=cluster,
        mounts=[Mount("model", model_prefix, MODEL_PATH, read_only=True)],
        params_config_map=config_map["metadata"]["name"],
        args=default_server_args(spec.model.name, host, port) if default_image and not spec.command else None,
        # Behind the proxy, the server is reached (probed, scraped) only through it.
        ports=None if captured else [{"name": SERVER_PORT_NAME, "containerPort": port}],
        probe=None if captured else probe, restart_policy="Always",
        # A retrained Model changes this URL, and with it the template: the Deployment rolls to the new weights.
        annotations={MODEL_URL_ANNOTATION: model_url},
        sidecars=[capture_container(owner, spec, version, cluster.runtime_image, health)] if captured else None,
        sidecar_mounts=[Mount("payloads", payloads, PAYLOADS_DIR, read_only=False)] if captured else None)
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
