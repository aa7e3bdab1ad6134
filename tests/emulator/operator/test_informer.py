"""The informer against the emulator's watches (tests/support/emulator.py: versions, history, 410, ended streams):
every object handed on once, every change after, nothing lost when a watch ends, fails or expires."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest

from modelplane.operator import informer
from modelplane.operator.informer import Handler, Informer
from modelplane.operator.kube import CHILDREN, CONNECTIONS, Kube, Resource
from tests.support.emulator import ApiServerEmulator
from tests.support.facts import NAMESPACE
from tests.support.kube import eventually, kube_for
from tests.support.tasks import background

JOBS = CHILDREN["Job"]
PATH = JOBS.path(NAMESPACE)
Event = tuple[str | None, str]


def job(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE,
                                                                  "labels": labels},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x"}]}}}}


async def create(k8s: kmock.KubernetesEmulator, body: dict[str, Any]) -> None:
    assert (await k8s.post(PATH, json=body)).status == 200


async def label(k8s: kmock.KubernetesEmulator, name: str, value: str) -> None:
    assert (await k8s.patch(f"{PATH}/{name}", json={"metadata": {"labels": {"step": value}}})).status == 200


def requests(k8s: kmock.KubernetesEmulator, watch: bool) -> int:
    action = kmock.action.WATCH if watch else kmock.action.LIST
    return sum(1 for r in list(k8s) if r.url.path == PATH and r.action == action)


@contextlib.asynccontextmanager
async def running(k8s: kmock.KubernetesEmulator, count: int, resource: Resource = JOBS,
                  handler: Handler = lambda type_, body: None) -> AsyncIterator[Kube]:
    """`count` informers of `resource` on one client, cancelled (and the client closed) at the end."""
    kube = kube_for(k8s)
    try:
        async with background([Informer(kube, resource, NAMESPACE, handler).run() for _ in range(count)]):
            yield kube
    finally:
        await kube.close()


@contextlib.asynccontextmanager
async def informing(k8s: kmock.KubernetesEmulator, events: list[Event], fail_on: str = "") -> AsyncIterator[None]:
    def handler(type_: str | None, body: dict[str, Any]) -> None:
        if body["metadata"]["name"] == fail_on:
            raise RuntimeError("a bug in a handler")
        events.append((type_, body["metadata"]["name"]))

    async with running(k8s, 1, handler=handler):
        await eventually(lambda: requests(k8s, watch=True) >= 1)
        yield


async def test_each_object_is_handed_on_once_then_every_change_in_order(k8s: kmock.KubernetesEmulator) -> None:
    await create(k8s, job("a"))
    events: list[Event] = []
    async with informing(k8s, events):
        await create(k8s, job("b"))
        await label(k8s, "a", "1")
        assert (await k8s.delete(f"{PATH}/b")).status == 200
        await eventually(lambda: len(events) >= 4)
        await asyncio.sleep(0.1)  # and nothing more
    assert events == [(None, "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


async def test_a_watch_the_server_ends_resumes_from_its_last_version_without_listing_again(
        k8s: kmock.KubernetesEmulator) -> None:
    events: list[Event] = []
    async with informing(k8s, events):
        await create(k8s, job("a"))
        await eventually(lambda: events == [("ADDED", "a")])
        emulator = k8s
        assert isinstance(emulator, ApiServerEmulator)
        emulator.fail("GET", PATH, 503)  # the first watch again is refused: the informer waits and tries again
        emulator.end_watches()
        await label(k8s, "a", "1")  # while it is not watching
        await eventually(lambda: len(events) == 2)
    assert events == [("ADDED", "a"), ("MODIFIED", "a")]
    assert requests(k8s, watch=False) == 1  # one list: the version was still kept, so watching again sufficed


async def test_an_expired_version_lists_again_and_reports_what_was_deleted_meanwhile(
        k8s: kmock.KubernetesEmulator) -> None:
    await create(k8s, job("kept"))
    await create(k8s, job("gone"))
    events: list[Event] = []
    async with informing(k8s, events):
        assert isinstance(k8s, ApiServerEmulator)
        k8s.history_limit = 1
        k8s.fail("GET", PATH, 503)
        k8s.end_watches()
        assert (await k8s.delete(f"{PATH}/gone")).status == 200
        await label(k8s, "kept", "1")
        await label(k8s, "kept", "2")  # the deletion has left the history: watching from before it is 410
        await eventually(lambda: len(events) == 4)
    assert set(events[:2]) == {(None, "gone"), (None, "kept")}
    assert set(events[2:]) == {(None, "kept"), ("DELETED", "gone")}
    assert requests(k8s, watch=False) == 2


async def test_a_failing_list_is_retried_until_it_succeeds(k8s: kmock.KubernetesEmulator) -> None:
    assert isinstance(k8s, ApiServerEmulator)
    await create(k8s, job("a"))
    k8s.fail("GET", PATH, 500, times=2)
    events: list[Event] = []
    async with informing(k8s, events):
        await eventually(lambda: events == [(None, "a")])
    assert requests(k8s, watch=False) == 3


async def test_a_handler_that_raises_does_not_stop_the_watch(k8s: kmock.KubernetesEmulator) -> None:
    events: list[Event] = []
    async with informing(k8s, events, fail_on="bad"):
        await create(k8s, job("bad"))
        await create(k8s, job("good"))
        await eventually(lambda: events == [("ADDED", "good")])


async def test_an_object_larger_than_a_stream_line_buffer_arrives_whole(k8s: kmock.KubernetesEmulator) -> None:
    """aiohttp's readline refuses lines over 128 KiB; a Job with a 600 KiB annotation is one such line."""
    events: list[Event] = []
    big = job("big")
    big["metadata"]["annotations"] = {"note": "x" * 600_000}
    async with informing(k8s, events):
        await create(k8s, big)
        await eventually(lambda: events == [("ADDED", "big")])


async def test_a_kind_the_server_does_not_serve_yet_is_watched_once_it_does(k8s: kmock.KubernetesEmulator) -> None:
    """A CRD installed after the operator started (JobSet's): the list's 404 is retried until the kind exists."""
    resource = Resource("example.dev/v1", "Widget", "widgets")
    path = resource.path(NAMESPACE)
    seen: list[Event] = []
    async with running(k8s, 1, resource, lambda t, body: seen.append((t, body["metadata"]["name"]))):
        await eventually(lambda: any(r.url.path == path for r in list(k8s)))
        k8s.resources["example.dev/v1/widgets"] = kmock.ResourceInfo(kind="Widget", namespaced=True,
                                                                     verbs={"list", "watch", "create"})
        assert (await k8s.post(path, json={"apiVersion": "example.dev/v1", "kind": "Widget",
                                           "metadata": {"name": "w", "namespace": NAMESPACE}})).status == 200
        await eventually(lambda: seen in ([(None, "w")], [("ADDED", "w")]), timeout=5)


async def test_more_watches_than_the_calls_connections_leave_the_calls_working(k8s: kmock.KubernetesEmulator) -> None:
    """Each watch holds a connection while it runs: an operator serving many namespaces holds more watches than
    its calls' pool has connections, and its calls must still go out (a shared pool would leave none for them)."""
    await create(k8s, job("a"))
    async with running(k8s, CONNECTIONS + 5) as kube:
        await eventually(lambda: requests(k8s, watch=True) >= CONNECTIONS + 5)
        assert await asyncio.wait_for(kube.job(NAMESPACE, "a"), 5) is not None


async def test_a_410_answer_to_the_watch_itself_lists_again(k8s: kmock.KubernetesEmulator) -> None:
    """The API server answers a watch from a compacted version with HTTP 410 Gone when it serves the watch from
    etcd rather than its cache (k8s.io/apiserver: "too old resource version" as the status of the response, not an
    ERROR event in it): the informer lists again, as for the event."""
    await create(k8s, job("a"))
    events: list[Event] = []
    async with informing(k8s, events):
        assert isinstance(k8s, ApiServerEmulator)
        k8s.fail("GET", PATH, 410)
        k8s.end_watches()
        await eventually(lambda: len(events) == 2)
    assert events == [(None, "a"), (None, "a")]
    assert requests(k8s, watch=False) == 2


def lists(k8s: kmock.KubernetesEmulator) -> list[dict[str, str]]:
    """The query of each LIST of the Jobs, in order."""
    return [dict(r.params) for r in list(k8s) if r.url.path == PATH and r.action == kmock.action.LIST]


@pytest.fixture
def pages_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "PAGE_SIZE", 2)


@pytest.mark.usefixtures("pages_of_two")
async def test_a_large_collection_is_listed_in_pages_missing_nothing_changed_between_them(
        k8s: kmock.KubernetesEmulator) -> None:
    """Five Jobs in pages of two: three LISTs (`limit`, then `continue`), each Job handed on once; a Job created
    while the pages are read is in none of them (they show the first page's snapshot) and arrives once, from the
    watch that starts at the snapshot's version."""
    for name in ("a", "b", "c", "d", "e"):
        await create(k8s, job(name))
    events: list[Event] = []
    creating: list[asyncio.Task[None]] = []

    def handler(type_: str | None, body: dict[str, Any]) -> None:
        events.append((type_, body["metadata"]["name"]))
        if events == [(None, "a"), (None, "b")]:  # the first page handed on: the next is not read yet
            creating.append(asyncio.get_running_loop().create_task(create(k8s, job("z"))))

    async with running(k8s, 1, handler=handler):
        await eventually(lambda: ("ADDED", "z") in events)
        await asyncio.sleep(0.1)  # and nothing more
    assert events == [(None, name) for name in "abcde"] + [("ADDED", "z")]
    queries = lists(k8s)
    assert [q.get("limit") for q in queries] == ["2", "2", "2"]
    assert "continue" not in queries[0] and all(q.get("continue") for q in queries[1:])


async def five_jobs_failing(k8s: kmock.KubernetesEmulator, events: list[Event], status: int,
                            after: tuple[int, ...]) -> Handler:
    """Jobs a to e, and a handler that records what it is handed and, once it holds as many events as one of
    `after`, makes the next request of the Jobs (the list's next page) answer `status`."""
    for name in ("a", "b", "c", "d", "e"):
        await create(k8s, job(name))
    assert isinstance(k8s, ApiServerEmulator)
    emulator = k8s

    def handler(type_: str | None, body: dict[str, Any]) -> None:
        events.append((type_, body["metadata"]["name"]))
        if len(events) in after:
            emulator.fail("GET", PATH, status)

    return handler


@pytest.mark.usefixtures("pages_of_two")
async def test_a_list_whose_snapshot_expires_between_pages_is_listed_again_then_whole(
        k8s: kmock.KubernetesEmulator) -> None:
    """A continue token compacted between pages (410 Expired) is not an error to wait out: the informer lists again
    from the first page at once, and if that expires too, lists whole (client-go's pager, FullListIfExpired, lists
    whole at the first expiry); every Job is handed on, and the watch follows."""
    events: list[Event] = []
    # each first page handed on, its next page finds the snapshot compacted
    handler = await five_jobs_failing(k8s, events, 410, after=(2, 4))
    async with running(k8s, 1, handler=handler):
        await eventually(lambda: requests(k8s, watch=True) >= 1)
        await create(k8s, job("z"))
        await eventually(lambda: ("ADDED", "z") in events)
    assert events[:4] == [(None, "a"), (None, "b")] * 2
    assert events[4:] == [(None, name) for name in "abcde"] + [("ADDED", "z")]
    assert [("limit" in q, "continue" in q) for q in lists(k8s)] == [(True, False), (True, True)] * 2 + [
        (False, False)]


@pytest.mark.usefixtures("pages_of_two")
async def test_an_object_handed_on_by_a_list_that_failed_part_way_is_reported_deleted(
        k8s: kmock.KubernetesEmulator) -> None:
    """A page that fails (a 503) ends the list part-way; the informer backs off and lists again. A Job its first
    page handed on and that is deleted meanwhile is gone from the next list: it is reported DELETED, once (had the
    handed-on Jobs been forgotten with the failed list, its cached state would live on in ctx.jobs)."""
    events: list[Event] = []
    handler = await five_jobs_failing(k8s, events, 503, after=(2,))  # then waits BASE_DELAY and lists again
    async with running(k8s, 1, handler=handler):
        await eventually(lambda: len(lists(k8s)) >= 2)
        assert (await k8s.delete(f"{PATH}/a")).status == 200  # while it waits
        await eventually(lambda: ("DELETED", "a") in events)
        await asyncio.sleep(0.1)  # and nothing more
    assert events[:2] == [(None, "a"), (None, "b")]
    assert events.count(("DELETED", "a")) == 1
    assert {name for type_, name in events[2:] if type_ is None} == set("bcde")


async def test_a_410_to_a_list_from_no_version_backs_off(k8s: kmock.KubernetesEmulator) -> None:
    """A list's first page names no version, so a real API server never answers it 410; a proxy in between might.
    That is a failure like any other (backoff: 0.5 s, then doubled), not an expired version to list again at once:
    within a second, at most three LISTs, not hundreds."""
    assert isinstance(k8s, ApiServerEmulator)
    k8s.fail("GET", PATH, 410, times=1000)
    async with running(k8s, 1):
        await asyncio.sleep(1.0)
    assert 1 <= len(lists(k8s)) <= 3
