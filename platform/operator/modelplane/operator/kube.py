"""The Kubernetes API as the operator uses it: read objects, apply children, write status.

The only module that talks to the API server; everything it returns is plain data for the pure reconcilers.

Children are applied with server-side apply under one field manager, `modelplane-operator`: the API server then
removes every field the operator applied before and no longer applies (a GPU taken out of a spec leaves no
nodeSelector, toleration or limit behind), and leaves alone the fields other managers own (the HPA's replica
count, a label an admin added). Jobs and the token Secret are create-only: a Job's template is immutable, and a
token is never replaced.

The calls are made on the operator's event loop with aiohttp (its watches too: informer.py), JSON in and out: no
thread per call, no generated models built and torn down per response (login.py says how it proves who it is).

Errors come in two kinds, and the caller treats them differently:
- `TransientError` (5xx, 429, 409 on a write, a timeout, a dropped connection): retried with backoff until it works;
- `RefusedError` (400, 403, 422: RBAC, admission, an invalid child): reported on the object as `Ready=False`,
  quoting the API server, and retried slowly (someone may fix the RBAC or the quota).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from modelplane.api.common import GROUP, VERSION
from modelplane.api.resource import Kind
from modelplane.builders.jobset import JOBSET_API_VERSION, child_job
from modelplane.images import OPERATOR_VERSION
from modelplane.operator.login import Credentials
from modelplane.reconcile.common import JobState, RolloutState

TERMINATION_TAIL = 2000
JOBSET_GROUP, JOBSET_VERSION = JOBSET_API_VERSION.split("/")
FIELD_MANAGER = "modelplane-operator"
USER_AGENT = f"modelplane-operator/{OPERATOR_VERSION}"
# Connect and read timeouts of every call: a hung connection must fail (and be retried), never stall a worker.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=30.0)
# Open at once to the API server (client-go's default QPS is 5/burst 10; these are concurrent calls): one per worker
# and one per Event poster (handlers.WORKERS, recorder.POSTERS), so a hung events API holds no worker's call.
CONNECTIONS = 48
# A Job's template is immutable (and a JobSet's replicatedJobs, network and failurePolicy: JobSet's CRD and webhook);
# the token Secret is made once; a ModelVersion is a record, written once.
CREATE_ONLY = {"Job", "JobSet", "Secret", "ModelVersion"}
# Objects a list asks for at once (`limit`; client-go's pager asks for 500): the API server answers in pages, and each
# is dropped once handed on (informer.py, Kube.list_objects), so a list of 10,000 holds 500 at a time.
PAGE_SIZE = 500
MERGE_PATCH, APPLY_PATCH = "application/merge-patch+json", "application/apply-patch+yaml"  # JSON is YAML
REFUSALS = {400, 403, 422}  # the API server said no; asking again unchanged gets the same answer


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: the keys that changed, None for each key that
    went, lists whole. The API server merges a patch into what it holds, so a key the patch leaves out stays: a
    whole new status sent as the patch would keep the fields the new one no longer has (the last run's `ended`
    or `parent` in the next run's record)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch = {key: None for key in old if key not in new}
    for key, value in new.items():
        if (key not in old and value is not None) or (key in old and old[key] != value):  # None for no key: as is
            patch[key] = merge_patch(old.get(key), value)
    return patch


@dataclasses.dataclass(frozen=True)
class Resource:
    """A kind as its API serves it: where its objects are, for calls and for watches (informer.py)."""

    api_version: str  # "batch/v1", "modelplane.dev/v1alpha1"; "v1" for the core group
    kind: str
    plural: str

    @classmethod
    def of(cls, kind: Kind) -> Resource:
        """One of modelplane's own kinds."""
        return cls(kind.api_version, kind.kind, kind.plural)

    def path(self, namespace: str | None) -> str:
        """Its collection in `namespace`, or in every namespace (None)."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}" if namespace else f"{prefix}/{self.plural}"


CHILDREN = {resource.kind: resource for resource in (  # every child the operator makes
    Resource("v1", "ConfigMap", "configmaps"),
    Resource("v1", "Secret", "secrets"),
    Resource("v1", "Service", "services"),
    Resource("batch/v1", "Job", "jobs"),
    Resource(JOBSET_API_VERSION, "JobSet", "jobsets"),
    Resource("apps/v1", "Deployment", "deployments"),
    Resource("apps/v1", "StatefulSet", "statefulsets"),
    Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource(f"{GROUP}/{VERSION}", "ModelVersion", "modelversions"),
)}


def selector_text(selector: dict[str, str]) -> str:
    """Equality-based labels as a `labelSelector` query (`key=value,...`)."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def rollout_state(found: dict[str, Any]) -> RolloutState:
    """A Deployment's or StatefulSet's rollout, read as `kubectl rollout status` reads it (kubectl's
    rollout_status.go, with the reasons of pkg/controller/deployment/util/deployment_util.go): the Progressing
    condition counts only once the controller observed the current generation (`generation <= observedGeneration`);
    `NewReplicaSetAvailable` is a finished rollout, `ProgressDeadlineExceeded` one that passed
    spec.progressDeadlineSeconds."""
    status = found.get("status") or {}
    if not status:
        return RolloutState()
    progressing = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
    current = int((found.get("metadata") or {}).get("generation") or 0) <= int(status.get("observedGeneration") or 0)
    reason = progressing.get("reason") if progressing and current else ""
    return RolloutState(replicas=int(status.get("replicas") or 0), ready=int(status.get("readyReplicas") or 0),
                        available=int(status.get("availableReplicas") or 0),
                        complete=reason == "NewReplicaSetAvailable", stuck=reason == "ProgressDeadlineExceeded")


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


class ExpiredError(TransientError):
    """410 Gone: a watch, or a list's continue token, asked for a resourceVersion older than the API server keeps;
    list again (from the start)."""


class RefusedError(Exception):
    """The API server refused a write (RBAC, admission, validation, quota); `message` quotes it."""

    def __init__(self, doing: str, status: int, message: str) -> None:
        self.doing, self.status, self.message = doing, status, message
        super().__init__(f"{doing}: HTTP {status}: {message}")


def server_message(body: bytes, reason: str) -> str:
    """The Status message the API server sent (what kubectl would print), or the HTTP reason."""
    try:
        found = json.loads(body or b"{}")
    except ValueError:
        return reason
    return str(found.get("message") or reason) if isinstance(found, dict) else reason


def failure(status: int, reason: str, body: bytes, doing: str) -> Exception:
    """What a non-2xx answer means to the caller: refused (say so on the object) or transient (retry)."""
    if status in REFUSALS:
        return RefusedError(doing, status, server_message(body, reason))
    if status == 410:
        return ExpiredError(f"{doing}: HTTP 410 {server_message(body, reason)}")
    return TransientError(f"{doing}: HTTP {status} {reason}")


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
    """What `Kube.job` reads of a Job, kept from its watch events (context.Context.jobs) for as long as the Job
    exists: the status fields job_state reads, whether it is suspended, its uid. Not its pod template, times or pod
    counts it does not read: kept for every Job, they would be most of the operator's memory per object."""
    status = job.get("status") or {}
    return {"metadata": {"uid": (job.get("metadata") or {}).get("uid")},
            "spec": {"suspend": (job.get("spec") or {}).get("suspend")},
            "status": {"succeeded": status.get("succeeded"), "active": status.get("active"),
                       "conditions": [{key: c[key] for key in ("type", "status", "reason", "message") if key in c}
                                      for c in status.get("conditions") or []]}}


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


def labelled(items: list[dict[str, Any]], selector: dict[str, str]) -> list[dict[str, Any]]:
    """The items carrying every label of `selector` (again here, for servers that ignore a label selector)."""
    return [item for item in items
            if all(((item.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())]


def disruptions(pods: list[dict[str, Any]]) -> int:
    """The pods a disruption took (a DisruptionTarget condition: preemption, eviction, a drain)."""
    return sum(1 for pod in pods for c in (pod.get("status") or {}).get("conditions") or []
               if c.get("type") == "DisruptionTarget" and c.get("status") == "True")


def termination_message(pods: list[dict[str, Any]]) -> str:
    """The tail of the last termination message a container of these pods left (a failed run's log tail)."""
    messages = [str(terminated["message"])
                for pod in pods for status in (pod.get("status") or {}).get("containerStatuses") or []
                if (terminated := (status.get("state") or {}).get("terminated")) and terminated.get("message")]
    return messages[-1][-TERMINATION_TAIL:].strip() if messages else ""


def pod_refusal(events: list[dict[str, Any]], name: str) -> str:
    """The newest FailedCreate event's message about `name`, or ""."""
    refusals = [e for e in events if (e.get("involvedObject") or {}).get("name") == name
                and e.get("reason") == "FailedCreate" and e.get("message")]
    refusals.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return str(refusals[-1]["message"]) if refusals else ""


class Kube:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        # Made on the event loop, at the first use. Calls share CONNECTIONS connections; each watch holds one of its
        # own for as long as it runs (HTTP/1.1 streams one response a connection), so watches never take the calls'
        # connections: with more watches than CONNECTIONS, a shared pool would leave no connection for a call.
        self._session: aiohttp.ClientSession | None = None
        self._watches: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for session in (self._session, self._watches):
            if session is not None:
                await session.close()
        self._session = self._watches = None

    def _connected(self, watching: bool = False) -> aiohttp.ClientSession:
        if watching:
            self._watches = self._watches or self._new_session(limit=0)  # no limit: one connection per watch
            return self._watches
        self._session = self._session or self._new_session(limit=CONNECTIONS)
        return self._session

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            self.credentials.server, timeout=REQUEST_TIMEOUT, headers={"User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(limit=limit, ssl=self.credentials.tls() or True))

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if (authorization := self.credentials.authorization()) is not None:
            headers["Authorization"] = authorization
        return headers

    async def _request(self, doing: str, method: str, path: str, *, body: Any = None,
                       query: dict[str, str] | None = None, content_type: str = "application/json",
                       settled: frozenset[int] = frozenset({404})) -> Any:
        """One API call: its JSON answer. A status in `settled` means there is nothing to do (gone, or already
        there): None. Every other failure becomes TransientError or RefusedError."""
        headers = self._headers()
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":"))
        try:
            async with self._connected().request(method, path, params=query, data=data, headers=headers) as response:
                answer = await response.read()
                if response.status in settled:
                    return None
                if response.status >= 300:
                    raise failure(response.status, response.reason or "", answer, doing)
                return json.loads(answer) if answer else None
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:  # timeouts, resets, junk
            raise TransientError(f"{doing}: {type(error).__name__}: {error}") from error

    async def collection(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """A LIST of `path` (its items and the collection's resourceVersion, where a watch of it starts); a resource
        the API server does not serve (404: a CRD not installed) is a TransientError, listed again later."""
        found = await self._request(f"listing {path}", "GET", path, query=query, settled=frozenset())
        if not isinstance(found, dict):
            raise TransientError(f"listing {path}: not a list")
        return found

    async def watch(self, path: str, query: dict[str, str], read_timeout: float) -> AsyncIterator[dict[str, Any]]:
        """A WATCH of `path`: the events as the API server streams them, one JSON object a line, until it ends the
        stream (its `timeoutSeconds`). A line may be as long as the largest object (the API server's 3 MiB request
        limit), so lines are split here, not with the reader's readline (which refuses lines over 128 KiB). 410 Gone
        (the resourceVersion is older than the server keeps) is ExpiredError; other failures as for every call."""
        doing = f"watching {path}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT.sock_connect, sock_read=read_timeout)
        try:
            async with self._connected(watching=True).get(path, params={**query, "watch": "true"},
                                                          headers=self._headers(), timeout=timeout) as response:
                if response.status >= 300:  # 410 Gone included: ExpiredError
                    raise failure(response.status, response.reason or "", await response.read(), doing)
                pending = bytearray()
                async for chunk in response.content.iter_any():
                    pending += chunk
                    if b"\n" not in chunk:
                        continue
                    *lines, rest = pending.split(b"\n")
                    pending = bytearray(rest)
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
                if pending.strip():  # the last line, should the server not end it with a newline
                    yield json.loads(pending)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
            raise TransientError(f"{doing}: {type(error).__name__}: {error}") from error

    def _objects(self, kind: Kind, namespace: str) -> str:
        return Resource.of(kind).path(namespace)

    async def get_object(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        body = await self._request(f"reading {kind.kind} {namespace}/{name}", "GET",
                                   f"{self._objects(kind, namespace)}/{name}")
        return body if isinstance(body, dict) else None

    async def list_objects(self, kind: Kind, namespace: str) -> AsyncIterator[dict[str, Any]]:
        """The kind's objects in the namespace, listed in pages of PAGE_SIZE as the informers list: a sync that
        looks through a namespace's ModelVersions holds one page of them at a time, however many there are. A
        continue token the server compacted between pages (410) is an ExpiredError, a TransientError: the sync is
        retried, and lists again from the first page."""
        query = {"limit": str(PAGE_SIZE)}
        while True:
            page = await self._request(f"listing {kind.plural} in {namespace}", "GET", self._objects(kind, namespace),
                                       query=query)
            if not isinstance(page, dict):
                return
            for item in page.get("items") or []:
                yield item
            if not (token := (page.get("metadata") or {}).get("continue")):
                return
            query = {**query, "continue": str(token)}

    async def patch_status(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge `patch` (merge_patch: what changed since the status was read) into the status; a deleted object
        has nothing to report on: 404 is fine."""
        await self._request(f"writing status of {kind.kind} {namespace}/{name}", "PATCH",
                            f"{self._objects(kind, namespace)}/{name}/status", body={"status": patch},
                            content_type=MERGE_PATCH)

    async def patch_finalizers(self, kind: Kind, namespace: str, name: str, finalizers: list[str],
                               resource_version: str) -> None:
        """Set metadata.finalizers; the resourceVersion makes a concurrent change a 409 (retried), not a loss."""
        await self._request(f"updating finalizers of {kind.kind} {namespace}/{name}", "PATCH",
                            f"{self._objects(kind, namespace)}/{name}", content_type=MERGE_PATCH,
                            body={"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}})

    async def patch_annotations(self, kind: Kind, namespace: str, name: str, annotations: dict[str, str],
                                resource_version: str) -> None:
        """Set annotations on the object itself; the resourceVersion makes a concurrent change (a user resuming a
        notebook the operator is suspending) a 409, retried on what the user wrote, not a lost update."""
        await self._request(f"annotating {kind.kind} {namespace}/{name}", "PATCH",
                            f"{self._objects(kind, namespace)}/{name}", content_type=MERGE_PATCH,
                            body={"metadata": {"annotations": annotations, "resourceVersion": resource_version}})

    async def job(self, namespace: str, name: str, seen: dict[str, Any] | None = None,
                  count_disruptions: bool = True) -> JobState | None:
        """The Job's outcome, with the failed pod's termination message (its log tail) when it failed; while Kueue
        holds it (suspended), why; while it runs, how many of its pods a disruption took (for a run that counts its
        resumes). `seen`: the Job as the watch last delivered it (context.Context.jobs), read instead of a GET."""
        found = seen or await self._request(f"reading job {namespace}/{name}", "GET",
                                            f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        if not isinstance(found, dict):
            return None
        state = job_state(found)
        if state.failed:
            message = termination_message(await self.pods(namespace, {"job-name": name}))
            state = dataclasses.replace(state, message=message or state.message)
        elif (found.get("spec") or {}).get("suspend") and not state.succeeded:
            uid = str((found.get("metadata") or {}).get("uid"))
            state = dataclasses.replace(state, queued=await self.workload_wait(namespace, uid))
        if count_disruptions and not state.queued:
            state = dataclasses.replace(state, disruptions=disruptions(await self.pods(namespace,
                                                                                       {"job-name": name})))
        return state

    async def jobset(self, namespace: str, name: str) -> JobState | None:
        """The JobSet's outcome, as `job` reads a Job's: with a failed pod's termination message when it failed,
        and while Kueue holds it (suspended), why."""
        found = await self._request(f"reading jobset {namespace}/{name}", "GET",
                                    f"/apis/{JOBSET_API_VERSION}/namespaces/{namespace}/jobsets/{name}")
        if not isinstance(found, dict):
            return None
        state = jobset_state(found)
        if state.failed:
            message = termination_message(await self.pods(namespace, {"job-name": child_job(name)}))
            return dataclasses.replace(state, message=message or state.message)
        if (found.get("spec") or {}).get("suspend") and not state.succeeded:
            uid = str((found.get("metadata") or {}).get("uid"))
            return dataclasses.replace(state, queued=await self.workload_wait(namespace, uid))
        return state

    async def workload_wait(self, namespace: str, job_uid: str) -> str:
        """Why Kueue has not admitted a Job or JobSet: its Workload's conditions (Kueue labels the Workload with the
        job's UID, `kueue.x-k8s.io/job-uid`; its name is Kueue's own, derived from a hash, not to be rebuilt here)."""
        found = await self._request(f"listing Kueue workloads of job {job_uid} in {namespace}", "GET",
                                    f"/apis/{KUEUE_GROUP}/{KUEUE_VERSION}/namespaces/{namespace}/workloads",
                                    query={"labelSelector": f"{KUEUE_JOB_UID_LABEL}={job_uid}"})
        items = labelled(list(found.get("items") or []) if isinstance(found, dict) else [],
                         {KUEUE_JOB_UID_LABEL: job_uid})
        if not items:
            return workload_wait(None)
        queue = str((items[0].get("spec") or {}).get("queueName") or "")
        name = str((items[0].get("metadata") or {}).get("name") or "")
        pending = waiting_for_quota(items[0]) and queue and name
        return workload_wait(items[0], await self.queue_position(namespace, queue, name) if pending else None)

    async def queue_position(self, namespace: str, queue: str, workload_name: str) -> QueuePosition | None:
        """A pending Workload's place in line, from Kueue's visibility API. Best effort: the APIService may be
        unavailable (Kueue restarting, VisibilityOnDemand turned off), and the reason alone still says why it waits;
        the next sync asks again."""
        try:
            summary = await self._request(
                f"reading the pending workloads of queue {namespace}/{queue}", "GET",
                f"/apis/{KUEUE_VISIBILITY}/namespaces/{namespace}/localqueues/{queue}/pendingworkloads")
        except (TransientError, RefusedError):
            return None
        return queue_position(summary, workload_name)

    async def deployment(self, namespace: str, name: str) -> RolloutState | None:
        found = await self._request(f"reading deployment {namespace}/{name}", "GET",
                                    f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        return rollout_state(found) if isinstance(found, dict) else None

    async def stateful_set(self, namespace: str, name: str) -> RolloutState | None:
        found = await self._request(f"reading statefulset {namespace}/{name}", "GET",
                                    f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}")
        return rollout_state(found) if isinstance(found, dict) else None

    async def pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        """The pods with these labels, as the API server sends them."""
        text = selector_text(selector)
        found = await self._request(f"listing pods {text} in {namespace}", "GET",
                                    f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": text})
        return labelled(list(found.get("items") or []) if isinstance(found, dict) else [], selector)

    async def pod_refusal(self, namespace: str, name: str) -> str:
        """The newest refusal to create pods for `name` (a Job or StatefulSet), or "".

        The Job and StatefulSet controllers report it only as a FailedCreate event: ResourceQuota, Pod Security
        admission, a webhook, a LimitRange all end up there. Filtered by the API server (field selectors), and again
        here for servers that ignore them.
        """
        found = await self._request(f"listing events of {namespace}/{name}", "GET",
                                    f"/api/v1/namespaces/{namespace}/events",
                                    query={"fieldSelector": f"involvedObject.name={name},reason=FailedCreate"})
        return pod_refusal(list(found.get("items") or []) if isinstance(found, dict) else [], name)

    async def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply a child (create-only kinds are created, and left alone once they exist)."""
        kind, meta = manifest["kind"], manifest["metadata"]
        path = CHILDREN[kind].path(meta["namespace"])
        doing = f"applying {kind} {meta['namespace']}/{meta['name']}"
        if kind in CREATE_ONLY:  # 409: created by an earlier sync (maybe one whose answer was lost)
            await self._request(doing, "POST", path, body=manifest, settled=frozenset({409}))
            return
        await self._request(doing, "PATCH", f"{path}/{meta['name']}", body=manifest, content_type=APPLY_PATCH,
                            query={"fieldManager": FIELD_MANAGER, "force": "true"}, settled=frozenset())

    async def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: str) -> None:
        """Post a core/v1 Event about `involved` (an object reference), as kubectl describe shows them. The name is
        unique per event (the object's name and a random suffix), like client-go's recorder makes it."""
        namespace = involved["namespace"]
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{involved['name']}.{secrets.token_hex(8)}", "namespace": namespace},
                 "involvedObject": involved, "type": type_, "reason": reason, "message": message[:1024],
                 "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                 "source": {"component": FIELD_MANAGER}, "reportingComponent": FIELD_MANAGER}
        await self._request(f"posting an event on {involved['kind']} {namespace}/{involved['name']}", "POST",
                            f"/api/v1/namespaces/{namespace}/events", body=event, settled=frozenset())

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete a child that is no longer wanted (gone already is fine); its dependents go in the background."""
        await self._request(f"deleting {kind} {namespace}/{name}", "DELETE",
                            f"{CHILDREN[kind].path(namespace)}/{name}",
                            query={"propagationPolicy": "Background"})
