"""Where a server's or notebook's pods are on their way to ready, read from the pods as the kubelet and the
scheduler report them.

A GPU pod can take many minutes to serve, and every minute looks the same from the Deployment (`readyReplicas: 0`):
the scheduler waits for a GPU node to scale up (`PodScheduled=False`, reason `Unschedulable`, with the scheduler's
"0/3 nodes are available: ... Insufficient nvidia.com/gpu"), the kubelet pulls a multi-GB image and mounts the bucket
(container waiting, `ContainerCreating` or `PodInitializing`), a pull fails (`ErrImagePull`, `ImagePullBackOff`,
`InvalidImageName`), the server crashes and restarts (`CrashLoopBackOff`), or the server runs and loads its weights
before its readiness probe passes. Those are the reasons the kubelet sets (pkg/kubelet/images/types.go,
pkg/kubelet/container/sync_result.go, pkg/kubelet/kubelet_pods.go) and kubectl prints in STATUS.

Of several pods, the one furthest from ready speaks (a problem first): that is the one a user must hear about.
"""

from __future__ import annotations

from typing import Any

from modelplane.api.reasons import Phase
from modelplane.reconcile.common import PodsStartup

PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CREATING = frozenset({"ContainerCreating", "PodInitializing"})
CRASHING = frozenset({"CrashLoopBackOff", "RunContainerError", "CreateContainerError", "CreateContainerConfigError"})
# The order in which a pod's phase is worth telling: problems first, then the earliest step.
ORDER = (Phase.CRASH_LOOPING, Phase.IMAGE_PULL_FAILED, Phase.SCHEDULING, Phase.PULLING_IMAGE, Phase.LOADING,
         Phase.READY)


def pod_startup(pod: dict[str, Any], container: str, loading: str) -> PodsStartup:
    """One pod's phase, read from the pod as the API server sends it (core/v1 PodStatus); `container` is the
    workload's container, `loading` what it does before it is ready."""
    status = pod.get("status") or {}
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if scheduled is None or scheduled.get("status") != "True":
        why = (scheduled.get("message") or scheduled.get("reason") or "") if scheduled else ""
        return PodsStartup(Phase.SCHEDULING, f"waiting for a node: {why}" if why else "waiting for a node")
    mine = next((c for c in status.get("containerStatuses") or [] if c.get("name") == container), None)
    if mine is None or not mine.get("state"):
        return PodsStartup(Phase.PULLING_IMAGE, "pulling the image and mounting the bucket")
    if mine.get("ready"):
        return PodsStartup(Phase.READY, "")
    waiting = mine["state"].get("waiting") or {}
    reason, message = waiting.get("reason"), waiting.get("message")
    if reason in PULL_FAILURES:
        return PodsStartup(Phase.IMAGE_PULL_FAILED, f"{reason}: {message or mine.get('image')}")
    if reason in CRASHING:
        last = (mine.get("lastState") or {}).get("terminated")
        exited = f"; last exit {last.get('exitCode')} ({last.get('reason')})" if last else ""
        name = (pod.get("metadata") or {}).get("name")
        return PodsStartup(Phase.CRASH_LOOPING, f"{reason} after {mine.get('restartCount', 0)} restart(s){exited}: "
                                           f"`kubectl logs {name} -c {container} --previous`")
    if waiting:
        return PodsStartup(Phase.PULLING_IMAGE, "pulling the image and mounting the bucket" if reason in CREATING
                           else f"{reason}: {message or ''}".rstrip(": "))
    return PodsStartup(Phase.LOADING, loading)


def startup(pods: list[dict[str, Any]], container: str, loading: str) -> PodsStartup | None:
    """The phase of the pod furthest from ready (terminating pods aside), or None when there is no pod."""
    phases = [pod_startup(pod, container, loading) for pod in pods
              if not (pod.get("metadata") or {}).get("deletionTimestamp")]
    return min(phases, key=lambda p: ORDER.index(p.phase), default=None)
