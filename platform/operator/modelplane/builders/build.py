"""The image build Job: BuildKit, rootless and daemonless, from a git repository or an uploaded tarball, run in
GKE Sandbox (gVisor) in the build namespace.

Why BuildKit rootless: maintained by the Moby project (kaniko is archived), builds Dockerfiles without a daemon or
root, reads git contexts natively and keeps its layer cache in the registry.

Why not in the tenant's namespace: tenant namespaces enforce the Pod Security Standard `baseline`, and rootless
BuildKit under runc needs seccomp and AppArmor `Unconfined` (it unshares user and mount namespaces and mounts
filesystems, which the default profiles block), which `baseline` forbids, so no build pod would ever be admitted.
Loosening the tenants' namespaces would let every tenant pod do the same.

Threat model. A build runs the tenant's Dockerfile: arbitrary code, as untrusted as the tenant.
- The node kernel: RUN steps use user and mount namespaces, a large kernel attack surface. Builds run under
  `runtimeClassName: gvisor`, so their syscalls reach gVisor's user-space kernel, not the node's; inside the
  sandbox the pod's seccomp/AppArmor profiles are not the isolation boundary (gVisor's are), which is why the
  builder runs with the runtime defaults and the pod passes `baseline`. It still cannot pass `restricted`:
  rootlesskit's newuidmap/newgidmap are setuid/file-capability helpers, so the builder keeps its default
  capabilities and `allowPrivilegeEscalation`.
- Other workloads: build pods run only on the dedicated build pool (its own label and taint, GKE Sandbox nodes,
  never the system pool), so an escape from gVisor still lands on a node that runs nothing but builds.
- The builder identity: builds run in BUILD_NAMESPACE, where tenants have no RBAC: no tenant can start a pod as a
  builder service account, exec into a build or read its logs (the operator reports the log tail). Each tenant
  has its own Kubernetes service account there, bound to a Google service account of its own that may push only
  to the tenant's image repository and read only the tenant's uploads; the pod mounts no Kubernetes token.
- The network: the namespace's NetworkPolicy admits no ingress and lets builds reach DNS, the metadata server
  (Workload Identity) and the internet on 80/443 (git, base images, package indexes), nothing inside the cluster
  or the VPC.
- Resources: a deadline (BUILD_DEADLINE) and `backoffLimit` bound every build; ephemeral storage has a limit.
Residual risk: a RUN step can obtain its tenant's builder token (from the metadata server, as the registry-login
init container does): it reaches what the tenant's own members may reach anyway (the tenant's images and uploads),
never another tenant's nor the platform's images (see infra/identity.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from modelplane.api.common import Build
from modelplane.builders.job import BACKOFF_LIMIT, TTL_AFTER_FINISHED
from modelplane.cluster import ClusterFacts
from modelplane.images import CLOUD_SDK_IMAGE
from modelplane.layout import BUILD_POOL, BUILD_POOL_LABEL, BUILD_TAINT, SANDBOX_RUNTIME_CLASS, upload_object
from modelplane.meta import Owner, foreign_child_name, foreign_labels, foreign_metadata
from modelplane.names import builder_ksa, tenant_repository

BUILDER_UID = 1000  # the rootless BuildKit image's user
# A build that cannot start (no node, an image that cannot be pulled) or hangs must end, and say why, in bounded
# time. Two hours fits a large image built from scratch; pod retries (backoffLimit) count against the same deadline.
BUILD_DEADLINE = 2 * 3600
WORKSPACE = "/workspace"
DOCKER_CONFIG = "/home/user/.docker"
UPLOAD_CONTENT_TYPE = "application/octet-stream"


def source_key(build: Build) -> str:
    """A short digest of where the image comes from: a new ref or a new upload is a new build."""
    return hashlib.sha256(json.dumps(build.model_dump(by_alias=True, exclude={"upload": {"request_id"}}),
                                     sort_keys=True).encode()).hexdigest()[:12]


def image_ref(cluster: ClusterFacts, owner: Owner, build: Build) -> str:
    """`<tenant repository>/<kind>-<name>:<ref or md5>`: the tenant's own repository, which its builder may push to."""
    tag = build.upload.md5 if build.upload else re.sub(r"[^A-Za-z0-9_.-]", "-", build.git.ref if build.git else "")
    return f"{tenant_repository(cluster.registry, owner.namespace)}/{owner.kind.lower()}-{owner.name}:{tag[:128]}"


def build_job_name(owner: Owner, build: Build) -> str:
    """Unique in the build namespace, which all tenants share."""
    return foreign_child_name(owner, "build", source_key(build))


# The init containers need nothing: they pass `restricted`. Every container has limits because gVisor applies a
# pod's CPU and memory limits only when all of its containers set them.
HELPER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
HELPER_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def _registry_login(cluster: ClusterFacts) -> dict[str, Any]:
    """Writes a docker config with a short-lived token of the builder's Workload Identity (no key, no secret)."""
    host = cluster.registry.split("/", 1)[0]
    script = ('set -eu; token=$(gcloud auth print-access-token); '
              'auth=$(printf "oauth2accesstoken:%s" "$token" | base64 -w0); '
              f'printf \'{{"auths":{{"{host}":{{"auth":"%s"}}}}}}\' "$auth" > {DOCKER_CONFIG}/config.json')
    return {"name": "registry-login", "image": CLOUD_SDK_IMAGE, "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "docker-config", "mountPath": DOCKER_CONFIG}],
            "resources": HELPER_RESOURCES, "securityContext": HELPER_SECURITY}


def _fetch_upload(cluster: ClusterFacts, owner: Owner, md5: str) -> dict[str, Any]:
    script = (f"set -eu; gcloud storage cp gs://{cluster.bucket}/{upload_object(owner, md5)} /tmp/context.tar.gz; "
              f"mkdir -p {WORKSPACE}/context; tar -xzf /tmp/context.tar.gz -C {WORKSPACE}/context")
    return {"name": "fetch-upload", "image": CLOUD_SDK_IMAGE, "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
            "resources": HELPER_RESOURCES, "securityContext": HELPER_SECURITY}


def build_job(owner: Owner, build: Build, image: str, cluster: ClusterFacts) -> dict[str, Any]:
    cache = f"{tenant_repository(cluster.registry, owner.namespace)}/buildcache:{owner.kind.lower()}-{owner.name}"
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
    pod = {
        "serviceAccountName": builder_ksa(owner.namespace),
        "automountServiceAccountToken": False,  # Workload Identity needs no Kubernetes token; the API is no concern
        "runtimeClassName": SANDBOX_RUNTIME_CLASS,
        "nodeSelector": {BUILD_POOL_LABEL: BUILD_POOL},
        "tolerations": [BUILD_TAINT.toleration()],
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": BUILDER_UID, "runAsGroup": BUILDER_UID,
                            "fsGroup": BUILDER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": init,
        "containers": [{
            "name": "buildkit",
            "image": cluster.builder_image,
            "command": ["buildctl-daemonless.sh"],
            "args": args,
            # Without a PID namespace of its own per RUN step: Kubernetes cannot unmask /proc (procMount) without
            # hostUsers: false, as BuildKit's own Kubernetes examples note.
            "env": [{"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"},
                    {"name": "DOCKER_CONFIG", "value": DOCKER_CONFIG}],
            # newuidmap/newgidmap need their setuid bit and file capabilities: default capabilities, escalation on.
            "securityContext": {"allowPrivilegeEscalation": True},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "20Gi"},
                          "limits": {"cpu": "3", "memory": "8Gi", "ephemeral-storage": "50Gi"}},
            "terminationMessagePolicy": "FallbackToLogsOnError",  # the build log's tail becomes BuildFailed's message
            "volumeMounts": [{"name": "docker-config", "mountPath": DOCKER_CONFIG},
                             {"name": "workspace", "mountPath": WORKSPACE},
                             {"name": "buildkit", "mountPath": "/home/user/.local/share/buildkit"}],
        }],
        "volumes": [{"name": "docker-config", "emptyDir": {}}, {"name": "workspace", "emptyDir": {}},
                    {"name": "buildkit", "emptyDir": {}}],
    }
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": foreign_metadata(owner, build_job_name(owner, build), cluster.build_namespace),
            "spec": {"backoffLimit": BACKOFF_LIMIT, "activeDeadlineSeconds": BUILD_DEADLINE,
                     "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
                     "template": {"metadata": {"labels": foreign_labels(owner)}, "spec": pod}}}
