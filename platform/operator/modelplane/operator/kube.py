"""The Kubernetes API as the operator uses it: read objects, create children idempotently, write status.

The only module that talks to the API server; everything it returns is plain data for the pure reconcilers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import kopf
import kubernetes
from kubernetes.client.exceptions import ApiException

from modelplane.api.common import GROUP, VERSION
from modelplane.api.resource import Kind
from modelplane.reconcile.common import JobState, RolloutState

TERMINATION_TAIL = 2000


def _temporary(error: ApiException, doing: str) -> kopf.TemporaryError:
    """API trouble is retried by kopf with backoff; the object never crash-loops the operator."""
    return kopf.TemporaryError(f"{doing}: HTTP {error.status} {error.reason}", delay=15)


def job_state(job: dict[str, Any]) -> JobState:
    """A Job's outcome from its status (conditions first, counts as a fallback)."""
    status = job.get("status") or {}
    finished = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    succeeded = "Complete" in finished or bool(status.get("succeeded"))
    return JobState(succeeded=succeeded, failed="Failed" in finished and not succeeded)


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.core = kubernetes.client.CoreV1Api(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.autoscaling = kubernetes.client.AutoscalingV2Api(client)

    def get_object(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise _temporary(error, f"reading {kind.kind} {namespace}/{name}") from error
        return body if isinstance(body, dict) else None

    def patch_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, kind.plural, name,
                                                              {"status": status})
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to report on
                raise _temporary(error, f"writing status of {kind.kind} {namespace}/{name}") from error

    def job(self, namespace: str, name: str) -> JobState | None:
        """The Job's outcome, with the failed pod's termination message (its log tail) when it failed."""
        try:
            job = self.client.sanitize_for_serialization(  # type: ignore[no-untyped-call]
                self.batch.read_namespaced_job(name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise _temporary(error, f"reading job {namespace}/{name}") from error
        state = job_state(job)
        if state.failed:
            state = dataclasses.replace(state, message=self.termination_message(namespace, name))
        return state

    def deployment(self, namespace: str, name: str) -> RolloutState | None:
        return self._rollout(self.apps.read_namespaced_deployment, namespace, name)

    def stateful_set(self, namespace: str, name: str) -> RolloutState | None:
        return self._rollout(self.apps.read_namespaced_stateful_set, namespace, name)

    def _rollout(self, read: Callable[..., Any], namespace: str, name: str) -> RolloutState | None:
        try:
            status = read(name, namespace).status
        except ApiException as error:
            if error.status == 404:
                return None
            raise _temporary(error, f"reading {namespace}/{name}") from error
        return RolloutState(replicas=status.replicas or 0, ready=status.ready_replicas or 0,
                               available=status.available_replicas or 0) if status else RolloutState()

    def termination_message(self, namespace: str, job_name: str) -> str:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
        messages = [
            status.state.terminated.message
            for pod in pods if pod.metadata and (pod.metadata.labels or {}).get("job-name") == job_name
            for status in (pod.status.container_statuses if pod.status else None) or []
            if status.state and status.state.terminated and status.state.terminated.message
        ]
        return messages[-1][-TERMINATION_TAIL:].strip() if messages else ""

    def quota_refusal(self, namespace: str, name: str) -> str:
        """The newest "exceeded quota" refusal to create pods for `name` (a Job or StatefulSet), or ""."""
        # Filtered by the API server (field selectors), and again here for servers that ignore them.
        events = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},reason=FailedCreate").items
        refusals = [e for e in events if e.involved_object and e.involved_object.name == name
                    and e.reason == "FailedCreate" and "exceeded quota" in (e.message or "")]
        refusals.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return str(refusals[-1].message) if refusals else ""

    def ensure(self, manifest: dict[str, Any]) -> None:
        """Create the child; if it exists, leave a Job alone (its template is immutable) and update the rest."""
        kind, meta = manifest["kind"], manifest["metadata"]
        creators: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = {
            "Job": (self.batch.create_namespaced_job, None),
            "ConfigMap": (self.core.create_namespaced_config_map, self.core.patch_namespaced_config_map),
            "Deployment": (self.apps.create_namespaced_deployment, self.apps.patch_namespaced_deployment),
            "StatefulSet": (self.apps.create_namespaced_stateful_set, self.apps.patch_namespaced_stateful_set),
            "Secret": (self.core.create_namespaced_secret, None),  # a token is generated once, never replaced
            "Service": (self.core.create_namespaced_service, self.core.patch_namespaced_service),
            "HorizontalPodAutoscaler": (self.autoscaling.create_namespaced_horizontal_pod_autoscaler,
                                        self.autoscaling.patch_namespaced_horizontal_pod_autoscaler),
        }
        create, patch = creators[kind]
        try:
            create(meta["namespace"], manifest)
        except ApiException as error:
            if error.status != 409:
                raise _temporary(error, f"creating {kind} {meta['namespace']}/{meta['name']}") from error
            if patch is not None:
                patch(meta["name"], meta["namespace"], manifest)
