"""A lane on its own: a record cancelled before it ran ends at once."""

from __future__ import annotations

import time

from gateway.kafka.records import Partition
from gateway.sender.lane import Flight, Lane
from tests.sender.fakes import FakeSource, record

PARTITION = Partition("smsc.send.v1", 0)


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
