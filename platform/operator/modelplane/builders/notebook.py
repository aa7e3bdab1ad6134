"""What runs a Notebook: a one-replica StatefulSet (zero when suspended), its headless Service, its token Secret.

The workspace is the Notebook's own bucket prefix mounted at /content/artifacts, so suspending (or losing the
node) loses nothing; inputs are mounted read-only. No ingress, no public IP: users port-forward.
"""

from __future__ import annotations

from typing import Any

from modelplane.activity.report import ACTIVITY_DIR
from modelplane.api.notebook import NotebookSpec
from modelplane.builders.workload import (
    ARTIFACTS_PATH,
    Mount,
    container_security,
    params_config_map,
    pod_template,
)
from modelplane.cluster import ClusterFacts
from modelplane.layout import activity_prefix, workspace_prefix
from modelplane.meta import Owner, child_name, labels, metadata

PORT = 8888
TOKEN_KEY = "token"
NOTEBOOK_LABEL = "modelplane.dev/notebook"
# The activity sidecar polls three small JSON answers a minute: a Python process with nothing to hold.
ACTIVITY_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi", "ephemeral-storage": "16Mi"},
                      "limits": {"memory": "64Mi", "ephemeral-storage": "16Mi"}}


def token_secret_name(owner: Owner) -> str:
    return child_name(owner, "token")


def token_env(owner: Owner) -> dict[str, Any]:
    return {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret_name(owner),
                                                                    "key": TOKEN_KEY}}}


def activity_container(owner: Owner, image: str) -> dict[str, Any]:
    """`python -m modelplane.activity` in the runtime image: asks Jupyter on the loopback with its token, writes to
    the activity mount (modelplane.activity)."""
    return {"name": "activity", "image": image, "args": ["-m", "modelplane.activity"], "env": [token_env(owner)],
            "resources": ACTIVITY_RESOURCES, "volumeMounts": [{"name": "activity", "mountPath": ACTIVITY_DIR}],
            "securityContext": {**container_security(), "readOnlyRootFilesystem": True}}


def token_secret(owner: Owner, token: str) -> dict[str, Any]:
    """Created once with a random token (the operator never overwrites an existing one)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(owner, token_secret_name(owner), generation=False), "stringData": {TOKEN_KEY: token}}


def notebook_children(owner: Owner, spec: NotebookSpec, image: str, default_image: bool, inputs: list[Mount],
                      cluster: ClusterFacts, token: str, *, suspended: bool) -> list[dict[str, Any]]:
    """The Notebook's children; the token Secret only with a new `token` (an existing one is never replaced).
    `suspended` (spec.suspend, or idle): no replica. With spec.idle, the activity sidecar beside Jupyter."""
    selector = {NOTEBOOK_LABEL: owner.name}
    config_map = params_config_map(metadata(owner, child_name(owner, "params"), generation=False), spec.params)
    template = pod_template(
        labels={**labels(owner, generation=False), **selector}, image=image, spec=spec, cluster=cluster,
        mounts=[Mount("workspace", workspace_prefix(owner), ARTIFACTS_PATH, read_only=False), *inputs],
        params_config_map=config_map["metadata"]["name"],
        args=["start-notebook.py", "--ServerApp.root_dir=/content", f"--ServerApp.port={PORT}",
              "--ServerApp.ip=0.0.0.0"] if default_image and not spec.command else None,
        ports=[{"name": "jupyter", "containerPort": PORT}],
        probe={"httpGet": {"path": "/api", "port": PORT}, "periodSeconds": 10}, restart_policy="Always",
        sidecars=[activity_container(owner, cluster.runtime_image)] if spec.idle else None,
        sidecar_mounts=[Mount("activity", activity_prefix(owner), ACTIVITY_DIR, read_only=False)] if spec.idle
        else None)
    template["spec"]["containers"][0]["env"].append(token_env(owner))
    return [
        *([token_secret(owner, token)] if token else []),
        config_map,
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, owner.name, generation=False),
         "spec": {"clusterIP": "None", "selector": selector,
                  "ports": [{"name": "jupyter", "port": PORT, "targetPort": PORT}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata(owner, owner.name, generation=False),
         "spec": {"replicas": 0 if suspended else 1, "serviceName": owner.name,
                  "selector": {"matchLabels": selector}, "template": template}},
    ]
