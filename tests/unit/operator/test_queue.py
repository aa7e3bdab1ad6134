"""`WorkQueue` held to client-go's workqueue contract (k8s.io/client-go/util/workqueue), which the module follows.

Delays are milliseconds, so the file runs in a fraction of a second; "nothing arrives" is checked by a bounded wait
that is several times the delay concerned.
"""

from __future__ import annotations

import asyncio

import pytest

from modelplane.operator.queue import WorkQueue
from tests.support.tasks import background

TICK = 0.01  # a short delay for timers
QUIET = 0.04  # long enough that a pending or stray key would have arrived


async def nothing_arrives(queue: WorkQueue[str], wait: float = QUIET) -> None:
    with pytest.raises(TimeoutError):
        key = await asyncio.wait_for(queue.get(), wait)
        raise AssertionError(f"unexpected key {key!r}")


async def test_a_key_added_many_times_is_handed_out_once() -> None:
    """client-go: "Stingy: a single item will not be processed multiple times concurrently, and if an item is added
    multiple times before it can be processed, it will only be processed once". Order stays first-in first-out."""
    queue = WorkQueue[str]()
    for key in ("a", "b", "a", "a", "b"):
        queue.add(key)
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0
    await nothing_arrives(queue)


async def test_a_key_added_during_its_sync_comes_again_after_done_and_not_before() -> None:
    """client-go: an item added while it is being processed is marked dirty and re-queued by Done, so a second
    worker never gets it while the first still holds it."""
    queue = WorkQueue[str]()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("a")
    await nothing_arrives(queue)  # a second worker would wait here while "a" is active
    queue.done("a")
    assert await asyncio.wait_for(queue.get(), QUIET) == "a"
    queue.done("a")
    await nothing_arrives(queue)  # once only, however many adds came during the sync


async def test_two_workers_never_hold_the_same_key() -> None:
    """The same rule seen from two concurrent workers: the second gets the key only once the first is done."""
    queue = WorkQueue[str]()
    holders: set[str] = set()
    overlaps: list[str] = []
    synced: list[str] = []

    async def worker(name: str) -> None:
        while (key := await queue.get()) is not None:
            if key in holders:
                overlaps.append(key)
            holders.add(key)
            await asyncio.sleep(TICK / 2)
            if len(synced) < 3:
                queue.add(key)  # an event about the key arrives mid-sync
            synced.append(name)
            holders.discard(key)
            queue.done(key)

    async with background([worker(name) for name in ("w1", "w2")]):
        queue.add("a")
        async with asyncio.timeout(1):
            while len(synced) < 4:
                await asyncio.sleep(TICK / 4)
        await asyncio.sleep(QUIET)
    assert overlaps == []
    assert len(synced) == 4  # the initial sync and three re-adds, each exactly once


async def test_retry_delay_doubles_per_failure_up_to_the_cap_and_forget_resets() -> None:
    """client-go's ItemExponentialFailureRateLimiter: base * 2^failures, capped at the maximum, per key; Forget
    starts the key over at the base delay. Each retry brings the key back after (not before) its delay."""
    queue = WorkQueue[str](base_delay=0.002, max_delay=0.012)
    assert [queue.retry("a") for _ in range(5)] == [0.002, 0.004, 0.008, 0.012, 0.012]
    assert queue.retry("b") == 0.002  # failures are counted per key
    queue.forget("a")
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert queue.retry("a") == 0.002
    keys = {await asyncio.wait_for(queue.get(), QUIET), await asyncio.wait_for(queue.get(), QUIET)}
    assert keys == {"a", "b"}
    assert loop.time() - start >= 0.002 - 0.001  # not early (asyncio may run a timer within clock resolution)


async def test_retry_waits_its_delay() -> None:
    """A failed key is not synced again before its backoff delay."""
    queue = WorkQueue[str](base_delay=0.03, max_delay=1.0)
    queue.add("a")
    assert await queue.get() == "a"
    queue.retry("a")
    queue.done("a")
    await nothing_arrives(queue, 0.015)
    assert await asyncio.wait_for(queue.get(), QUIET) == "a"


async def test_add_after_fires_once() -> None:
    """client-go's AddAfter: the key is added when the delay has passed, once."""
    queue = WorkQueue[str]()
    queue.add_after("a", TICK)
    assert len(queue) == 0  # not yet
    assert await asyncio.wait_for(queue.get(), QUIET) == "a"
    queue.done("a")
    await nothing_arrives(queue)


async def test_an_earlier_add_after_replaces_a_later_one() -> None:
    """client-go's delaying queue keeps the earliest ready time per key: the earlier request wins and the later one
    is dropped, not fired as well."""
    queue = WorkQueue[str]()
    queue.add_after("a", 0.03)
    queue.add_after("a", 0.002)
    assert await asyncio.wait_for(queue.get(), 0.02) == "a"  # well before 0.03
    queue.done("a")
    await nothing_arrives(queue, 0.05)  # the 0.03 timer is gone


async def test_a_later_add_after_does_not_postpone_an_earlier_one() -> None:
    queue = WorkQueue[str]()
    queue.add_after("a", 0.002)
    queue.add_after("a", 0.05)
    assert await asyncio.wait_for(queue.get(), 0.03) == "a"
    queue.done("a")
    await nothing_arrives(queue, 0.07)  # and the 0.05 request was dropped, not kept for later


async def test_close_cancels_pending_timers() -> None:
    """client-go's ShutDown: delayed adds that have not fired yet never arrive."""
    queue = WorkQueue[str](base_delay=TICK)
    queue.add_after("a", TICK)
    queue.retry("b")
    queue.close()
    await asyncio.sleep(QUIET)
    assert len(queue) == 0  # neither was added
    assert await asyncio.wait_for(queue.get(), QUIET) is None


async def test_a_closed_queue_stops_every_waiting_worker_and_hands_out_nothing_more() -> None:
    """Shutdown drains: each worker waiting for a key gets None (and stops), a key still in line is not handed out
    (the next operator syncs everything), and a sync under way ends normally."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("under way")
    assert await queue.get() == "under way"
    waiting = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.add("in line")
    queue.add_after("later", 0.01)
    queue.close()
    assert await asyncio.wait_for(asyncio.gather(*waiting), QUIET) == [None, None, None]
    queue.done("under way")
    await asyncio.sleep(0.02)
    assert await asyncio.wait_for(queue.get(), QUIET) is None
