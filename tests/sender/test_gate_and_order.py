"""The submit gate (pacing, urgent first, shutdown) and per-key ordering, on a real loop."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from gateway.sender.ordering import KeyOrder
from gateway.sender.pacing import SubmitGate
from gateway.sender.ratelimit import AdaptiveRate
from gateway.settings.sender import RateSettings


def bursts(times: list[float]) -> list[float]:
    """The start of each run of times less than a millisecond apart (one pump's releases)."""
    ordered = sorted(times)
    return [t for k, t in enumerate(ordered) if k == 0 or t - ordered[k - 1] >= 0.001]


def gate(per_second: float) -> SubmitGate:
    loop = asyncio.get_running_loop()
    return SubmitGate(AdaptiveRate(RateSettings(per_second=per_second), loop.time()), loop.time)


async def test_gate_paces_permits_at_the_rate() -> None:
    g = gate(200.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(g.acquire(1, urgent=False) for _ in range(41)))
    assert loop.time() - started == pytest.approx(0.2, abs=0.06)


async def test_urgent_waiters_are_served_before_bulk_ones() -> None:
    g = gate(50.0)
    order: list[str] = []

    async def take(name: str, urgent: bool) -> None:
        await g.acquire(1, urgent=urgent)
        order.append(name)

    bulk = [asyncio.create_task(take(f"b{i}", False)) for i in range(10)]
    await asyncio.sleep(0.05)
    urgent = asyncio.create_task(take("u", True))
    await asyncio.gather(*bulk, urgent)
    assert order.index("u") <= 4, order


async def test_cancelled_waiters_leave_the_line() -> None:
    g = gate(20.0)
    await g.acquire(1, urgent=False)
    waiter = asyncio.create_task(g.acquire(1, urgent=False))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert g.waiting == 0


async def test_shutdown_fails_every_waiter() -> None:
    g = gate(1.0)
    await g.acquire(1, urgent=False)
    waiters = [asyncio.create_task(g.acquire(1, urgent=i % 2 == 0)) for i in range(4)]
    await asyncio.sleep(0)
    g.cancel_waiters(RuntimeError("stop"))
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_records_with_one_key_run_in_order_and_other_keys_do_not_wait() -> None:
    order = KeyOrder()
    log: list[str] = []

    async def record(name: str, key: str, hold: float) -> None:
        previous, turn = order.enter(key)
        try:
            if previous is not None:
                await previous.wait()
            log.append(f"start {name}")
            await asyncio.sleep(hold)
        finally:
            order.leave(key, turn)

    await asyncio.gather(record("a1", "a", 0.05), record("a2", "a", 0.0), record("b1", "b", 0.0))
    assert log.index("start a1") < log.index("start a2")
    assert log.index("start b1") < log.index("start a2")
    assert len(order) == 0, "finished chains are forgotten"


async def test_records_without_a_key_are_not_ordered() -> None:
    order = KeyOrder()
    previous, turn = order.enter(None)
    assert previous is None
    order.leave(None, turn)
    assert turn.done


async def test_a_paced_gate_lets_waiters_go_a_tick_at_a_time_at_the_rate() -> None:
    # At 1,000/s a permit accrues every millisecond; the waiters go in a dozen or so at a
    # time, every tick (a quarter of the 50 ms burst), not one by one: one turn of the event
    # loop, one SMPP write and one produce request for a dozen parts.
    g = gate(1000.0)
    loop = asyncio.get_running_loop()
    released: list[float] = []

    async def take() -> None:
        await g.acquire(1, urgent=False)
        released.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(take() for _ in range(301)))
    assert loop.time() - started == pytest.approx(0.3, abs=0.06)
    ticks = bursts(released)
    assert len(ticks) <= 0.3 / 0.0125 + 6, ticks
    # (A loaded machine may pause a pump's waiters in the middle and split a burst in two.)
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(ticks))
    assert gaps[len(gaps) // 10] >= 0.0125 * 0.9, gaps


async def test_a_request_that_joins_a_paced_line_waits_for_the_tick() -> None:
    g = gate(1000.0)
    loop = asyncio.get_running_loop()
    released: list[float] = []

    async def take() -> None:
        await g.acquire(1, urgent=False)
        released.append(loop.time())

    first = [asyncio.create_task(take()) for _ in range(100)]
    await asyncio.sleep(0.004)  # a few permits accrue; the timer is set for the next tick
    late = asyncio.create_task(take())
    await asyncio.sleep(0)
    assert g.waiting > 1, "the newcomer did not pump the line itself"
    await asyncio.gather(*first, late)
    assert len(bursts(released)) < len(released) / 5


async def test_an_urgent_request_overtakes_a_paced_bulk_line_within_a_tick() -> None:
    g = gate(1000.0)
    loop = asyncio.get_running_loop()
    order: list[str] = []

    async def take(name: str, urgent: bool) -> float:
        await g.acquire(1, urgent=urgent)
        order.append(name)
        return loop.time()

    bulk = [asyncio.create_task(take(f"b{i}", False)) for i in range(200)]
    await asyncio.sleep(0.03)
    asked = loop.time()
    served = await take("u", True)
    await asyncio.gather(*bulk)
    assert served - asked <= 0.05  # a tick at most, and the loop's lateness
    assert order.index("u") <= 60, order.index("u")  # about 30 bulk waiters went before it
