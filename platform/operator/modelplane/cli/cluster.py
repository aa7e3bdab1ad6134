"""The cluster as the plugins see it: the context and namespace kubectl would use (modelplane.cli.kubeconfig), and
every failure of a call as a one-line error that names the call."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Collection
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, kind_for, reasons
from modelplane.api.common import Condition, Status
from modelplane.cli.errors import CliError, Exit, warn
from modelplane.cli.kubeconfig import Target, connect
from modelplane.deploy import TENANT_LABEL

POLL_SECONDS = 0.5
# The reasons a wait ends on, and the exit code each gives (api/reasons.py groups them).
FAILED: dict[str, Exit] = {**dict.fromkeys(reasons.FAILED, Exit.FAILED),
                           **dict.fromkeys(reasons.REFUSALS, Exit.REFUSED)}


def status_of(obj: dict[str, Any]) -> Status:
    """The object's status read through its kind's type (api/), the one the operator's writes are checked against:
    both halves use the same names, and a status this plugin cannot read is a clear error, not a KeyError."""
    try:
        return kind_for(obj["kind"]).status.model_validate(obj.get("status") or {})
    except ValidationError as error:
        first = error.errors()[0]
        raise CliError(Exit.FAILED, f"{obj['kind']} {obj['metadata']['name']}: its status is not what this plugin "
                                    f"reads (status.{'.'.join(map(str, first['loc']))}: {first['msg']}); is the "
                                    "plugin as new as the operator?") from error


def ready_condition(obj: dict[str, Any]) -> Condition:
    """The Ready condition, or an Unknown one while the operator has not written it."""
    return next((c for c in status_of(obj).conditions if c.type == "Ready"),
                Condition(type="Ready", status="Unknown", reason="", message=""))


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready for the spec as it is now, as kstatus reads it: a status whose observedGeneration is behind
    metadata.generation (the operator has not answered the latest edit yet, or the edit's load waits for the one
    running) does not answer the edit just applied."""
    status = status_of(obj)
    generation = (obj.get("metadata") or {}).get("generation")
    return status.ready and (generation is None or status.observed_generation == generation)


def answered(error: ApiException) -> str:
    """The API server's own words for a refusal: its Status message (which names the field, the quota or the missing
    permission), else the HTTP status."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{error.status} {error.reason}" + (f": {message}" if message else "")


class Cluster:
    def __init__(self, api: kubernetes.client.ApiClient, target: Target) -> None:
        self.api, self.target, self.namespace = api, target, target.namespace
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
        return cls(*connect(kubeconfig, context, namespace))

    def _call(self, doing: str, call: Callable[[], Any], failing: Exit = Exit.NO_CLUSTER,
              expected: Collection[int] = ()) -> Any:
        """`call()`, its failures as one-line errors that say what was being done where; an ApiException with an
        `expected` status is the caller's to handle. 401 is always Exit.NO_CLUSTER (the credentials), any other
        refusal `failing`."""
        where = f"(context {self.target.context}, namespace {self.namespace})"
        try:
            return call()
        except ApiException as error:
            if error.status in expected:
                raise
            code = Exit.NO_CLUSTER if error.status == 401 else failing
            raise CliError(code, f"{doing} {where}: {answered(error)}") from error
        except urllib3.exceptions.HTTPError as error:
            raise CliError(Exit.NO_CLUSTER, f"cannot reach the cluster ({error.__class__.__name__}) while {doing} "
                                            f"{where}; check `kubectl config current-context`") from error

    def check_platform(self, kind: str) -> None:
        """The API server answers and serves `kind` (modelplane's CRDs are installed), before anything is applied."""
        if self.target.namespace_defaulted:
            self._warn_unless_tenant()
        plural = kind_for(kind).plural
        try:
            # A collection answers 404 only when its resource type does not exist.
            self._call(f"listing {plural}", lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, limit=1), expected=(404,))
        except ApiException as error:
            raise CliError(Exit.NO_CRDS, f"this cluster has no modelplane CRDs ({plural}.{GROUP} is not served): "
                                         "install the platform (pulumi up, or kubectl apply -k deploy/<stack>)"
                           ) from error

    def _warn_unless_tenant(self) -> None:
        """No -n and no namespace in the context means `default` (kubectl's rule), where the operator, which watches
        only tenant namespaces, would leave whatever is applied waiting: say so, unless `default` is a tenant's."""
        try:
            found = self._call(f"reading namespace {self.namespace}",
                               lambda: self.core.read_namespace(self.namespace), expected=(403, 404))
            labels = (found.metadata and found.metadata.labels) or {}
        except ApiException:  # not there, or not readable by its members: not theirs either way
            labels = {}
        if TENANT_LABEL not in labels:
            warn(f"no -n given and context {self.target.context!r} sets no namespace, so this is namespace "
                 f"{self.namespace!r}, which is no modelplane tenant's (no {TENANT_LABEL} label): the operator watches "
                 "only tenant namespaces; give -n TENANT (or `kubectl config set-context --current --namespace "
                 "TENANT`)")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        plural = kind_for(kind).plural
        try:
            found: dict[str, Any] = self._call(f"reading {kind} {name}", lambda: (
                self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)),
                expected=(404,))
        except ApiException:
            return None
        return found

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or merge its spec into the existing one (what `kubectl apply` does for us here)."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        plural = kind_for(kind).plural
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
        try:
            created: dict[str, Any] = self._call(f"creating {kind} {name}", lambda: (
                self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, obj)),
                Exit.REFUSED, expected=(409,))
            return created
        except ApiException:  # it exists
            return self.patch_spec(kind, name, obj["spec"])

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        plural = kind_for(kind).plural
        patched: dict[str, Any] = self._call(f"updating {kind} {name}", lambda: (
            self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name, {"spec": spec})),
            Exit.REFUSED)
        return patched

    def remove_annotation(self, kind: str, name: str, key: str) -> None:
        """A merge patch with the key null: gone if it was there, nothing changed otherwise."""
        plural = kind_for(kind).plural
        self._call(f"updating {kind} {name}", lambda: self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, {"metadata": {"annotations": {key: None}}}), Exit.REFUSED)

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
            if ready.reason in FAILED and ready.observed_generation == obj["metadata"].get("generation"):
                raise CliError(FAILED[ready.reason], f"{kind} {name}: {ready.reason}: {ready.message}")
            if time.monotonic() > deadline:
                raise CliError(Exit.TIMEOUT, f"{kind} {name}: no {waiting_for} after {timeout:.0f}s "
                                             f"(is the modelplane operator running?)")
            time.sleep(POLL_SECONDS)

    def secret_value(self, name: str, key: str) -> str:
        secret = self._call(f"reading secret {name}", lambda: self.core.read_namespaced_secret(name, self.namespace))
        if secret.data and key in secret.data:
            return base64.b64decode(secret.data[key]).decode()
        if key in (given := secret.string_data or {}):
            return str(given[key])
        raise CliError(Exit.FAILED, f"secret {name} has no {key!r}")
