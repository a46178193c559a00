"""Shutdown of the sender has a bound, whatever it waits for.

The lane may be waiting for a free slot, requests for exposure or for the provider, and the
final commit for a broker that does not answer: the run still ends by the close deadline,
and nothing whose outcome is not on Kafka is committed.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateway.sender.exposure import Exposure
from gateway.shutdown import Shutdown, run_until, unless_stopped, until_set
from tests.sender.fakes import Answer, record
from tests.sender.test_sender_service import BULK, FAST, Harness, send_request

DRAIN = 0.2
CLOSE = 0.3
# What a run may take after the stop: drain, close, the cancellation grace, and some slack.
BOUND = DRAIN + CLOSE + 0.5 + 0.5


async def stopped_within(h: Harness) -> float:
    """Set stop and return how long the run took to end."""
    assert h.task is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    h.stop.set()
    async with asyncio.timeout(BOUND + 5):
        await h.task
    return loop.time() - started


async def test_stop_while_the_lane_waits_for_a_free_slot_ends_in_time() -> None:
    held = asyncio.Event()  # never set: the provider does not answer the first submit
    settings = dataclasses.replace(FAST, max_in_flight=1, give_up_after_seconds=60.0)
    h = Harness(
        [record(send_request(f"r{i}", [f"7999000000{i}"]), offset=i) for i in range(3)],
        {"79990000000": [Answer(gate=held)]},
        settings=settings,
        shutdown=Shutdown(DRAIN, CLOSE),
    )
    h.task = asyncio.create_task(h.sender.run(h.stop))
    await h.until(lambda: len(h.submitter.pdus) == 1, "the first submit")
    await asyncio.sleep(0.05)  # the lane now waits for the slot the first record holds
    assert await stopped_within(h) <= BOUND
    assert len(h.submitter.pdus) == 1, "nothing is started after the stop"
    assert h.results == []
    assert h.source.committed(BULK) is None


async def test_a_final_commit_that_gets_no_answer_is_given_up_at_the_close_deadline() -> None:
    h = Harness([record(send_request("r1"), offset=0)], shutdown=Shutdown(DRAIN, CLOSE))
    h.task = asyncio.create_task(h.sender.run(h.stop))
    await h.until(lambda: len(h.results) == 1, "the result")
    h.source.commit_gate = asyncio.Event()  # the broker went away: commits never return
    assert await stopped_within(h) <= BOUND


async def test_a_result_kafka_never_takes_is_given_up_at_the_drain_deadline() -> None:
    h = Harness([record(send_request("r1"), offset=0)], shutdown=Shutdown(DRAIN, CLOSE))
    h.publisher.gate = asyncio.Event()  # publish waits for Kafka, which never answers
    h.task = asyncio.create_task(h.sender.run(h.stop))
    await h.until(lambda: len(h.submitter.pdus) == 1, "the submit")
    assert await stopped_within(h) <= BOUND
    assert h.results == []
    assert h.source.commits == []


async def test_in_flight_gauge_follows_the_requests_being_processed() -> None:
    held = asyncio.Event()
    h = Harness(
        [record(send_request(f"r{i}", [f"7999000000{i}"]), offset=i) for i in range(2)],
        {"79990000000": [Answer(gate=held)]},
    )

    def in_flight() -> float | None:
        return h.metrics.registry.get_sample_value("smsc_sender_in_flight_requests")

    async with h:
        await h.until(lambda: len(h.results) == 1, "the unblocked request's result")
        assert in_flight() == 1
        held.set()
        await h.until(lambda: len(h.results) == 2, "both results")
        assert in_flight() == 0


# -- exposure --------------------------------------------------------------------------------


async def test_closed_exposure_fails_its_waiters_and_later_requests() -> None:
    exposure = Exposure(2)
    async with exposure.hold(2, urgent=False):
        waiting = asyncio.create_task(_hold(exposure))
        await asyncio.sleep(0)
        exposure.close(RuntimeError("shutting down"))
        with pytest.raises(RuntimeError):
            await waiting
        with pytest.raises(RuntimeError):
            await _hold(exposure)
        assert exposure.used == 2
    assert exposure.used == 0


async def _hold(exposure: Exposure) -> None:
    async with exposure.hold(1, urgent=False):
        pass


# -- the deadlines themselves ----------------------------------------------------------------


async def test_a_step_that_ignores_its_cancellation_is_left_behind() -> None:
    finished = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(10)  # a clean-up that waits for the network
        finished.set()

    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(stubborn())
    assert not await run_until(task, started + 0.1, "a stubborn step")
    assert loop.time() - started < 1.0
    assert not finished.is_set()
    task.cancel()


async def test_a_step_that_ends_in_time_reports_success_and_failure() -> None:
    deadline = asyncio.get_running_loop().time() + 1.0
    assert await run_until(asyncio.sleep(0), deadline, "quick")

    async def failing() -> None:
        raise RuntimeError("no")

    assert not await run_until(failing(), deadline, "failing")


async def test_deadlines_are_fixed_by_the_first_begin() -> None:
    shutdown = Shutdown(2.0, 1.0)
    shutdown.begin()
    first = shutdown.close_deadline
    await asyncio.sleep(0.01)
    shutdown.begin()
    assert shutdown.close_deadline == first
    assert shutdown.drain_deadline == first - 1.0
    assert 1.9 < shutdown.drain_left() <= 2.0


async def test_until_set_ends_at_the_stop_or_the_time_limit() -> None:
    stop = asyncio.Event()
    assert await until_set(stop, asyncio.sleep(0), 1.0)
    assert not await until_set(stop, asyncio.sleep(10), 0.01)
    stop.set()
    assert not await until_set(stop, asyncio.sleep(10), 10.0)


async def test_unless_stopped_cancels_the_work_at_the_stop_and_raises_its_errors() -> None:
    stop = asyncio.Event()
    assert await unless_stopped(stop, asyncio.sleep(0))

    async def failing() -> None:
        raise RuntimeError("broker refused")

    with pytest.raises(RuntimeError):
        await unless_stopped(stop, failing())
    never = asyncio.ensure_future(asyncio.sleep(10))
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert not await unless_stopped(stop, never)
    await asyncio.sleep(0)
    assert never.cancelled()
