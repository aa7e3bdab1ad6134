"""The image build Job: BuildKit, rootless and daemonless, from a git repository or an uploaded tarball.

BuildKit (moby/buildkit, rootless image) is maintained by the Moby project, builds Dockerfiles without a daemon or
root, reads git contexts natively, and keeps its layer cache in the registry. The builder runs as the tenant's
`modelplane-builder` service account, which may push to the registry and read build uploads, nothing more.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from modelplane.api.common import Build
from modelplane.api.kinds import kind_for
from modelplane.builders.job import BACKOFF_LIMIT, TTL_AFTER_FINISHED
from modelplane.cluster import ClusterFacts
from modelplane.images import CLOUD_SDK_IMAGE
from modelplane.meta import Owner, child_name, labels, metadata
from modelplane.names import BUILDER_KSA

BUILDER_UID = 1000  # the rootless BuildKit image's user
WORKSPACE = "/workspace"
DOCKER_CONFIG = "/home/user/.docker"
UPLOAD_CONTENT_TYPE = "application/octet-stream"


def source_key(build: Build) -> str:
    """A short digest of where the image comes from: a new ref or a new upload is a new build."""
    return hashlib.sha256(json.dumps(build.model_dump(by_alias=True, exclude={"upload": {"request_id"}}),
                                     sort_keys=True).encode()).hexdigest()[:12]


def upload_object(owner: Owner, md5: str) -> str:
    return f"uploads/{owner.namespace}/{kind_for(owner.kind).plural}/{owner.name}/{md5}.tar.gz"


def image_ref(cluster: ClusterFacts, owner: Owner, build: Build) -> str:
    """`<registry>/<namespace>-<kind>-<name>:<ref or md5>`."""
    tag = build.upload.md5 if build.upload else re.sub(r"[^A-Za-z0-9_.-]", "-", build.git.ref if build.git else "")
    return f"{cluster.registry}/{owner.namespace}-{owner.kind.lower()}-{owner.name}:{tag[:128]}"


def build_job_name(owner: Owner, build: Build) -> str:
    return child_name(owner, "build", source_key(build))


def _registry_login(cluster: ClusterFacts) -> dict[str, Any]:
    """Writes a docker config with a short-lived token of the builder's Workload Identity (no key, no secret)."""
    host = cluster.registry.split("/", 1)[0]
    script = ('set -eu; token=$(gcloud auth print-access-token); '
              'auth=$(printf "oauth2accesstoken:%s" "$token" | base64 -w0); '
              f'printf \'{{"auths":{{"{host}":{{"auth":"%s"}}}}}}\' "$auth" > {DOCKER_CONFIG}/config.json')
    return {"name": "registry-login", "image": CLOUD_SDK_IMAGE, "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "docker-config", "mountPath": DOCKER_CONFIG}],
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}


def _fetch_upload(cluster: ClusterFacts, owner: Owner, md5: str) -> dict[str, Any]:
    script = (f"set -eu; gcloud storage cp gs://{cluster.bucket}/{upload_object(owner, md5)} /tmp/context.tar.gz; "
              f"mkdir -p {WORKSPACE}/context; tar -xzf /tmp/context.tar.gz -C {WORKSPACE}/context")
    return {"name": "fetch-upload", "image": CLOUD_SDK_IMAGE, "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}


def build_job(owner: Owner, build: Build, image: str, cluster: ClusterFacts) -> dict[str, Any]:
    cache = f"{cluster.registry}/buildcache:{owner.namespace}-{owner.kind.lower()}-{owner.name}"
    args = ["build", "--frontend", "dockerfile.v0",
            "--output", f"type=image,name={image},push=true",
            "--export-cache", f"type=registry,ref={cache},mode=max", "--import-cache", f"type=registry,ref={cache}"]
    init = [_registry_login(cluster)]
    if build.git:
        path = build.git.path.strip("/")
        context = f"{build.git.url}#{build.git.ref}" + (f":{path}" if path not in ("", ".") else "")
        args += ["--opt", f"context={context}"]
    elif build.upload:
        init.append(_fetch_upload(cluster, owner, build.upload.md5))
        args += ["--local", f"context={WORKSPACE}/context", "--local", f"dockerfile={WORKSPACE}/context"]
    unconfined = {"type": "Unconfined"}  # rootless BuildKit needs user namespaces, which the default profiles block
    pod = {
        "serviceAccountName": BUILDER_KSA,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": BUILDER_UID, "runAsGroup": BUILDER_UID,
                            "fsGroup": BUILDER_UID},
        "initContainers": init,
        "containers": [{
            "name": "buildkit",
            "image": cluster.builder_image,
            "command": ["buildctl-daemonless.sh"],
            "args": args,
            "env": [{"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"},
                    {"name": "DOCKER_CONFIG", "value": DOCKER_CONFIG}],
            "securityContext": {"seccompProfile": unconfined, "appArmorProfile": unconfined,
                                "allowPrivilegeEscalation": True},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "20Gi"},
                          "limits": {"memory": "8Gi", "ephemeral-storage": "50Gi"}},
            "terminationMessagePolicy": "FallbackToLogsOnError",  # the build log's tail becomes BuildFailed's message
            "volumeMounts": [{"name": "docker-config", "mountPath": DOCKER_CONFIG},
                             {"name": "workspace", "mountPath": WORKSPACE},
                             {"name": "buildkit", "mountPath": "/home/user/.local/share/buildkit"}],
        }],
        "volumes": [{"name": "docker-config", "emptyDir": {}}, {"name": "workspace", "emptyDir": {}},
                    {"name": "buildkit", "emptyDir": {}}],
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(owner, build_job_name(owner, build)),
            "spec": {"backoffLimit": BACKOFF_LIMIT, "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
                     "template": {"metadata": {"labels": labels(owner)}, "spec": pod}}}
