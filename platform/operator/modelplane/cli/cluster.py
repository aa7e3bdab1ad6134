"""The cluster as the plugins see it: the current kubeconfig context and namespace, like any kubectl command."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from modelplane.api import GROUP, VERSION, kind_for
from modelplane.cli.errors import CliError, Exit

POLL_SECONDS = 0.5
FAILED = {"JobFailed": Exit.FAILED, "BuildFailed": Exit.FAILED, "InvalidSpec": Exit.REFUSED,
          "GPUNotOffered": Exit.REFUSED, "QuotaExceeded": Exit.REFUSED}


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


class Cluster:
    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)

    @classmethod
    def from_kubeconfig(cls, namespace: str | None = None, context: str | None = None) -> Cluster:
        try:
            contexts, active = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
            chosen = next((c for c in contexts if c["name"] == context), active) if context else active
            api = kubernetes.config.new_client_from_config(context=chosen["name"])  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, FileNotFoundError, TypeError) as error:
            raise CliError(Exit.NO_CLUSTER, f"no cluster: {error} (check `kubectl config current-context`)") from error
        return cls(api, namespace or chosen.get("context", {}).get("namespace") or "default")

    def _call(self, doing: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except urllib3.exceptions.HTTPError as error:
            raise CliError(Exit.NO_CLUSTER, f"cannot reach the cluster ({error.__class__.__name__}) while {doing}; "
                                            "check `kubectl config current-context`") from error

    def check_platform(self) -> None:
        """The API server answers and serves modelplane.dev (the CRDs are installed)."""
        try:
            # A collection answers 404 only when its resource type does not exist.
            self._call("listing notebooks", lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "notebooks", limit=1))
        except ApiException as error:
            if error.status != 404:
                raise CliError(Exit.NO_CLUSTER, f"the cluster answered {error.status} {error.reason}") from error
            raise CliError(Exit.NO_CRDS, "this cluster has no modelplane CRDs: install the platform "
                                         "(pulumi up, or kubectl apply -k deploy/<stack>)") from error

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        plural = kind_for(kind).plural
        try:
            found: dict[str, Any] = self._call(f"reading {kind} {name}", lambda: (
                self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)))
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or merge its spec into the existing one (what `kubectl apply` does for us here)."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        plural = kind_for(kind).plural
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
        try:
            created: dict[str, Any] = self._call(f"creating {kind} {name}", lambda: (
                self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, obj)))
            return created
        except ApiException as error:
            if error.status != 409:
                raise CliError(Exit.REFUSED, f"{kind} {name} refused: {error.reason}: {error.body}") from error
        return self.patch_spec(kind, name, obj["spec"])

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        plural = kind_for(kind).plural
        try:
            patched: dict[str, Any] = self._call(f"updating {kind} {name}", lambda: (
                self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name,
                                                           {"spec": spec})))
        except ApiException as error:
            raise CliError(Exit.REFUSED, f"{kind} {name} refused: {error.reason}: {error.body}") from error
        return patched

    def wait(self, kind: str, name: str, done: Callable[[dict[str, Any]], bool], timeout: float,
             waiting_for: str, on_change: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
        """Poll until `done(obj)`; a terminal failure reason ends the wait with its exit code and message."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            obj = self.get(kind, name)
            if obj is None:
                raise CliError(Exit.FAILED, f"{kind} {name} was deleted while waiting for {waiting_for}")
            if obj.get("status") != (last or {}).get("status"):
                on_change(obj)
            last = obj
            if done(obj):
                return obj
            ready = ready_condition(obj)
            if ready.get("reason") in FAILED and ready.get("observedGeneration") == obj["metadata"].get("generation"):
                raise CliError(FAILED[ready["reason"]], f"{kind} {name}: {ready['reason']}: {ready.get('message')}")
            if time.monotonic() > deadline:
                raise CliError(Exit.TIMEOUT, f"{kind} {name}: no {waiting_for} after {timeout:.0f}s "
                                             f"(is the modelplane operator running?)")
            time.sleep(POLL_SECONDS)

    def secret_value(self, name: str, key: str) -> str:
        secret = self._call(f"reading secret {name}", lambda: self.core.read_namespaced_secret(name, self.namespace))
        if secret.data and key in secret.data:
            return base64.b64decode(secret.data[key]).decode()
        return str((secret.string_data or {})[key])
