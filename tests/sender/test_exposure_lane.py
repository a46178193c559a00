"""The lane takes a record's first exposure slot before it starts it.

What must hold whatever the records: the bound is never exceeded, every record gets its one
result, records with one key reach the provider in their order (a record never holds a slot
the record before it with its key needs: no deadlock between key order and the bound), and
every slot comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.kafka.records import Partition, Record
from gateway.sender.exposure import Exposure
from gateway.sender.lane import Flight, Handler, Lane
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import ThrottledError
from tests.sender.fakes import Answer, FakeSource, record
from tests.sender.test_sender_service import FAST, TOPICS, Harness, send_request

PARTITION = Partition("smsc.send.v1", 0)
LONG = "x" * 200  # two parts: a weight of two slots


def _lane(source: FakeSource, handler: Handler, exposure: Exposure, urgent: bool = False) -> Lane:
    return Lane(
        "bulk",
        source,
        handler,
        max_in_flight=10,
        fetch_max_records=10,
        drain_timeout_seconds=2.0,
        revoke_timeout_seconds=2.0,
        slots=exposure,
        urgent=urgent,
    )


async def test_a_record_starts_only_once_a_slot_is_free_and_unused_slots_come_back() -> None:
    exposure = Exposure(1)
    release = asyncio.Event()
    held: list[int] = []

    async def handler(flight: Flight) -> bool:
        held.append(flight.held)
        if flight.record.offset == 0:
            await release.wait()
        return True

    lane = _lane(FakeSource([]), handler, exposure)
    starting = asyncio.create_task(
        lane._start_all([record(b"{}", offset=0), record(b"{}", offset=1)], 0)
    )
    await asyncio.sleep(0.01)
    assert held == [1]  # the second waits in the bound's line, not started
    assert lane.in_flight == 1
    release.set()
    await asyncio.wait_for(starting, 1.0)
    await lane.drain()
    assert held == [1, 1]
    assert exposure.used == 0


async def test_closing_ends_the_wait_for_a_slot() -> None:
    exposure = Exposure(1)
    assert exposure.try_take(1)

    async def handler(flight: Flight) -> bool:
        return True

    lane = _lane(FakeSource([]), handler, exposure)
    starting = asyncio.create_task(lane._start_all([record(b"{}", offset=0)], 0))
    await asyncio.sleep(0.01)
    lane.close()
    await asyncio.wait_for(starting, 1.0)
    assert lane.in_flight == 0
    exposure.release(1)
    assert exposure.used == 0  # the lane's place in the line was given up, not granted


async def test_urgent_lane_waits_ahead_of_bulk_requests() -> None:
    exposure = Exposure(1)
    assert exposure.try_take(1)
    bulk = asyncio.create_task(exposure.take(1, urgent=False))
    await asyncio.sleep(0)
    release = asyncio.Event()

    async def handler(flight: Flight) -> bool:
        await release.wait()
        return True

    lane = _lane(FakeSource([]), handler, exposure, urgent=True)
    starting = asyncio.create_task(lane._start_all([record(b"{}", offset=7)], 0))
    await asyncio.sleep(0)
    exposure.release(1)
    await asyncio.wait_for(starting, 1.0)
    await asyncio.sleep(0.01)
    assert lane.in_flight == 1
    assert not bulk.done()  # the urgent record got the slot first
    release.set()
    await lane.drain()
    await asyncio.wait_for(bulk, 1.0)  # its unused slot came back, to the bulk request
    exposure.release(1)
    assert exposure.used == 0


_RECORDS = st.lists(
    st.tuples(
        st.sampled_from([None, b"a", b"b"]),  # the key
        st.booleans(),  # two parts (two slots) rather than one
        st.booleans(),  # urgent
        st.booleans(),  # throttled once
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_RECORDS, st.integers(1, 3), st.integers(1, 6))
def test_key_order_and_the_bound_hold_together(
    records: list[tuple[bytes | None, bool, bool, bool]], limit: int, in_flight: int
) -> None:
    asyncio.run(_key_order_and_the_bound(records, limit, in_flight))


async def _key_order_and_the_bound(
    specs: list[tuple[bytes | None, bool, bool, bool]], limit: int, in_flight: int
) -> None:
    throttled = ThrottledError(CommandStatus.ESME_RTHROTTLED)
    records: list[Record] = []
    script: dict[str, list[Answer]] = {}
    for i, (key, long, urgent, throttle) in enumerate(specs):
        phone = f"7999{i:07d}"
        topic = TOPICS.send_priority if urgent else TOPICS.send
        text = LONG if long else "Hello"
        records.append(
            record(send_request(f"r{i}", [phone], text=text), offset=i, key=key, topic=topic)
        )
        if throttle:
            script[phone] = [Answer(error=throttled)]
    settings_ = dataclasses.replace(FAST, max_in_flight=in_flight)
    h = Harness(records, script, settings=settings_, exposure_limit=limit)
    await h.run_until_results(len(records))
    assert h.exposure.used == 0
    assert _most_submits_outstanding(h.timeline.entries) <= limit
    firsts: dict[str, int] = {}
    for position, entry in enumerate(h.timeline.entries):
        if entry[0] == "submit":
            firsts.setdefault(entry[1], position)
    for key in (b"a", b"b"):
        for topic in (TOPICS.send, TOPICS.send_priority):
            order = [
                firsts[f"7999{i:07d}"]
                for i, (k, _, urgent, _) in enumerate(specs)
                if k == key and (TOPICS.send_priority if urgent else TOPICS.send) == topic
            ]
            assert order == sorted(order)


def _most_submits_outstanding(entries: list[tuple[Any, ...]]) -> int:
    now = most = 0
    for entry in entries:
        if entry[0] == "submit":
            now += 1
            most = max(most, now)
        elif entry[0] in ("submit-ok", "submit-error"):
            now -= 1
    return most
