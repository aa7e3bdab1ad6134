"""Watching: each resource the operator reacts to, listed and then watched, as client-go's Reflector does.

An `Informer` holds one resource in one namespace (or in all of them): it lists it, hands every object to its
handler, then watches from the list's resourceVersion and hands on every change. The handlers only note facts and
queue keys (handlers.py), so the events go to them directly. (kopf, which watched before, delivered the same events
through per-event machinery, a task per object, a cause, kwargs and a logger for every handler call, that took a
quarter of the operator's CPU at 3,000 Datasets: bench/operator_throughput.py.)

The API server's rules this relies on (k8s.io/client-go tools/cache/reflector.go; the Kubernetes API concepts,
"Efficient detection of changes" and "Watch bookmarks"):
- a LIST answers with the collection's resourceVersion; a WATCH from that version sends every change after it, in
  order, each carrying its object's new resourceVersion (a DELETED event too);
- the server ends a watch after its `timeoutSeconds`, and a connection may drop: the informer watches again from the
  last resourceVersion it saw, missing nothing; a BOOKMARK event moves that version on with no object changed;
- 410 Gone, as the watch's HTTP status or as an ERROR event in its stream: the version is older than the server
  keeps: list again;
- any other failure (the API server away, a 5xx, a 403 while RBAC is fixed, a 404 while a CRD is not installed yet):
  try again after a delay that doubles up to MAX_DELAY (client-go: 800 ms to 30 s), watching from the last version
  if the list had succeeded, else listing.
An object a relist no longer shows was deleted while the informer was not watching: its handler gets it as DELETED
(as client-go's DeltaFIFO.Replace reports it), with the labels it was last seen with. Listed objects come with type
None: the handlers treat them as new, so every object is synced after a start or a relist but one at rest, which
has nothing to do (sync.at_rest; a Job's handler leaves out a Job that has no status yet, or whose owner is not
listed yet: its owner's own listing decides).
A list comes in pages of PAGE_SIZE (`limit` and `continue`, as client-go's pager asks for them; the API concepts,
"Retrieving large results sets in chunks"): every page shows the first page's snapshot, and the watch starts from
its resourceVersion. Each page's objects are handed on as the page arrives and then dropped, so a restart beside
10,000 objects holds one page of them at a time, not the whole collection parsed at once (client-go collects the
pages before it hands them on; Go's objects are compact, Python's dicts are about five times their JSON:
bench/operator_restart.py). A continue token the server has compacted meanwhile (410 Expired) starts the list
again from its first page, and a second expiry lists it whole, so a list always ends (client-go's pager lists whole
at the first: FullListIfExpired). Whatever a list that failed part-way handed on stays seen, so that a later list
reports its deletion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from modelplane.operator.kube import (
    PAGE_SIZE as PAGE_SIZE,  # the informer's own binding: a benchmark or test may page its lists alone
)
from modelplane.operator.kube import (
    ExpiredError,
    Kube,
    RefusedError,
    Resource,
    TransientError,
    selector_text,
)

Handler = Callable[[str | None, dict[str, Any]], None]  # (ADDED, MODIFIED, DELETED, or None when listed; the object)
Key = tuple[str, str]  # (namespace, name)

SERVER_TIMEOUT = 270  # seconds the server holds a watch before ending it (`timeoutSeconds`)
READ_MARGIN = 30.0  # nothing read for SERVER_TIMEOUT + this: the connection is dead, whatever TCP thinks
BASE_DELAY, MAX_DELAY = 0.5, 30.0  # the wait after a failure, doubled for each failure in a row
SHORTEST_WATCH = 1.0  # a watch the server ends sooner than this with nothing in it counts as a failure

log = logging.getLogger(__name__)


class Informer:
    """Lists and watches `resource` in `namespace` (None: all namespaces), handing every object and change to
    `handler`, until cancelled. A handler that raises is logged; the informer goes on."""

    def __init__(self, kube: Kube, resource: Resource, namespace: str | None, handler: Handler,
                 selector: dict[str, str] | None = None) -> None:
        self.kube, self.resource, self.handler = kube, resource, handler
        self.path = resource.path(namespace)
        self.query = {"labelSelector": selector_text(selector)} if selector else {}
        self.seen: dict[Key, dict[str, str]] = {}  # every object shown and not deleted -> its labels
        self.version = ""  # the resourceVersion the next watch starts from; "" until a list succeeded

    async def run(self) -> None:
        delay = BASE_DELAY
        while True:
            try:
                if not self.version:
                    await self.list()
                    delay = BASE_DELAY
                if await self.watch():
                    delay = BASE_DELAY
                    continue
                failure = f"the server ended the watch within {SHORTEST_WATCH:.0f} s with no event"
            except ExpiredError:
                log.info("%s: resourceVersion %s has expired; listing again", self.path, self.version)
                self.version = ""
                continue
            except (TransientError, RefusedError) as error:
                failure = str(error)
            except Exception as error:  # a bug, or an answer it cannot read: retried too, never the end of the watch
                log.exception("%s: watching failed", self.path)
                failure = f"{type(error).__name__}: {error}"
            log.warning("%s: %s; trying again in %.1f s", self.path, failure, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

    async def list(self) -> None:
        """List everything (in pages), hand each object on, report as DELETED what the last list showed and this one
        does not; the watch then starts from the list's resourceVersion."""
        listed: dict[Key, dict[str, str]] = {}
        try:
            for attempt, limit in enumerate((PAGE_SIZE, PAGE_SIZE, 0)):
                try:
                    version = await self._pages(limit, listed)
                    break
                except ExpiredError:  # only a page after the first: a list from no version cannot expire
                    # Its snapshot was compacted between pages: list again from the first page, and whole if that
                    # expires too (client-go's pager lists whole at once: FullListIfExpired; paged, the memory a
                    # restart needs stays one page's). What was handed on meanwhile stays seen (below).
                    log.info("%s: the list's snapshot expired between its pages; listing again%s", self.path,
                             " whole" if attempt else "")
                    self.seen.update(listed)
                    listed = {}
        except BaseException:  # handed on but not yet in `seen`: a later list must still report their deletion
            self.seen.update(listed)
            raise
        for (namespace, name), labels in self.seen.items():
            if (namespace, name) not in listed:
                self._hand_on("DELETED", {"apiVersion": self.resource.api_version, "kind": self.resource.kind,
                                          "metadata": {"namespace": namespace, "name": name, "labels": labels}})
        self.seen, self.version = listed, version

    async def _pages(self, limit: int, listed: dict[Key, dict[str, str]]) -> str:
        """One list of `limit` objects a page (0: one page), each page's objects handed on (and noted in `listed`) as
        it arrives; returns the snapshot's resourceVersion (the first page's: every page shows that snapshot)."""
        query = {**self.query, "limit": str(limit)} if limit else dict(self.query)
        version = None
        while True:
            try:
                page = self._hand_on_page(await self.kube.collection(self.path, query), listed)
            except ExpiredError as error:
                if "continue" in query:
                    raise
                raise TransientError(str(error)) from error  # not a compacted snapshot: back off, as for any failure
            version = str(page.get("resourceVersion") or "") if version is None else version
            if not page.get("continue"):
                return version
            query = {**query, "continue": str(page["continue"])}

    def _hand_on_page(self, found: dict[str, Any], listed: dict[Key, dict[str, str]]) -> dict[str, Any]:
        """Hand on a page's objects; returns its metadata (the page itself is dropped with this call)."""
        for item in found.get("items") or []:
            # A list's items carry no kind (the list's own is `<Kind>List`); the handlers expect one, as watch
            # events have it.
            item.setdefault("apiVersion", self.resource.api_version)
            item.setdefault("kind", self.resource.kind)
            meta = item.get("metadata") or {}
            listed[(meta.get("namespace") or "", meta.get("name") or "")] = meta.get("labels") or {}
            self._hand_on(None, item)
        page: dict[str, Any] = found.get("metadata") or {}
        return page

    async def watch(self) -> bool:
        """One watch, until the server ends it: whether it was a normal one (lasted, or brought events)."""
        query = {**self.query, "allowWatchBookmarks": "true", "timeoutSeconds": str(SERVER_TIMEOUT)}
        if self.version:
            query["resourceVersion"] = self.version
        started, events = time.monotonic(), 0
        async for event in self.kube.watch(self.path, query, SERVER_TIMEOUT + READ_MARGIN):
            type_, obj = event.get("type"), event.get("object") or {}
            if type_ == "ERROR":
                if obj.get("code") == 410:
                    raise ExpiredError(f"watching {self.path}: {obj.get('message')}")
                raise TransientError(f"watching {self.path}: {obj.get('code')} {obj.get('message')}")
            events += 1
            self.version = str((obj.get("metadata") or {}).get("resourceVersion") or self.version)
            if type_ == "DELETED":
                meta = obj.get("metadata") or {}
                self.seen.pop((meta.get("namespace") or "", meta.get("name") or ""), None)
            elif type_ in ("ADDED", "MODIFIED"):
                self._remember(obj)
            else:  # BOOKMARK, or a type this version does not know
                continue
            self._hand_on(type_, obj)
        return events > 0 or time.monotonic() - started >= SHORTEST_WATCH

    def _remember(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self.seen[(meta.get("namespace") or "", meta.get("name") or "")] = meta.get("labels") or {}

    def _hand_on(self, type_: str | None, obj: dict[str, Any]) -> None:
        try:
            self.handler(type_, obj)
        except Exception:  # a bug in one handler must not stop the watch for every other object
            log.exception("%s: handling %s of %s failed", self.path, type_ or "LISTED",
                          (obj.get("metadata") or {}).get("name"))
