"""``SlottedTimeout``: waits sharing one timer per slot time out as ``asyncio.timeout``
would, never early, at most one slot late; other cancellations pass through."""

from __future__ import annotations

import asyncio

import pytest

from gateway.ingress.deadline import SlottedTimeout

SECONDS = 0.2
RESOLUTION = 0.05


async def bounded(limit: SlottedTimeout, work: float) -> str:
    with limit():
        await asyncio.sleep(work)
    return "done"


async def test_a_wait_past_its_deadline_times_out_within_one_slot() -> None:
    limit = SlottedTimeout(SECONDS, RESOLUTION)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await bounded(limit, 10)
    took = loop.time() - started
    assert SECONDS <= took < SECONDS + RESOLUTION + 0.1
    assert limit.pending == 0


async def test_a_wait_done_in_time_is_left_alone_after_its_slot() -> None:
    limit = SlottedTimeout(SECONDS, RESOLUTION)
    assert await bounded(limit, 0.01) == "done"
    assert limit.pending == 0
    # The slot's timer still fires later; the task that left must not be cancelled by it.
    await asyncio.sleep(SECONDS + 2 * RESOLUTION)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_concurrent_waits_each_get_their_own_outcome() -> None:
    limit = SlottedTimeout(SECONDS, RESOLUTION)
    works = [0.01 if i % 2 else 10 for i in range(100)]
    results = await asyncio.gather(*(bounded(limit, w) for w in works), return_exceptions=True)
    for work, result in zip(works, results, strict=True):
        if work < SECONDS:
            assert result == "done"
        else:
            assert isinstance(result, TimeoutError)
    assert limit.pending == 0


async def test_a_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    limit = SlottedTimeout(SECONDS, RESOLUTION)
    task = asyncio.create_task(bounded(limit, 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limit.pending == 0


async def test_an_outer_timeout_still_wins_over_a_longer_slotted_one() -> None:
    limit = SlottedTimeout(10, RESOLUTION)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await bounded(limit, 10)
    assert limit.pending == 0


def test_seconds_and_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SlottedTimeout(0)
    with pytest.raises(ValueError, match="positive"):
        SlottedTimeout(1, 0)


def test_one_factory_serves_successive_event_loops() -> None:
    # A slot armed on a loop that closed before its timer fired must not take the next
    # loop's waits: nothing would ever time them out.
    limit = SlottedTimeout(0.01, 1.0)
    assert asyncio.run(bounded(limit, 0)) == "done"  # leaves its slot armed, not fired

    async def again() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await bounded(limit, 10)
        return loop.time() - started

    assert asyncio.run(again()) < 2
