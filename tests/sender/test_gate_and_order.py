"""The submit gate (pacing, urgent first, shutdown) and per-key ordering, on a real loop."""

from __future__ import annotations

import asyncio

import pytest

from gateway.sender.ordering import KeyOrder
from gateway.sender.pacing import SubmitGate
from gateway.sender.ratelimit import AdaptiveRate
from gateway.settings.sender import RateSettings


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
