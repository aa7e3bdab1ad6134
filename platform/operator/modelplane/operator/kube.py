"""The Kubernetes API as the operator uses it: read objects, apply children, write status.

The only module that talks to the API server; everything it returns is plain data for the pure reconcilers.

Children are applied with server-side apply under one field manager, `modelplane-operator`: the API server then
removes every field the operator applied before and no longer applies (a GPU taken out of a spec leaves no
nodeSelector, toleration or limit behind), and leaves alone the fields other managers own (the HPA's replica
count, a label an admin added). Jobs and the token Secret are create-only: a Job's template is immutable, and a
token is never replaced.

Errors come in two kinds, and the caller treats them differently:
- `TransientError` (5xx, 429, 409 on a write, a timeout, a dropped connection): retried with backoff until it works;
- `RefusedError` (400, 403, 422: RBAC, admission, an invalid child): reported on the object as `Ready=False`,
  quoting the API server, and retried slowly (someone may fix the RBAC or the quota).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from modelplane.api.common import GROUP, VERSION
from modelplane.api.resource import Kind
from modelplane.builders.jobset import JOBSET_API_VERSION, child_job
from modelplane.images import OPERATOR_VERSION
from modelplane.reconcile.common import JobState, RolloutState

TERMINATION_TAIL = 2000
JOBSET_GROUP, JOBSET_VERSION = JOBSET_API_VERSION.split("/")
FIELD_MANAGER = "modelplane-operator"
USER_AGENT = f"modelplane-operator/{OPERATOR_VERSION}"
# Connect and read timeouts of every call: a hung connection must fail (and be retried), never stall a worker.
REQUEST_TIMEOUT = (5.0, 30.0)
# A Job's template is immutable (and a JobSet's replicatedJobs, network and failurePolicy: JobSet's CRD and webhook);
# the token Secret is made once; a ModelVersion is a record, written once.
CREATE_ONLY = {"Job", "JobSet", "Secret", "ModelVersion"}
REFUSALS = {400, 403, 422}  # the API server said no; asking again unchanged gets the same answer
_API_PATHS = {  # kind -> (API prefix, plural) of every child the operator makes
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Job": ("/apis/batch/v1", "jobs"),
    "JobSet": (f"/apis/{JOBSET_GROUP}/{JOBSET_VERSION}", "jobsets"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "ModelVersion": (f"/apis/{GROUP}/{VERSION}", "modelversions"),
}
T = TypeVar("T")


def rollout_state(found: Any) -> RolloutState:
    """A Deployment's or StatefulSet's rollout, read as `kubectl rollout status` reads it (kubectl's
    rollout_status.go, with the reasons of pkg/controller/deployment/util/deployment_util.go): the Progressing
    condition counts only once the controller observed the current generation (`generation <= observedGeneration`);
    `NewReplicaSetAvailable` is a finished rollout, `ProgressDeadlineExceeded` one that passed
    spec.progressDeadlineSeconds."""
    status = found.status
    if not status:
        return RolloutState()
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    current = (found.metadata.generation or 0) <= (status.observed_generation or 0)
    reason = progressing.reason if progressing and current else ""
    return RolloutState(replicas=status.replicas or 0, ready=status.ready_replicas or 0,
                        available=status.available_replicas or 0, complete=reason == "NewReplicaSetAvailable",
                        stuck=reason == "ProgressDeadlineExceeded")


KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta2"
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
# Kueue's visibility API (VisibilityOnDemand, on by default): a LocalQueue's pending Workloads with their positions,
# served by Kueue's own API server behind an APIService (kueue apis/visibility/v1beta2/types.go at v0.19.2).
KUEUE_VISIBILITY = "visibility.kueue.x-k8s.io/v1beta2"


@dataclasses.dataclass(frozen=True)
class QueuePosition:
    """Where a pending Workload stands, from 0 (Kueue's PendingWorkload)."""

    local_queue: int
    cluster_queue: int


def waiting_for_quota(workload: dict[str, Any]) -> bool:
    """Not admitted and holding no quota: the Workloads Kueue lists as pending, the ones with a position."""
    conditions = {c.get("type"): c.get("status") for c in (workload.get("status") or {}).get("conditions") or []}
    return conditions.get("QuotaReserved") != "True" and conditions.get("Admitted") != "True"


def queue_position(summary: Any, workload_name: str) -> QueuePosition | None:
    """The Workload's position in a PendingWorkloadsSummary, if it is listed there."""
    items = summary.get("items") if isinstance(summary, dict) else None
    for item in items or []:
        if ((item.get("metadata") or {}).get("name")) == workload_name:
            return QueuePosition(int(item.get("positionInLocalQueue") or 0), int(item.get("positionInClusterQueue")
                                                                                 or 0))
    return None


def workload_wait(workload: dict[str, Any] | None, position: QueuePosition | None = None) -> str:
    """Why a Kueue Workload waits, from its conditions (Kueue's workload_types.go: QuotaReserved, Admitted,
    Evicted): an eviction says why it was evicted, a pending reservation what quota it lacks; with its place in line
    where Kueue's visibility API gave one."""
    if workload is None:
        return "waiting for Kueue to take it in its queue"
    conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
    queue = (workload.get("spec") or {}).get("queueName")
    place = (f" (number {position.local_queue + 1} in queue {queue}, {position.cluster_queue + 1} in its cluster "
             "queue)") if position else ""
    evicted = conditions.get("Evicted")
    if evicted and evicted.get("status") == "True":
        return f"evicted ({evicted.get('reason')}): {evicted.get('message', '')}; queued again{place}"
    reserved = conditions.get("QuotaReserved")
    if reserved and reserved.get("status") == "False" and reserved.get("message"):
        return str(reserved["message"]) + place
    admitted = conditions.get("Admitted")
    if admitted and admitted.get("status") == "False" and admitted.get("message"):
        return str(admitted["message"]) + place
    return (f"in Kueue queue {queue}, waiting for quota" if queue else "waiting for quota") + place


class TransientError(Exception):
    """The call may work if tried again later (the API server or the network had trouble)."""


class RefusedError(Exception):
    """The API server refused a write (RBAC, admission, validation, quota); `message` quotes it."""

    def __init__(self, doing: str, status: int, message: str) -> None:
        self.doing, self.status, self.message = doing, status, message
        super().__init__(f"{doing}: HTTP {status}: {message}")


def _server_message(error: ApiException) -> str:
    """The Status message the API server sent (what kubectl would print), or the HTTP reason."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def _failure(error: ApiException, doing: str) -> Exception:
    if error.status in REFUSALS:
        return RefusedError(doing, error.status, _server_message(error))
    return TransientError(f"{doing}: HTTP {error.status} {error.reason}")


def job_state(job: dict[str, Any]) -> JobState:
    """A Job's outcome from its status (conditions first, counts as a fallback)."""
    status = job.get("status") or {}
    finished = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    succeeded = "Complete" in finished or bool(status.get("succeeded"))
    failed = finished.get("Failed") if not succeeded else None
    # Why the Job controller gave up (DeadlineExceeded, BackoffLimitExceeded); the pod's log tail is added later.
    why = f"{failed.get('reason', '')}: {failed.get('message', '')}".strip(": ") if failed else ""
    return JobState(succeeded=succeeded, failed=failed is not None, active=int(status.get("active") or 0),
                    message=why)


def job_seen(job: dict[str, Any]) -> dict[str, Any]:
    """What `Kube.job` reads of a Job, kept from its watch events (context.Context.jobs): its status, whether it is
    suspended, its uid. Not its pod template, which would be most of the memory per object, for nothing."""
    return {"metadata": {"uid": (job.get("metadata") or {}).get("uid")},
            "spec": {"suspend": (job.get("spec") or {}).get("suspend")}, "status": dict(job.get("status") or {})}


def jobset_state(jobset: dict[str, Any]) -> JobState:
    """A JobSet's outcome as a run's JobState (jobset_types.go, JobSetStatus): its `Completed` and `Failed`
    conditions; `active` counts its Jobs with a pod running or pending (replicatedJobsStatus); a restart that did not
    count towards maxRestarts (`restarts - restartsCountTowardsMax`) is one a disruption caused (builders.jobset's
    failure policy), each a resume from the checkpoints."""
    status = jobset.get("status") or {}
    finished = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = finished.get("Failed") if "Completed" not in finished else None
    why = f"{failed.get('reason', '')}: {failed.get('message', '')}".strip(": ") if failed else ""
    active = sum(int(r.get("active") or 0) for r in status.get("replicatedJobsStatus") or [])
    disruptions = int(status.get("restarts") or 0) - int(status.get("restartsCountTowardsMax") or 0)
    return JobState(succeeded="Completed" in finished, failed=failed is not None, active=active, message=why,
                    disruptions=max(0, disruptions))


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        client.user_agent = USER_AGENT  # audit logs (and tests) tell the operator's requests apart
        self.client = client
        self.core = kubernetes.client.CoreV1Api(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.apps = kubernetes.client.AppsV1Api(client)

    def _call(self, doing: str, call: Callable[[], T], settled: frozenset[int] = frozenset({404})) -> T | None:
        """Run one API call. A status in `settled` means there is nothing to do (gone, or already there): None.
        Every other failure becomes TransientError or RefusedError."""
        try:
            return call()
        except ApiException as error:
            if error.status in settled:
                return None
            raise _failure(error, doing) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:  # timeouts, resets, refused connections
            raise TransientError(f"{doing}: {error}") from error

    def get_object(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        body = self._call(f"reading {kind.kind} {namespace}/{name}", lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural, name, _request_timeout=REQUEST_TIMEOUT))
        return body if isinstance(body, dict) else None

    def list_objects(self, kind: Kind, namespace: str) -> list[dict[str, Any]]:
        found = self._call(f"listing {kind.plural} in {namespace}", lambda: self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural, _request_timeout=REQUEST_TIMEOUT))
        return list(found.get("items") or []) if isinstance(found, dict) else []

    def patch_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write status (a deleted object has nothing to report on: 404 is fine)."""
        self._call(f"writing status of {kind.kind} {namespace}/{name}",
                   lambda: self.custom.patch_namespaced_custom_object_status(
                       GROUP, VERSION, namespace, kind.plural, name, {"status": status},
                       _request_timeout=REQUEST_TIMEOUT))

    def patch_finalizers(self, kind: Kind, namespace: str, name: str, finalizers: list[str],
                         resource_version: str) -> None:
        """Set metadata.finalizers; the resourceVersion makes a concurrent change a 409 (retried), not a loss."""
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
        self._call(f"updating finalizers of {kind.kind} {namespace}/{name}",
                   lambda: self.custom.patch_namespaced_custom_object(
                       GROUP, VERSION, namespace, kind.plural, name, body, _request_timeout=REQUEST_TIMEOUT))

    def patch_annotations(self, kind: Kind, namespace: str, name: str, annotations: dict[str, str],
                          resource_version: str) -> None:
        """Set annotations on the object itself; the resourceVersion makes a concurrent change (a user resuming a
        notebook the operator is suspending) a 409, retried on what the user wrote, not a lost update."""
        body = {"metadata": {"annotations": annotations, "resourceVersion": resource_version}}
        self._call(f"annotating {kind.kind} {namespace}/{name}",
                   lambda: self.custom.patch_namespaced_custom_object(
                       GROUP, VERSION, namespace, kind.plural, name, body, _request_timeout=REQUEST_TIMEOUT))

    def job(self, namespace: str, name: str, seen: dict[str, Any] | None = None,
            count_disruptions: bool = True) -> JobState | None:
        """The Job's outcome, with the failed pod's termination message (its log tail) when it failed; while Kueue
        holds it (suspended), why; while it runs, how many of its pods a disruption took (for a run that counts its
        resumes). `seen`: the Job as the watch last delivered it (context.Context.jobs), read instead of a GET."""
        found = seen or self._call(f"reading job {namespace}/{name}", lambda: self.client.sanitize_for_serialization(
            self.batch.read_namespaced_job(name, namespace, _request_timeout=REQUEST_TIMEOUT)))  # type: ignore[no-untyped-call]
        if not found:
            return None
        state = job_state(found)
        if state.failed:
            state = dataclasses.replace(state, message=self.termination_message(namespace, name) or state.message)
        elif (found.get("spec") or {}).get("suspend") and not state.succeeded:
            uid = str((found.get("metadata") or {}).get("uid"))
            state = dataclasses.replace(state, queued=self.workload_wait(namespace, uid))
        if count_disruptions and not state.queued:
            state = dataclasses.replace(state, disruptions=self.disruptions(namespace, name))
        return state

    def jobset(self, namespace: str, name: str) -> JobState | None:
        """The JobSet's outcome, as `job` reads a Job's: with a failed pod's termination message when it failed,
        and while Kueue holds it (suspended), why."""
        found = self._call(f"reading jobset {namespace}/{name}", lambda: self.custom.get_namespaced_custom_object(
            JOBSET_GROUP, JOBSET_VERSION, namespace, "jobsets", name, _request_timeout=REQUEST_TIMEOUT))
        if not isinstance(found, dict):
            return None
        state = jobset_state(found)
        if state.failed:
            return dataclasses.replace(
                state, message=self.termination_message(namespace, child_job(name)) or state.message)
        if (found.get("spec") or {}).get("suspend") and not state.succeeded:
            uid = str((found.get("metadata") or {}).get("uid"))
            return dataclasses.replace(state, queued=self.workload_wait(namespace, uid))
        return state

    def workload_wait(self, namespace: str, job_uid: str) -> str:
        """Why Kueue has not admitted a Job or JobSet: its Workload's conditions (Kueue labels the Workload with the
        job's UID, `kueue.x-k8s.io/job-uid`; its name is Kueue's own, derived from a hash, not to be rebuilt here)."""
        found = self._call(f"listing Kueue workloads of job {job_uid} in {namespace}",
                           lambda: self.custom.list_namespaced_custom_object(
                               KUEUE_GROUP, KUEUE_VERSION, namespace, "workloads",
                               label_selector=f"{KUEUE_JOB_UID_LABEL}={job_uid}", _request_timeout=REQUEST_TIMEOUT))
        items = [w for w in (found.get("items") or [] if isinstance(found, dict) else [])
                 if ((w.get("metadata") or {}).get("labels") or {}).get(KUEUE_JOB_UID_LABEL) == job_uid]
        if not items:
            return workload_wait(None)
        queue = str((items[0].get("spec") or {}).get("queueName") or "")
        name = str((items[0].get("metadata") or {}).get("name") or "")
        pending = waiting_for_quota(items[0]) and queue and name
        return workload_wait(items[0], self.queue_position(namespace, queue, name) if pending else None)

    def queue_position(self, namespace: str, queue: str, workload_name: str) -> QueuePosition | None:
        """A pending Workload's place in line, from Kueue's visibility API. Best effort: the APIService may be
        unavailable (Kueue restarting, VisibilityOnDemand turned off), and the reason alone still says why it waits;
        the next sync asks again."""
        try:
            summary = self._get(f"/apis/{KUEUE_VISIBILITY}/namespaces/{namespace}/localqueues/{queue}/pendingworkloads")
        except (ApiException, urllib3.exceptions.HTTPError, OSError):
            return None
        return queue_position(summary, workload_name)

    def disruptions(self, namespace: str, job_name: str) -> int:
        """The Job's pods that a disruption took (a DisruptionTarget condition: preemption, eviction, a drain)."""
        pods = self.pods(namespace, {"job-name": job_name})
        return sum(1 for pod in pods for c in (pod.status.conditions if pod.status else None) or []
                   if c.type == "DisruptionTarget" and c.status == "True")

    def deployment(self, namespace: str, name: str) -> RolloutState | None:
        return self._rollout(self.apps.read_namespaced_deployment, namespace, name)

    def stateful_set(self, namespace: str, name: str) -> RolloutState | None:
        return self._rollout(self.apps.read_namespaced_stateful_set, namespace, name)

    def _rollout(self, read: Callable[..., Any], namespace: str, name: str) -> RolloutState | None:
        found = self._call(f"reading {namespace}/{name}", lambda: read(name, namespace,
                                                                       _request_timeout=REQUEST_TIMEOUT))
        return None if found is None else rollout_state(found)

    def pods(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        """The pods with these labels (V1Pod objects)."""
        text = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        found = self._call(f"listing pods {text} in {namespace}", lambda: self.core.list_namespaced_pod(
            namespace, label_selector=text, _request_timeout=REQUEST_TIMEOUT).items)
        return [pod for pod in found or [] if pod.metadata and all((pod.metadata.labels or {}).get(k) == v
                                                                   for k, v in selector.items())]

    def termination_message(self, namespace: str, job_name: str) -> str:
        pods = self._call(f"listing pods of job {namespace}/{job_name}", lambda: self.core.list_namespaced_pod(
            namespace, label_selector=f"job-name={job_name}", _request_timeout=REQUEST_TIMEOUT).items)
        messages = [
            status.state.terminated.message
            for pod in pods or [] if pod.metadata and (pod.metadata.labels or {}).get("job-name") == job_name
            for status in (pod.status.container_statuses if pod.status else None) or []
            if status.state and status.state.terminated and status.state.terminated.message
        ]
        return messages[-1][-TERMINATION_TAIL:].strip() if messages else ""

    def pod_refusal(self, namespace: str, name: str) -> str:
        """The newest refusal to create pods for `name` (a Job or StatefulSet), or "".

        The Job and StatefulSet controllers report it only as a FailedCreate event: ResourceQuota, Pod Security
        admission, a webhook, a LimitRange all end up there.
        """
        # Filtered by the API server (field selectors), and again here for servers that ignore them.
        events = self._call(f"listing events of {namespace}/{name}", lambda: self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},reason=FailedCreate",
            _request_timeout=REQUEST_TIMEOUT).items)
        refusals = [e for e in events or [] if e.involved_object and e.involved_object.name == name
                    and e.reason == "FailedCreate" and e.message]
        refusals.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return str(refusals[-1].message) if refusals else ""

    def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply a child (create-only kinds are created, and left alone once they exist)."""
        kind, meta = manifest["kind"], manifest["metadata"]
        prefix, plural = _API_PATHS[kind]
        path = f"{prefix}/namespaces/{meta['namespace']}/{plural}"
        doing = f"applying {kind} {meta['namespace']}/{meta['name']}"
        if kind in CREATE_ONLY:  # 409: created by an earlier sync (maybe one whose answer was lost)
            self._call(doing, lambda: self._request("POST", path, manifest, {}), settled=frozenset({409}))
            return
        self._call(doing, lambda: self._request("PATCH", f"{path}/{meta['name']}", manifest,
                                                {"fieldManager": FIELD_MANAGER, "force": "true"},
                                                "application/apply-patch+yaml"))

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: str) -> None:
        """Post a core/v1 Event about `involved` (an object reference), as kubectl describe shows them. The name is
        unique per event (the object's name and a random suffix), like client-go's recorder makes it."""
        namespace = involved["namespace"]
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{involved['name']}.{secrets.token_hex(8)}", "namespace": namespace},
                 "involvedObject": involved, "type": type_, "reason": reason, "message": message[:1024],
                 "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                 "source": {"component": FIELD_MANAGER}, "reportingComponent": FIELD_MANAGER}
        self._call(f"posting an event on {involved['kind']} {namespace}/{involved['name']}",
                   lambda: self._request("POST", f"/api/v1/namespaces/{namespace}/events", event, {}))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete a child that is no longer wanted (gone already is fine); its dependents go in the background."""
        prefix, plural = _API_PATHS[kind]
        self._call(f"deleting {kind} {namespace}/{name}", lambda: self._request(
            "DELETE", f"{prefix}/namespaces/{namespace}/{plural}/{name}", None, {"propagationPolicy": "Background"}))

    def _get(self, path: str) -> Any:
        """One raw GET (a subresource of an aggregated API, which the generated client cannot address)."""
        response = self.client.call_api(*self.client.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]),
            _request_timeout=REQUEST_TIMEOUT)
        response.read()  # type: ignore[no-untyped-call]
        return self.client.response_deserialize(response, {"2XX": "object"}).data

    def _request(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, str],
                 content_type: str = "application/json") -> None:
        """One raw call (what the generated API lacks: apply to any kind by path); a non-2xx answer raises."""
        response = self.client.call_api(*self.client.param_serialize(
            method, path, query_params=list(query.items()), body=body,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"]), _request_timeout=REQUEST_TIMEOUT)
        response.read()  # type: ignore[no-untyped-call]
        self.client.response_deserialize(response, {"2XX": "object"})
