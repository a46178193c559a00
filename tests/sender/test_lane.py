"""A lane on its own: records start only while there is room further on, and a record
cancelled before it ran ends at once."""

from __future__ import annotations

import asyncio
import time

from gateway.kafka.records import Partition
from gateway.sender.exposure import Exposure
from gateway.sender.lane import Flight, Lane
from tests.sender.fakes import FakeSource, record

PARTITION = Partition("smsc.send.v1", 0)


async def test_a_lane_starts_no_more_records_than_there_is_room_for() -> None:
    exposure = Exposure(3)
    held = asyncio.Event()
    started: list[int] = []

    three, six = asyncio.Event(), asyncio.Event()

    async def handler(flight: Flight) -> bool:
        started.append(flight.record.offset)
        if len(started) == 3:
            three.set()
        if len(started) == 6:
            six.set()
        assert exposure.try_take(1)
        try:
            await held.wait()
        finally:
            exposure.release(1)
        return True

    source = FakeSource([record(b"{}", offset=i) for i in range(6)])
    lane = Lane(
        "bulk",
        source,
        handler,
        max_in_flight=100,
        fetch_max_records=100,
        drain_timeout_seconds=2.0,
        room=lambda starting: exposure.room > starting,
    )
    exposure.on_release(lane.poke)
    stop = asyncio.Event()
    running = asyncio.create_task(lane.run(stop))
    await asyncio.wait_for(three.wait(), 5)
    await asyncio.sleep(0.02)
    assert started == [0, 1, 2], "the bound is full: nothing more starts"
    held.set()
    await asyncio.wait_for(six.wait(), 5)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert source.committed(PARTITION) == 6


async def test_a_record_revoked_before_it_ran_ends_at_once() -> None:
    ran: list[int] = []

    async def handler(flight: Flight) -> bool:
        ran.append(flight.record.offset)
        return True

    lane = Lane(
        "bulk",
        FakeSource([]),
        handler,
        max_in_flight=10,
        fetch_max_records=10,
        drain_timeout_seconds=10.0,
        revoke_timeout_seconds=10.0,
    )
    await lane._start_all([record(b"{}", offset=0)], 0)  # started, its task not run yet
    assert lane.in_flight == 1
    began = time.monotonic()
    await lane.on_revoked({PARTITION})
    assert time.monotonic() - began < 1.0
    assert lane.in_flight == 0
    assert ran == []
