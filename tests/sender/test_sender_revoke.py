"""A rebalance takes partitions away from a sender with records of theirs in flight.

The revoke must end well within the group's rebalance timeout, or the group hands the
partitions on while this sender still works on them, and both submit the same requests.
Records that have not reached the provider (here: waiting for a rate permit) are left to
the partitions' next owner at once; those that have are waited for, and their results
published and committed, before the revoke returns; nothing of a revoked partition is
submitted afterwards. The rate gate is the real one, slowed so that a backlog waits at it.
"""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.kafka.records import Record
from gateway.settings.sender import RateSettings
from tests.sender.fakes import Answer, record
from tests.sender.test_sender_service import BULK, FAST, Harness, send_request

# Two permits a second, one at a time: a backlog waits at the gate.
SLOW = RateSettings(per_second=2.0, min_per_second=1.0, burst_seconds=0.5)
PHONES = [f"7999100{n:04d}" for n in range(10)]


def backlog(count: int = 10) -> list[Record]:
    return [record(send_request(f"r{n}", [PHONES[n]]), offset=n) for n in range(count)]


async def test_records_waiting_for_a_permit_are_left_to_the_next_owner_at_once() -> None:
    h = Harness(backlog(), rate=SLOW)
    async with h:
        await h.until(lambda: len(h.results) >= 1, "the first result")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await h.sender.bulk.on_revoked({BULK})
        took = loop.time() - started
        submitted = len(h.submitter.pdus)
        await asyncio.sleep(1.5)  # three permits' worth: none may be used for a revoked record
        assert len(h.submitter.pdus) == submitted, "a revoked partition's record was submitted"
        assert h.sender.bulk.in_flight == 0
    assert took < 0.5, f"the revoke took {took:.2f} s"
    assert submitted < len(PHONES)
    assert [pdu.destination_addr for pdu in h.submitter.pdus] == PHONES[:submitted]
    assert len(h.results) == submitted
    assert h.source.committed(BULK) == submitted  # the next owner starts at the first left


async def test_a_record_that_reached_the_provider_is_finished_and_committed_by_the_revoke() -> None:
    answer = asyncio.Event()
    h = Harness(backlog(3), {PHONES[0]: [Answer("1", gate=answer)]}, rate=SLOW)
    async with h:
        await h.until(lambda: len(h.submitter.pdus) == 1, "the first submit")
        revoke = asyncio.create_task(h.sender.bulk.on_revoked({BULK}))
        await asyncio.sleep(0.2)
        assert not revoke.done(), "the revoke did not wait for the submitted record"
        answer.set()
        async with asyncio.timeout(2):
            await revoke
        assert [r["request_id"] for r in h.results] == ["r0"]
        assert h.source.committed(BULK) == 1
        await asyncio.sleep(1.0)
    assert [pdu.destination_addr for pdu in h.submitter.pdus] == PHONES[:1]
    h.assert_committed_only_after_publishing({0: b"r0"})


async def test_records_fetched_but_not_started_are_not_started_after_the_revoke() -> None:
    answer = asyncio.Event()
    one_at_a_time = dataclasses.replace(FAST, max_in_flight=1)
    h = Harness(backlog(3), {PHONES[0]: [Answer("1", gate=answer)]}, settings=one_at_a_time)
    async with h:
        await h.until(lambda: len(h.submitter.pdus) == 1, "the first submit")
        revoke = asyncio.create_task(h.sender.bulk.on_revoked({BULK}))
        await asyncio.sleep(0.05)
        answer.set()  # frees the lane's one slot while the other two records wait for it
        async with asyncio.timeout(2):
            await revoke
        await h.idle()
    assert [pdu.destination_addr for pdu in h.submitter.pdus] == PHONES[:1]
    assert h.source.committed(BULK) == 1


async def test_a_submit_never_answered_is_given_up_at_the_revoke_deadline() -> None:
    never = asyncio.Event()
    quick = dataclasses.replace(FAST, drain_timeout_seconds=0.3)
    h = Harness(backlog(1), {PHONES[0]: [Answer("1", gate=never)]}, settings=quick)
    async with h:
        await h.until(lambda: len(h.submitter.pdus) == 1, "the submit")
        async with asyncio.timeout(1.5):
            await h.sender.bulk.on_revoked({BULK})
        assert h.sender.bulk.in_flight == 0
    assert h.results == []
    assert h.source.committed(BULK) is None  # the next owner takes it up, as a replay


async def test_a_record_left_at_a_revoke_and_taken_up_again_here_is_sent() -> None:
    h = Harness(backlog(2), rate=SLOW)
    async with h:
        await h.until(lambda: len(h.results) == 1, "the first result")
        await h.sender.bulk.on_revoked({BULK})  # r1 waits for a permit: left
        assert len(h.submitter.pdus) == 1
        # The partition comes back to this sender, read from its committed offset.
        h.source.deliver([record(send_request("r1", [PHONES[1]]), offset=1, replay=True)])
        await h.until(lambda: len(h.results) == 2, "the second result", within=3.0)
    assert h.result("r1")["outcome"] == "accepted"  # not refused as a duplicate of itself
    assert [pdu.destination_addr for pdu in h.submitter.pdus] == PHONES[:2]
