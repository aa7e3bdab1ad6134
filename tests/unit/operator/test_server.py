"""ModelServer: waits for its Model, serves the last Ready weights, rolls when they change."""
import dataclasses
from typing import Any

import kubernetes_validate

from modelplane.api.modelserver import ModelServerSpec, PayloadLogging
from modelplane.capture.config import CaptureConfig
from modelplane.reconcile.common import RefState, RolloutState
from modelplane.reconcile.server import ServerObserved, reconcile_server
from tests.support.facts import DEV_CLUSTER, KUBERNETES_VERSION, owner

NOW = "2026-11-24T10:00:00Z"
SPEC = ModelServerSpec.model_validate({"model": {"name": "ft"}, "resources": {"gpu": {"type": "nvidia-l4"}}})
MODEL_V1 = RefState(found=True, ready=True, url="gs://b/ml/models/ft/v1/")
MODEL_V2 = RefState(found=True, ready=True, url="gs://b/ml/models/ft/v2/")


def by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in children}


def reason(status: dict[str, Any]) -> str:
    return str(status["conditions"][0]["reason"])


def test_waits_for_a_model_that_never_was_ready() -> None:
    missing = reconcile_server(owner("ModelServer", "s"), SPEC, {}, DEV_CLUSTER, ServerObserved(RefState(False)), NOW)
    assert reason(missing.status) == "ModelNotFound" and missing.children == []
    training = reconcile_server(owner("ModelServer", "s"), SPEC, {}, DEV_CLUSTER,
                                ServerObserved(RefState(found=True, ready=False)), NOW)
    assert reason(training.status) == "ModelNotReady" and training.children == []


def test_serves_the_model_read_only_on_8080_with_the_default_server() -> None:
    outcome = reconcile_server(owner("ModelServer", "s"), SPEC, {}, DEV_CLUSTER, ServerObserved(MODEL_V1), NOW)
    children = by_kind(outcome.children)
    assert set(children) == {"ConfigMap", "Deployment", "Service"}
    deployment = children["Deployment"]
    assert deployment["metadata"]["name"] == "s" and deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DEV_CLUSTER.server_image
    assert container["args"][:2] == ["--model", "/content/model"] and "8080" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    (model,) = [v for v in pod["volumes"] if "csi" in v]
    assert model["csi"]["readOnly"] is True
    assert "only-dir=ml/models/ft/v1" in model["csi"]["volumeAttributes"]["mountOptions"]
    assert pod["restartPolicy"] == "Always" and pod["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert pod["automountServiceAccountToken"] is False
    service = children["Service"]
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert reason(outcome.status) == "Deploying" and outcome.status["url"] == "http://s.ml.svc.cluster.local:8080"
    for child in outcome.children:
        kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


def test_ready_when_a_replica_is_available() -> None:
    outcome = reconcile_server(owner("ModelServer", "s"), SPEC, {}, DEV_CLUSTER,
                               ServerObserved(MODEL_V1, RolloutState(replicas=1, ready=1, available=1)), NOW)
    assert outcome.status["ready"] is True and reason(outcome.status) == "Serving"
    assert outcome.status["readyReplicas"] == 1


def test_a_retrained_model_rolls_the_deployment() -> None:
    def template(model: RefState) -> dict[str, Any]:
        outcome = reconcile_server(owner("ModelServer", "s"), SPEC, {}, DEV_CLUSTER, ServerObserved(model), NOW)
        tpl: dict[str, Any] = by_kind(outcome.children)["Deployment"]["spec"]["template"]
        return tpl

    before, after = template(MODEL_V1), template(MODEL_V2)
    assert before != after
    assert after["metadata"]["annotations"]["modelplane.dev/model-url"] == MODEL_V2.url


def test_custom_image_and_autoscaling() -> None:
    spec = ModelServerSpec.model_validate({"model": {"name": "ft"}, "image": "org/server:1",
                                           "autoscaling": {"minReplicas": 1, "maxReplicas": 4}})
    outcome = reconcile_server(owner("ModelServer", "s"), spec, {}, DEV_CLUSTER, ServerObserved(MODEL_V1), NOW)
    children = by_kind(outcome.children)
    assert "replicas" not in children["Deployment"]["spec"]  # the HPA owns the count
    hpa = children["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4) and hpa["scaleTargetRef"]["name"] == "s"
    container = children["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "args" not in container and container["readinessProbe"]["httpGet"]["path"] == "/"
    kubernetes_validate.validate(children["HorizontalPodAutoscaler"], KUBERNETES_VERSION, strict=True)
LOGGED = SPEC.model_copy(update={"logging": PayloadLogging.model_validate({"sampleRate": 0.5,
                                                                           "redact": {"fields": ["prompt"]}})})
VERSIONED = RefState(found=True, ready=True, url="gs://b/ml/models/ft/v4/", version=4)


def test_with_logging_the_capture_proxy_takes_the_service_port_and_the_server_moves_behind_it() -> None:
    outcome = reconcile_server(owner("ModelServer", "s"), LOGGED, {}, DEV_CLUSTER, ServerObserved(VERSIONED), NOW)
    children = by_kind(outcome.children)
    pod = children["Deployment"]["spec"]["template"]["spec"]
    main, capture = pod["containers"]
    # The model server listens on the pod's loopback: only the proxy reaches it, and probes and scrapes go through it.
    assert main["args"][-4:] == ["--host", "127.0.0.1", "--port", "8081"]
    assert {"name": "MODELPLANE_SERVER_HOST", "value": "127.0.0.1"} in main["env"]
    assert {"name": "MODELPLANE_SERVER_PORT", "value": "8081"} in main["env"]
    assert "ports" not in main and "readinessProbe" not in main
    assert capture["image"] == DEV_CLUSTER.runtime_image and capture["args"] == ["-m", "modelplane.capture"]
    assert {p["name"]: p["containerPort"] for p in capture["ports"]} == {"http": 8080, "payload-metrics": 9090}
    assert capture["readinessProbe"]["httpGet"] == {"path": "/-/capture/healthz", "port": 8080}
    assert children["Service"]["spec"]["ports"][0]["targetPort"] == 8080  # the proxy
    # What the proxy reads is what the spec said, for this server and this version.
    config = CaptureConfig.from_env({e["name"]: e["value"] for e in capture["env"]})
    assert (config.server, config.model_version, config.sample_rate, config.upstream, config.health_path) == (
        "s", 4, 0.5, "http://127.0.0.1:8081", "/health")
    assert config.redact.fields == ["prompt"] and config.directory == "/content/payloads"
    (payloads,) = [v for v in pod["volumes"] if v["name"] == "payloads"]
    assert payloads["csi"]["readOnly"] is False
    assert "only-dir=ml/modelservers/s/payloads," in payloads["csi"]["volumeAttributes"]["mountOptions"]
    assert capture["volumeMounts"] == [{"name": "payloads", "mountPath": "/content/payloads"}]
    assert not any(m["name"] == "payloads" for m in main["volumeMounts"])  # the server cannot touch the records
    for child in outcome.children:
        kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


def test_logging_without_the_runtime_image_is_refused_with_the_fix() -> None:
    bare = dataclasses.replace(DEV_CLUSTER, runtime_image="")
    refused = reconcile_server(owner("ModelServer", "s"), LOGGED, {}, bare, ServerObserved(VERSIONED), NOW)
    assert reason(refused.status) == "InvalidSpec" and "images.runtime" in refused.status["conditions"][0]["message"]
    assert refused.children == []
