"""The recorder: a sync's Events are posted beside it, in order per object, best effort, and drained at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import pytest

from modelplane.api.reasons import EventReason
from modelplane.operator import handlers, kube
from modelplane.operator import recorder as recording
from modelplane.operator.context import Context
from modelplane.operator.handlers import resync, stop, work
from modelplane.operator.kube import Kube, TransientError
from modelplane.operator.metrics import Metrics
from modelplane.operator.recorder import Batch, Recorder
from modelplane.reconcile.notices import Notice
from tests.support.facts import DEV_CLUSTER, NAMESPACE
from tests.support.tasks import background


class EventsApi:
    """Stands in for Kube's Event posting: each post waits until `open` is set, then is kept (or fails if its
    reason is in `failing`)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.posted: list[tuple[str, str, str]] = []  # (object name, reason, time)
        self.failing: dict[str, Exception] = {}
        self.closed = False

    async def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: str) -> None:
        await self.open.wait()
        if reason in self.failing:
            raise self.failing[reason]
        self.posted.append((involved["name"], reason, now))

    async def close(self) -> None:
        self.closed = True


def batch(name: str, *reasons: EventReason, at: str = "2026-12-04T07:00:00Z") -> Batch:
    involved = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "name": name, "namespace": NAMESPACE,
                "uid": f"uid-{name}", "resourceVersion": "1"}
    return Batch(involved, [Notice("Normal", reason, f"{reason} of {name}") for reason in reasons], at)


def posting(recorder: Recorder) -> contextlib.AbstractAsyncContextManager[list[asyncio.Task[None]]]:
    """The recorder's posters, as handlers.start runs them, stopped at the end."""
    return background([recorder.post(poster) for poster in range(recording.POSTERS)])


def context(api: EventsApi) -> Context:
    """A Context whose posters, workers and resync run as handlers.start makes them, for stop() to stop."""
    ctx = Context(kube=cast(Kube, api), cluster=DEV_CLUSTER, store=cast(Any, None), signer=cast(Any, None),
                  namespaces=(NAMESPACE,))
    ctx.posting = [asyncio.create_task(ctx.recorder.post(poster)) for poster in range(recording.POSTERS)]
    ctx.tasks = [asyncio.create_task(work(ctx)), asyncio.create_task(resync(ctx))]
    return ctx


async def test_recording_never_waits_and_each_objects_events_are_posted_in_the_order_recorded() -> None:
    api = EventsApi()
    recorder = Recorder(cast(Kube, api), Metrics())
    names = ("a", "b", "c", "d", "e", "f", "g", "h")
    async with posting(recorder):
        for name in names:  # the API server is not answering: recording returns at once all the same
            recorder.record(batch(name, EventReason.READY, EventReason.VERSION_CREATED, at="2026-12-04T07:00:00Z"))
        for name in names:  # the next sync of each, while the first's Events still wait
            recorder.record(batch(name, EventReason.PROMOTED, at="2026-12-04T07:00:01Z"))
        await asyncio.sleep(0.01)
        assert api.posted == [] and recorder.unfinished() == 2 * len(names)
        api.open.set()
        assert await recorder.drain(within=5) == 0
    for name in names:
        assert [(reason, at) for who, reason, at in api.posted if who == name] == [
            ("Ready", "2026-12-04T07:00:00Z"), ("VersionCreated", "2026-12-04T07:00:00Z"),  # the time of the sync
            ("Promoted", "2026-12-04T07:00:01Z")]
    assert recorder.unfinished() == 0


async def test_an_event_that_fails_is_logged_and_the_rest_are_posted(caplog: pytest.LogCaptureFixture) -> None:
    api = EventsApi()
    api.open.set()
    api.failing = {"VersionCreated": TransientError("posting an event: HTTP 503"),
                   "Promoted": KeyError("a bug")}
    recorder = Recorder(cast(Kube, api), Metrics())
    async with posting(recorder) as posters:
        recorder.record(batch("a", EventReason.READY, EventReason.VERSION_CREATED, EventReason.PROMOTED))
        recorder.record(batch("b", EventReason.READY))
        assert await recorder.drain(within=5) == 0
        assert not any(poster.done() for poster in posters)  # neither stopped one
    assert sorted((who, reason) for who, reason, _ in api.posted) == [("a", "Ready"), ("b", "Ready")]
    assert "could not post VersionCreated on Model ml/a: posting an event: HTTP 503" in caplog.text
    assert "could not post Promoted on Model ml/a" in caplog.text


async def test_past_the_limit_events_are_dropped_rather_than_hold_a_sync(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(recording, "QUEUE_LIMIT", 2)
    api = EventsApi()
    recorder = Recorder(cast(Kube, api), Metrics())
    caplog.set_level(logging.WARNING)
    for name in ("a", "b", "c"):
        recorder.record(batch(name, EventReason.READY))
    assert "dropped 1 events on Model ml/c: the Events of 2 syncs wait to be posted" in caplog.text
    assert recorder.metrics.registry.get_sample_value("modelplane_events_dropped_total") == 1.0
    api.open.set()
    async with posting(recorder):
        assert await recorder.drain(within=5) == 0
    assert sorted(who for who, _, _ in api.posted) == ["a", "b"]


def test_a_hung_events_api_leaves_every_worker_a_connection() -> None:
    assert handlers.WORKERS + recording.POSTERS <= kube.CONNECTIONS


async def test_stopping_posts_what_the_syncs_recorded_before_it_closes_the_client() -> None:
    api = EventsApi()
    ctx = context(api)
    for name in ("a", "b", "c", "d", "e", "f"):
        ctx.recorder.record(batch(name, EventReason.READY))
    stopping = asyncio.create_task(stop(ctx))
    await asyncio.sleep(0.01)
    assert not stopping.done()  # waiting for the Events
    api.open.set()
    await asyncio.wait_for(stopping, 5)
    assert sorted(who for who, _, _ in api.posted) == ["a", "b", "c", "d", "e", "f"]
    assert api.closed and all(poster.done() for poster in ctx.posting)


async def test_stopping_gives_the_events_what_is_left_of_the_grace_period_and_says_what_it_left(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(handlers, "SHUTDOWN_GRACE_SECONDS", 0.2)
    api = EventsApi()  # never answers
    ctx = context(api)
    for name in ("a", "b", "c", "d", "e", "f"):
        ctx.recorder.record(batch(name, EventReason.READY))
    await asyncio.wait_for(stop(ctx), 5)
    assert api.posted == [] and api.closed and all(poster.done() for poster in ctx.posting)
    assert "the Events of 6 syncs were not posted before shutdown" in caplog.text


async def test_stopping_with_no_events_left_says_nothing_of_them(caplog: pytest.LogCaptureFixture) -> None:
    """Even when the workers used up the grace period (nothing is left of it for the Events)."""
    api = EventsApi()
    api.open.set()
    ctx = context(api)
    ctx.recorder.record(batch("a", EventReason.READY))
    assert await ctx.recorder.drain(within=5) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handlers, "SHUTDOWN_GRACE_SECONDS", 0.0)
        await asyncio.wait_for(stop(ctx), 5)
    assert "were not posted" not in caplog.text and api.closed
