"""kmock's Kubernetes emulator, made to do what the real API server does where our operator depends on it.

kmock (0.8) stores objects as plain JSON and merges every PATCH into them. The API server does more, and the
operator relies on it; these additions are ported from its behaviour (k8s.io/apiserver `pkg/endpoints/handlers`
patch.go and `fieldmanager`, k8s.io/apimachinery `structured-merge-diff`), each as far as noted:

- **Server-side apply** (`PATCH` with `application/apply-patch+yaml`, `fieldManager`, `force`): the fields a
  manager applied before and no longer applies are removed; fields in the applied config are set; fields other
  managers set stay; a missing object is created. Faithful for one manager applying whole objects. Simplified:
  every list is treated as atomic (upstream merges associative lists such as `containers` and `env` by key; the
  result is the same when one manager owns the whole list, as it does for every list our operator applies), and
  conflicts with other managers are always forced (the operator always applies with `force=true`).
- **A no-op is not an update**: a PATCH (any kind) that changes nothing stores no new version, keeps
  resourceVersion and sends no watch event (upstream skips the storage write when the object is unchanged).
- **Server-set fields**: uid, creationTimestamp, resourceVersion (incremented on every change) and generation
  (1 on create, +1 when anything but metadata and status changes; what a client sends is ignored, as upstream).
- **Pruning**: a status written to a modelplane custom resource loses the fields its CRD does not declare, as the
  API server's structural pruning does (tests/support/pruning.py; status only: specs come from tests' own objects).
- **The status subresource**: a PATCH to `.../status` changes only `status`; a PATCH of the main resource does not
  change `status` of kinds that have the subresource (custom resources, Jobs, Deployments, StatefulSets), and a
  create stores none of the status it was sent (upstream's PrepareForCreate resets it, e.g. pkg/registry/batch/job
  strategy.go `job.Status = batch.JobStatus{}`; a built-in kind then shows `status: {}`, here no status at all).
- **Optimistic concurrency**: a patch carrying `metadata.resourceVersion` that is not current gets 409 Conflict.
- **Status reasons**: an error's Status carries upstream's reason (metav1.StatusReason): `AlreadyExists` for a
  create of a name that exists (409; registry/generic/registry/store.go Create), `NotFound` for a 404, where kmock
  writes its own words ("Object Already Exists", "Object Not Found").
- **Watches from a resourceVersion** (k8s.io/apiserver `pkg/storage/cacher`; the API concepts page, "Efficient
  detection of changes"): a LIST answers with the collection's resourceVersion, exactly the version its items show;
  a WATCH from a version sends every change after it in order, and nothing before; from no version (or "0") it sends
  an ADDED for every object first. A DELETED event carries a new resourceVersion, as upstream's deletion does. The
  server keeps the last `history_limit` changes per resource, as the watch cache does: a watch from an older
  version gets an ERROR event with 410 Expired. `end_watches()` ends every open watch, as the server does when
  `timeoutSeconds` passes or a connection drops. Simplified: `timeoutSeconds` itself, bookmarks and label selectors
  are not applied (kmock sends every object of the resource; the operator checks its labels itself).
- **Lists in chunks** (the API concepts page, "Retrieving large results sets in chunks"; k8s.io/apiserver
  `pkg/storage/etcd3` store.go GetList): a LIST with `limit` answers at most that many items, in key order
  (namespace, name), with `metadata.continue` while more remain and `remainingItemCount` unless a selector was
  given; every page shows the first page's snapshot at its resourceVersion (what changes between pages is left to
  the watch from that version). A continue token whose version is compacted (`compact()`, as etcd compacts every
  5 minutes; or older than the watch history) is 410 Expired; one beside a resourceVersion (but "0"), or never
  issued, is 400.
  Simplified: a 410 carries no fresh continue token of its own (upstream offers one, for an inconsistent rest).
- **Faults on chosen calls**: `fail(method, path, status, times)` answers matching requests with that status
  before they touch any state (a 5xx, a 409, a 403...), so a test can show the operator converges anyway; with
  `after`, they hang until it is set, as an overloaded API server's answers do.

- **Field ownership moves with updates**: a merge or JSON patch that changes a field takes it from the managers
  that applied it, so their next apply leaves it alone (as upstream: "ownership moves to the manager making the
  change"). A refused (409) apply changes no ownership.

Not emulated (`test_emulator.py` holds the known gaps as strict xfails): admission (see `apiserver.py` and
`pod_security.py`), defaulting of built-in kinds, managedFields in the stored object, owner-reference garbage
collection, controllers (tests play those); a scalar replaced by a map (kmock's merge answers 500); the deletion
mark of an object with finalizers keeps its resourceVersion; a create keeps a uid the client sent; apply bodies
must be JSON (the operator sends JSON); a strategic-merge patch is merged as a JSON merge patch.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import datetime
import functools
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import aiobus, dicts, rendering
from kmock._internal import k8s as kmock_k8s

from modelplane.api import GROUP
from modelplane.deploy import crds
from modelplane.operator.kube import merge_patch
from tests.support.merge_patch import apply_merge_patch
from tests.support.pruning import prune

APPLY = "application/apply-patch+yaml"
# Resources whose status is a subresource: the main resource's PATCH leaves status alone (and vice versa).
STATUS_SUBRESOURCE = {"jobs", "deployments", "statefulsets", "datasets", "models", "modelservers", "notebooks"}
STATUS_SCHEMAS = {crd["spec"]["names"]["plural"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
    "status"] for crd in crds()}
Path = tuple[str, ...]
_MISSING = object()
ObjectKey = tuple[Any, str | None, str | None]  # (resource, namespace, name), as kmock keys its objects


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    message: str
    after: asyncio.Event | None  # answer only once this is set: an API server that hangs on these requests


def _leaves(value: Any, prefix: Path = ()) -> set[Path]:
    """The field paths a config sets: maps are walked, everything else (lists too) is one field."""
    if isinstance(value, dict) and value:
        return set().union(*(_leaves(v, (*prefix, k)) for k, v in value.items()))
    return {prefix}


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _remove(obj: dict[str, Any], path: Path) -> None:
    """Remove one field, and the maps it leaves empty."""
    parents = [obj]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for parent, key in zip(reversed(parents[:-1]), reversed(path[:-1]), strict=True):
        if parent.get(key) == {}:
            del parent[key]


def _merge(live: dict[str, Any], config: dict[str, Any]) -> None:
    for key, value in config.items():
        if isinstance(value, dict) and value and isinstance(live.get(key), dict):
            _merge(live[key], value)
        else:
            live[key] = copy.deepcopy(value)


def _rewrite(request: rendering.Request, **fields: Any) -> None:
    """Turn the request into what kmock should store. kmock matches its reactions against the very request objects
    in its log (identity), so the logged request itself is changed: tests then see what was stored."""
    for name, value in fields.items():
        object.__setattr__(request, name, value)


def _failure(status: int, message: str, reason: str) -> kmock_k8s.KubernetesError:
    """An error kmock renders as the API server's Status object with this code."""
    return kmock_k8s.KubernetesError(status=status, reason=reason, message=message, details={})


END_OF_WATCH: dict[str, Any] = {"type": "END"}  # put on a bus by end_watches(); never sent


@attrs.mutable(weakref_slot=True)
class _RecordingBus(aiobus.Bus[Any]):
    """kmock's event bus for one resource, with each change also recorded where a watch from a version finds it,
    and passed on to the bus of its namespace, which the watches of that namespace stream from. The API server
    hands each change to every watcher of the resource, which drops another namespace's with a key-prefix check
    (k8s.io/apiserver cacher: the watcher's filter); kmock would wake every watcher's stream for it instead, an
    asyncio round per watcher and change that made a watch of a quiet namespace cost the emulator more per change
    than the API server pays."""

    record: Callable[[dict[str, Any]], dict[str, Any]] = attrs.field(default=lambda event: event)
    namespaced: dict[str, aiobus.Bus[Any]] = attrs.field(factory=dict)

    async def put(self, *items: Any) -> None:
        recorded = [self.record(item) for item in items]  # end_watches() puts its mark past this, with Bus.put
        await super().put(*recorded)
        for event in recorded:
            namespace = ((event.get("object") or {}).get("metadata") or {}).get("namespace")
            if namespace in self.namespaced:
                await self.namespaced[namespace].put(event)


class _Buses(dict[Any, aiobus.Bus[Any]]):
    def __init__(self, emulator: ApiServerEmulator) -> None:
        super().__init__()
        self.emulator = emulator

    def __missing__(self, resource: Any) -> _RecordingBus:
        bus = self[resource] = _RecordingBus(record=functools.partial(self.emulator._record, resource))
        return bus


def upstream_reason(error: kmock_k8s.KubernetesError) -> kmock_k8s.KubernetesError:
    """kmock's error with the reason the API server gives it (apimachinery metav1.StatusReason)."""
    if isinstance(error, kmock_k8s.KubernetesObjectConflictError):
        return attrs.evolve(error, reason="AlreadyExists")
    if isinstance(error, kmock_k8s.KubernetesNotFoundError):
        return attrs.evolve(error, reason="NotFound")
    return error


class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the API server behaviour listed in the module docstring."""

    history_limit = 10_000  # changes kept per resource for watches from a version (the watch cache's window)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.faults: list[Fault] = []
        self.managed: dict[ObjectKey, dict[str, set[Path]]] = {}  # object -> manager -> fields
        self._writes = asyncio.Lock()
        self._versions = itertools.count(1000)
        self._uids = itertools.count(1)
        self._buses = _Buses(self)
        self.history: dict[Any, collections.deque[tuple[int, dict[str, Any]]]] = {}
        self._expired: dict[Any, int] = {}  # per resource, the version of the newest change dropped from history
        self._current_version = 0  # the version of the last change sent to the watches
        self._snapshots: dict[tuple[int, Any, str | None], list[dict[str, Any]]] = {}  # paged lists' items
        self._compacted = 0  # continue tokens of this version or older are expired (compact())

    def _record(self, resource: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Called as kmock sends a change, under its lock: the version it is at, kept in the resource's history."""
        obj = event.get("object") or {}
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        # kmock's own writes (a deletion, the deletion mark of an object with finalizers) keep the old version.
        if event.get("type") == "DELETED" or not version.isdigit() or int(version) <= self._current_version:
            version = str(next(self._versions))
            meta = {**(obj.get("metadata") or {}), "resourceVersion": version}
            event = {**event, "object": {**obj, "metadata": meta}}
        history = self.history.setdefault(resource, collections.deque())
        history.append((int(version), event))
        if len(history) > self.history_limit:
            self._expired[resource] = history.popleft()[0]
        self._current_version = max(self._current_version, int(version))
        return event

    def end_watches(self) -> None:
        """End every open watch (each client then watches again, from the last version it saw)."""
        for bus in list(self._buses.values()):
            for ending in (bus, *(bus.namespaced.values() if isinstance(bus, _RecordingBus) else ())):
                asyncio.get_running_loop().create_task(aiobus.Bus.put(ending, END_OF_WATCH))

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        return await super()._render_error(upstream_reason(exc) if isinstance(exc, kmock_k8s.KubernetesError) else exc)

    def _matches(self, request: rendering.Request, event: dict[str, Any]) -> bool:
        meta = (event.get("object") or {}).get("metadata") or {}
        return bool(self._KubernetesEmulator__check(  # type: ignore[attr-defined]  # kmock's own filter
            request, request.resource, meta.get("namespace"), meta.get("name"), strict=False))

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        if request.resource not in list(self._get_resources()):
            raise kmock_k8s.KubernetesResourceNotFoundError()
        limit = request.params.get("limit") or "0"
        if not limit.isdigit():
            raise _failure(400, f"limit: Invalid value: {limit!r}: must be a non-negative integer", "BadRequest")
        token = request.params.get("continue")
        if token:
            version, items, start = self._continued(request, token)
        else:
            async with self._lock:  # the items and the version they are at, as one snapshot
                objs = self._KubernetesEmulator__get_objs(request, strict=False)  # type: ignore[attr-defined]
                version, start = self._current_version, 0
                items = sorted((obj.raw for obj in objs if not obj.deleted),  # etcd's key order: namespace/name
                               key=lambda item: f"{item['metadata'].get('namespace') or ''}/{item['metadata']['name']}")
            if int(limit) and len(items) > int(limit):  # the pages after the first show this same snapshot
                items = copy.deepcopy(items)
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        end = start + int(limit) if int(limit) else len(items)
        if end < len(items):
            token = base64.urlsafe_b64encode(json.dumps({"rv": version, "start": end}).encode()).decode()
            self._snapshots[(version, request.resource, request.namespace)] = items
            meta["continue"] = token
            if not (request.params.get("labelSelector") or request.params.get("fieldSelector")):
                meta["remainingItemCount"] = len(items) - end
        return {"metadata": meta, "items": items[start:end]}

    def _continued(self, request: rendering.Request, token: str) -> tuple[int, list[dict[str, Any]], int]:
        """The snapshot a continue token names, and where its next page starts; 410 once its version is
        compacted (upstream's etcd3 store), 400 for a token it never issued or beside a resourceVersion."""
        if request.params.get("resourceVersion") not in (None, "", "0"):
            raise _failure(400, "specifying resource version is not allowed when using continue", "BadRequest")
        try:
            found = json.loads(base64.urlsafe_b64decode(token))
            version, start = int(found["rv"]), int(found["start"])
        except (ValueError, KeyError, TypeError) as error:
            raise _failure(400, f"continue key is not valid: {error}", "BadRequest") from error
        items = self._snapshots.get((version, request.resource, request.namespace))
        if items is None:
            raise _failure(400, "continue key is not valid: it names no list of this collection", "BadRequest")
        if version < self._compacted or version < self._expired.get(request.resource, 0):
            raise _failure(410, "The provided continue parameter is too old to display a consistent list result. "
                                "You can start a new list without the continue parameter.", "Expired")
        return version, items, start

    def compact(self) -> None:
        """Compact every version before the current one, as etcd does every 5 minutes: a continue token of an older
        snapshot is 410 Expired (etcd reads at the compacted revision itself still; watches keep the window of
        `history_limit`, as the watch cache does)."""
        self._compacted = self._current_version

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""  # the headers go out at once, as a real watch's do
        assert request.resource is not None  # kmock routes only a resource's requests here
        bus = self._buses[request.resource]
        if request.namespace and isinstance(bus, _RecordingBus):
            bus = bus.namespaced.setdefault(request.namespace, aiobus.Bus())
        mark = await bus.mark()  # before the snapshot or history is read: no change can fall between
        try:
            since = str(request.params.get("resourceVersion") or "0")
            async with self._lock:
                if since == "0":
                    sent = self._current_version
                    backlog = [{"type": "ADDED", "object": obj.raw} for obj in
                               self._KubernetesEmulator__get_objs(request, strict=False)  # type: ignore[attr-defined]
                               if not obj.deleted]
                elif not since.isdigit() or int(since) < self._expired.get(request.resource, 0):
                    backlog, sent = [{"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
                        "message": f"too old resource version: {since}"}}], -1
                else:
                    sent = int(since)
                    backlog = [event for version, event in self.history.get(request.resource, ())
                               if version > sent and self._matches(request, event)]
                    sent = max([sent, *(version for version, _ in self.history.get(request.resource, ()))])
            for event in backlog:
                yield event
            if sent < 0:
                return
            async for event in bus.stream(since=mark):
                if event is END_OF_WATCH:
                    return
                version = int(event["object"]["metadata"]["resourceVersion"])
                if version > sent and self._matches(request, event):
                    sent = version
                    yield event
        finally:
            await bus.unmark(mark)

    def fail(self, method: str, path: str, status: int, times: int = 1, message: str = "",
             after: asyncio.Event | None = None) -> None:
        """Answer the next `times` requests whose method matches and whose path matches the regex `path`; with
        `after`, only once it is set (until then they hang, holding nothing of the emulator's)."""
        self.faults.append(Fault(method.upper(), re.compile(path), status, times,
                                 message or f"injected fault: HTTP {status}", after))

    def _take_fault(self, request: rendering.Request) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method.value.upper() \
                    and fault.path.search(request.url.path):
                fault.times -= 1
                return fault
        return None

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        fault = self._take_fault(request)
        if fault:
            if fault.after:
                await fault.after.wait()
            raise _failure(fault.status, fault.message, "InjectedFault")
        if request.resource is not None and request.action == kmock.action.DELETE:
            async with self._writes:  # changes are sent in the order of their versions
                return await super()._handle(request)
        if request.resource is None or request.action not in (kmock.action.CREATE, kmock.action.UPDATE):
            return await super()._handle(request)
        async with self._writes:  # one write at a time: the diff below is computed against the state it changes
            return await self._write(request)

    def _current(self, key: ObjectKey) -> dict[str, Any] | None:
        try:
            obj = self.objects[key]  # type: ignore[index]  # kmock types names as str; None finds nothing
        except KeyError:
            return None
        return None if obj.deleted else copy.deepcopy(dict(obj.raw))

    async def _write(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        data = request.data if isinstance(request.data, dict) else {}
        name = request.name or (data.get("metadata") or {}).get("name")
        namespace = request.namespace or (data.get("metadata") or {}).get("namespace")
        key = (request.resource, namespace, name)
        current = self._current(key)
        applying = request.headers.get("Content-Type", "").startswith(APPLY)

        if request.action == kmock.action.CREATE or (applying and current is None):
            if current is not None:
                return await super()._handle(request)  # kmock answers 409
            new = copy.deepcopy(data)
            if (request.resource.plural if request.resource else "") in STATUS_SUBRESOURCE:
                new.pop("status", None)  # status is the controllers' to write (upstream: PrepareForCreate resets it)
            meta = new.setdefault("metadata", {})
            meta.setdefault("namespace", namespace)
            meta.setdefault("uid", f"uid-emulated-{next(self._uids)}")
            meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta["resourceVersion"] = str(next(self._versions))
            meta["generation"] = 1
            if applying:
                self.managed[key] = {request.params.get("fieldManager", ""): _leaves(data)}
            _rewrite(request, data=new, action=kmock.action.CREATE, name=name, namespace=namespace)
            return await super()._handle(request)

        if current is None or not request.name:
            return await super()._handle(request)  # kmock answers 404
        if isinstance(request.data, list):  # a JSON patch: let kmock apply it, then compare
            new = dict(dicts.json_patch_dict(current, request.data))
        expected = (data.get("metadata") or {}).get("resourceVersion")
        if expected and expected != current["metadata"].get("resourceVersion"):
            raise _failure(409, f"Operation cannot be fulfilled on {name!r}: the object "
                                "has been modified; please apply your changes to the latest version and try again",
                           "Conflict")
        if applying:
            new = self._apply(key, current, data, request.params.get("fieldManager", ""))
        else:  # a merge patch: None removes a key, lists are replaced
            new = apply_merge_patch(current, data)
            self._take_over(key, current, new)
        new = self._server_fields(request, current, new)
        if new == current:  # no write, no new resourceVersion, no watch event
            return aiohttp.web.json_response(current)
        _rewrite(request, data=copy.deepcopy(merge_patch(current, new)))
        return await super()._handle(request)

    def _take_over(self, key: ObjectKey, current: dict[str, Any], new: dict[str, Any]) -> None:
        """An update owns what it changed: upstream moves a changed field's ownership to the updating manager, so a
        later apply that omits it leaves it alone."""
        changed = {path for path in _leaves(new) | _leaves(current) if _get(new, path) != _get(current, path)}
        for fields in self.managed.get(key, {}).values():
            fields -= {path for path in fields if any(path[:len(c)] == c or c[:len(path)] == path for c in changed)}

    def _apply(self, key: ObjectKey, live: dict[str, Any], config: dict[str, Any],
               manager: str) -> dict[str, Any]:
        owned = self.managed.setdefault(key, {})
        applied = _leaves(config)
        result = copy.deepcopy(live)
        others = set().union(*(fields for name, fields in owned.items() if name != manager))
        for path in owned.get(manager, set()) - applied - others:
            _remove(result, path)
        _merge(result, config)
        owned[manager] = applied
        return result

    def _server_fields(self, request: rendering.Request, current: dict[str, Any],
                       new: dict[str, Any]) -> dict[str, Any]:
        """Keep what clients cannot change; move resourceVersion and generation as the API server does."""
        new = copy.deepcopy(new)  # kmock's merge shares unchanged sub-dicts with `current`
        plural = request.resource.plural if request.resource else ""
        if plural in STATUS_SUBRESOURCE:
            if request.subresource == "status":
                new = {**current, "status": new.get("status")} if "status" in new else \
                    {k: v for k, v in current.items() if k != "status"}
                schema = STATUS_SCHEMAS.get(plural) if request.resource and request.resource.group == GROUP else None
                if schema and isinstance(new.get("status"), dict):  # what the CRD does not declare is dropped
                    new["status"] = prune(schema, new["status"])[0]
            elif "status" in current:
                new = {**new, "status": current["status"]}
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "resourceVersion", "generation"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        if new == current:
            return new
        meta["resourceVersion"] = str(next(self._versions))
        ignored = {"metadata", "status"}
        if {k: v for k, v in new.items() if k not in ignored} != {k: v for k, v in current.items() if k not in ignored}:
            meta["generation"] = int(current["metadata"].get("generation") or 1) + 1
        return new
