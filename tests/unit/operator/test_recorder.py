"""The recorder: a sync's Events are posted beside it, in order, best effort, and drained at shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

from modelplane.api.reasons import EventReason
from modelplane.operator import handlers
from modelplane.operator import recorder as recording
from modelplane.operator.context import Context
from modelplane.operator.handlers import resync, stop, work
from modelplane.operator.kube import Kube, TransientError
from modelplane.operator.recorder import Batch, Recorder
from modelplane.reconcile.notices import Notice
from tests.support.facts import DEV_CLUSTER, NAMESPACE


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


async def test_recording_never_waits_and_each_syncs_events_are_posted_in_order() -> None:
    api = EventsApi()
    recorder = Recorder(cast(Kube, api))
    posters = [asyncio.create_task(recorder.post()) for _ in range(recording.POSTERS)]
    for name in ("a", "b", "c", "d", "e"):  # the API server is not answering: recording returns at once all the same
        recorder.record(batch(name, EventReason.READY, EventReason.VERSION_CREATED, EventReason.PROMOTED))
    await asyncio.sleep(0.01)
    assert api.posted == []
    api.open.set()
    await asyncio.wait_for(recorder.drain(), 5)
    for name in ("a", "b", "c", "d", "e"):
        assert [reason for who, reason, _ in api.posted if who == name] == ["Ready", "VersionCreated", "Promoted"]
    assert {at for _, _, at in api.posted} == {"2026-12-04T07:00:00Z"}  # the time of the sync, not of the post
    for poster in posters:
        poster.cancel()


async def test_an_event_that_fails_is_logged_and_the_rest_are_posted(caplog: pytest.LogCaptureFixture) -> None:
    api = EventsApi()
    api.open.set()
    api.failing = {"VersionCreated": TransientError("posting an event: HTTP 503"),
                   "Promoted": KeyError("a bug")}
    recorder = Recorder(cast(Kube, api))
    poster = asyncio.create_task(recorder.post())
    recorder.record(batch("a", EventReason.READY, EventReason.VERSION_CREATED, EventReason.PROMOTED))
    recorder.record(batch("b", EventReason.READY))
    await asyncio.wait_for(recorder.drain(), 5)
    assert [(who, reason) for who, reason, _ in api.posted] == [("a", "Ready"), ("b", "Ready")]
    assert "could not post VersionCreated on Model ml/a: posting an event: HTTP 503" in caplog.text
    assert "could not post Promoted on Model ml/a" in caplog.text
    assert not poster.done()  # neither stopped it
    poster.cancel()


async def test_a_full_line_drops_events_rather_than_hold_a_sync(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(recording, "QUEUE_LIMIT", 2)
    api = EventsApi()
    recorder = Recorder(cast(Kube, api))
    caplog.set_level(logging.WARNING)
    for name in ("a", "b", "c"):
        recorder.record(batch(name, EventReason.READY))
    assert "dropped 1 events on Model ml/c: 2 batches wait to be posted" in caplog.text
    api.open.set()
    poster = asyncio.create_task(recorder.post())
    await asyncio.wait_for(recorder.drain(), 5)
    assert [who for who, _, _ in api.posted] == ["a", "b"]
    poster.cancel()


async def test_stopping_posts_what_the_syncs_recorded_before_it_closes_the_client() -> None:
    api = EventsApi()
    ctx = Context(kube=cast(Kube, api), cluster=DEV_CLUSTER, store=cast(Any, None), signer=cast(Any, None),
                  namespaces=(NAMESPACE,))
    ctx.posting = [asyncio.create_task(ctx.recorder.post()) for _ in range(recording.POSTERS)]
    ctx.tasks = [asyncio.create_task(work(ctx)), asyncio.create_task(resync(ctx))]  # as start() makes them
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
    ctx = Context(kube=cast(Kube, api), cluster=DEV_CLUSTER, store=cast(Any, None), signer=cast(Any, None),
                  namespaces=(NAMESPACE,))
    ctx.posting = [asyncio.create_task(ctx.recorder.post()) for _ in range(recording.POSTERS)]
    ctx.tasks = [asyncio.create_task(work(ctx)), asyncio.create_task(resync(ctx))]
    for name in ("a", "b", "c", "d", "e", "f"):
        ctx.recorder.record(batch(name, EventReason.READY))
    await asyncio.wait_for(stop(ctx), 5)
    assert api.posted == [] and api.closed and all(poster.done() for poster in ctx.posting)
    assert f"the Events of {6 - recording.POSTERS} syncs were not posted before shutdown" in caplog.text
