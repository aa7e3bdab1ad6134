"""Where a GPU pod is on its way to serving, read from pods as the scheduler and the kubelet write them (the
client's V1Pod objects serialised as the API server sends them; the reasons of the kubelet's images/types.go and
container/sync_result.go)."""

from typing import Any

from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodStatus,
)

from modelplane.api.reasons import Phase
from modelplane.operator.startup import startup
from tests.support.wire import wire

LOADING = "loading the model"
UNSCHEDULABLE = ("0/4 nodes are available: 1 node(s) had untolerated taint {components.gke.io/gke-managed-components: "
                 "true}, 3 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available.")


def pod(name: str = "srv-1", scheduled: bool = True, main: V1ContainerStatus | None = None,
        terminating: bool = False) -> dict[str, Any]:
    condition = V1PodCondition(type="PodScheduled", status="True" if scheduled else "False",
                               reason=None if scheduled else "Unschedulable",
                               message=None if scheduled else UNSCHEDULABLE)
    meta = V1ObjectMeta(name=name, deletion_timestamp="2026-12-03T10:00:00Z" if terminating else None)
    typed = V1Pod(metadata=meta, status=V1PodStatus(conditions=[condition],
                                                    container_statuses=[main] if main else None))
    return wire(typed)


def main(state: V1ContainerState, ready: bool = False, restarts: int = 0,
         last: V1ContainerState | None = None) -> V1ContainerStatus:
    return V1ContainerStatus(name="main", image="vllm:1", image_id="", ready=ready, restart_count=restarts,
                             state=state, last_state=last)


def waiting(reason: str, message: str | None = None) -> V1ContainerState:
    return V1ContainerState(waiting=V1ContainerStateWaiting(reason=reason, message=message))


RUNNING = V1ContainerState(running=V1ContainerStateRunning(started_at="2026-12-03T10:00:00Z"))


def test_each_step_of_a_gpu_pod() -> None:
    assert startup([], "main", LOADING) is None
    scheduling = startup([pod(scheduled=False)], "main", LOADING)
    assert scheduling is not None and scheduling.phase == Phase.SCHEDULING
    assert "Insufficient nvidia.com/gpu" in scheduling.message
    assert startup([pod()], "main", LOADING) == startup([pod(main=main(waiting("ContainerCreating")))], "main",
                                                        LOADING)
    creating = startup([pod(main=main(waiting("ContainerCreating")))], "main", LOADING)
    assert creating is not None and creating.phase == Phase.PULLING_IMAGE
    loading = startup([pod(main=main(RUNNING))], "main", LOADING)
    assert loading is not None and (loading.phase, loading.message) == (Phase.LOADING, LOADING)
    ready = startup([pod(main=main(RUNNING, ready=True))], "main", LOADING)
    assert ready is not None and ready.phase == Phase.READY


def test_failures_say_what_the_kubelet_said() -> None:
    pull = startup([pod(main=main(waiting("ImagePullBackOff", 'Back-off pulling image "vllm:1"')))], "main", LOADING)
    assert pull is not None and pull.phase == Phase.IMAGE_PULL_FAILED and 'pulling image "vllm:1"' in pull.message
    died = V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=137, reason="OOMKilled"))
    crash = startup([pod(main=main(waiting("CrashLoopBackOff"), restarts=3, last=died))], "main", LOADING)
    assert crash is not None and crash.phase == Phase.CRASH_LOOPING
    assert "3 restart(s); last exit 137 (OOMKilled)" in crash.message and "--previous" in crash.message


def test_the_pod_furthest_from_ready_speaks_and_terminating_pods_do_not() -> None:
    old_ready = pod("srv-old", main=main(RUNNING, ready=True))
    new_waiting = pod("srv-new", scheduled=False)
    found = startup([old_ready, new_waiting], "main", LOADING)
    assert found is not None and found.phase == Phase.SCHEDULING
    crashing = pod("srv-crash", main=main(waiting("CrashLoopBackOff"), restarts=1))
    found = startup([new_waiting, crashing], "main", LOADING)
    assert found is not None and found.phase == Phase.CRASH_LOOPING  # a problem before a wait
    gone = startup([pod("srv-gone", scheduled=False, terminating=True), old_ready], "main", LOADING)
    assert gone is not None and gone.phase == Phase.READY
