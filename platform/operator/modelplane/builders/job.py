"""The Job that loads a Dataset or a Model, or trains a Model: one per load or run, each into its own version.

Every Job goes through Kueue: it carries the LocalQueue of its GPU type (names.local_queue), Kueue's webhook
suspends it on creation and unsuspends it when its ClusterQueue has quota. A pod that a disruption took (a spot
node's preemption, a drain, an eviction: the `DisruptionTarget` condition the kubelet, the scheduler and the
eviction API set) is not counted against `backoffLimit`; the Job controller makes a new pod, which resumes from the
run's checkpoints (the container contract's /content/checkpoints).
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.api.common import Workload
from modelplane.builders.workload import Mount, params_config_map, pod_template
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner, labels, metadata
from modelplane.names import QUEUE_LABEL, local_queue

BACKOFF_LIMIT = 2  # a bounded number of pod retries, then JobFailed: no silent retry storm
# Long enough that the operator has read the outcome even after a restart; the Job goes later on its own.
TTL_AFTER_FINISHED = 7 * 24 * 3600
# A run that has not finished in three days (a pod that can never be scheduled, a hung trainer) fails with
# DeadlineExceeded and says so, instead of holding a GPU or sitting in Loading/Training for ever.
RUN_DEADLINE = 3 * 24 * 3600
# A disrupted pod is replaced, not counted as a failure (Kubernetes docs, "Handling retriable and non-retriable pod
# failures with Pod failure policy"; the Job controller does not increment status.failed for it).
DISRUPTIONS_ARE_NOT_FAILURES = {"rules": [{"action": "Ignore",
                                           "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}


def run_parts(owner: Owner, spec: Workload, image: str, cluster: ClusterFacts, mounts: list[Mount], name: str,
              files: dict[str, str] | None = None,
              args: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What every run is made of, whether one Job or a JobSet runs it: its params ConfigMap, its metadata (with the
    Kueue queue of its GPU type) and its pod template."""
    config_map = params_config_map(metadata(owner, f"{name}-params"), spec.params, files or {})
    meta = metadata(owner, name)
    meta["labels"][QUEUE_LABEL] = local_queue(spec.resources.gpu.type if spec.resources.gpu else None)
    template = pod_template(labels=labels(owner), image=image, spec=spec, cluster=cluster, mounts=mounts,
                            params_config_map=config_map["metadata"]["name"], files=sorted(files or {}), args=args)
    return config_map, meta, template


def run_children(owner: Owner, spec: Workload, image: str, cluster: ClusterFacts, mounts: list[Mount], name: str,
                 files: dict[str, str] | None = None, args: list[str] | None = None) -> list[dict[str, Any]]:
    """The params ConfigMap and the Job of one run; `files` are more read-only files in /content (the data diff);
    `args` go to the image's entrypoint (the platform's runtime image runs `python`)."""
    config_map, meta, template = run_parts(owner, spec, image, cluster, mounts, name, files, args)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "podFailurePolicy": copy.deepcopy(DISRUPTIONS_ARE_NOT_FAILURES),
            "activeDeadlineSeconds": RUN_DEADLINE,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": template,
        },
    }
    return [config_map, job]
