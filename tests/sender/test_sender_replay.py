"""A replay after a crash never becomes a second SMS.

A request consumed again whose first submit may have gone through (the record comes marked as
a replay, see gateway/kafka/claims.py), or a part whose previous attempt got no answer, may
repeat a message the subscriber already has. The provider refuses such a resend as a
duplicate; that refusal is the answer: the part is not sent again and the recipient ends
``duplicate``. Without that evidence the refusal is an ordinary temporary error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.structs import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from gateway.kafka.claims import Claims, decode_claim, encode_claim
from gateway.kafka.records import Partition, Record
from gateway.provider.codes import SMPP_DUPLICATE_STATUS
from gateway.smpp.errors import ResponseTimeoutError, TemporaryRejectError
from tests.sender.fakes import Answer, record
from tests.sender.test_sender_service import BULK, PHONE, Harness, send_request

DUPLICATE = TemporaryRejectError(SMPP_DUPLICATE_STATUS)


async def test_duplicate_refusal_of_a_replay_ends_duplicate_without_resending() -> None:
    h = Harness(
        [record(send_request("r1"), offset=0, replay=True)],
        {PHONE: [Answer(error=DUPLICATE), Answer("555")]},
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "duplicate"
    (recipient,) = result["recipients"]
    assert recipient["status"] == "duplicate"
    assert recipient["message_ids"] == []
    assert recipient["error"]["code"] == "provider_duplicate"
    assert recipient["error"]["command_status"] == SMPP_DUPLICATE_STATUS
    assert len(h.submitter.pdus) == 1, "refused as a duplicate: not submitted again"
    assert h.source.committed(BULK) == 1
    prevented = h.metrics.registry.get_sample_value(
        "smsc_guard_prevented_total", {"rule": "provider_duplicate", "action": "reject"}
    )
    assert prevented == 1


async def test_duplicate_refusal_of_a_first_submit_is_retried() -> None:
    h = Harness(
        [record(send_request("r1"), offset=0)],
        {PHONE: [Answer(error=DUPLICATE), Answer("555")]},
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "accepted"
    assert result["recipients"][0]["message_ids"] == ["555"]
    assert len(h.submitter.pdus) == 2


async def test_duplicate_refusal_after_an_unanswered_attempt_ends_duplicate() -> None:
    lost = ResponseTimeoutError("no response to SubmitSm")
    h = Harness(
        [record(send_request("r1"), offset=0)],
        {PHONE: [Answer(error=lost), Answer(error=DUPLICATE), Answer("555")]},
    )
    await h.run_until_results(1)
    assert h.result("r1")["outcome"] == "duplicate"
    assert len(h.submitter.pdus) == 2


async def test_a_replay_the_provider_accepts_is_accepted() -> None:
    h = Harness([record(send_request("r1"), offset=0, replay=True)], {PHONE: [Answer("777")]})
    await h.run_until_results(1)
    assert h.result("r1")["outcome"] == "accepted"


async def test_one_recipient_duplicate_another_accepted() -> None:
    other = "79997654321"
    h = Harness(
        [record(send_request("r1", [PHONE, other]), offset=0, replay=True)],
        {PHONE: [Answer(error=DUPLICATE)], other: [Answer("9")]},
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "accepted"
    statuses = {r["phone"]: r["status"] for r in result["recipients"]}
    assert statuses == {PHONE: "duplicate", other: "accepted"}


async def test_records_are_claimed_before_they_start() -> None:
    h = Harness([record(send_request(f"r{i}", [f"7999000000{i}"]), offset=i) for i in range(3)])
    await h.run_until_results(3)
    assert sorted(h.source.claims) == [0, 1, 2]
    for offset in range(3):
        assert claimed_at(h, offset) < h.timeline.index(submit_of(f"7999000000{offset}"))


def claimed_at(h: Harness, offset: int) -> int:
    return h.timeline.index(lambda entry: entry[0] == "claim" and offset in entry[1])


def submit_of(phone: str) -> Callable[[tuple[Any, ...]], bool]:
    return lambda entry: entry == ("submit", phone)


async def test_nothing_starts_while_kafka_refuses_the_claim() -> None:
    h = Harness([record(send_request("r1"), offset=0)])
    h.source.refusing_claims = True
    async with h:
        await asyncio.sleep(0.3)
        assert h.submitter.pdus == []
        h.source.refusing_claims = False
        await h.until(lambda: len(h.results) == 1, "the result once the claim is taken")


# -- the claims' bookkeeping -----------------------------------------------------------------

P0 = Partition("smsc.send.v1", 0)


def test_claim_metadata_round_trips_and_ignores_foreign_metadata() -> None:
    assert decode_claim(encode_claim(1234)) == 1234
    assert encode_claim(None) == ""
    for foreign in (None, "", "something else", "started-below=x"):
        assert decode_claim(foreign) is None


def test_records_below_the_inherited_claim_are_replays() -> None:
    claims = Claims()
    claims.assigned(P0, committed=10, metadata=encode_claim(13))
    marked = [claims.fetched(record(b"x", offset=o)) for o in range(10, 16)]
    assert [r.replay for r in marked] == [True, True, True, False, False, False]


def test_a_claim_is_needed_only_beyond_the_frontier_and_keeps_the_commit_point() -> None:
    claims = Claims()
    claims.assigned(P0, committed=None, metadata=None)
    batch = [claims.fetched(record(b"x", offset=o)) for o in (5, 6, 7)]
    assert claims.needed(batch) == {P0: (5, 8)}  # nothing committed: the first offset fetched
    claims.claimed(P0, 8)
    assert claims.needed(batch) == {}
    assert claims.metadata(P0) == encode_claim(8)
    claims.committed(P0, 7)
    more = [claims.fetched(record(b"x", offset=8))]
    assert claims.needed(more) == {P0: (7, 9)}


def test_commits_carry_the_inherited_claim_until_passed() -> None:
    claims = Claims()
    claims.assigned(P0, committed=3, metadata=encode_claim(20))
    assert claims.metadata(P0) == encode_claim(20)
    assert claims.needed([claims.fetched(record(b"x", offset=3))]) == {}
    claims.claimed(P0, 25)
    assert claims.metadata(P0) == encode_claim(25)


def test_records_of_a_partition_no_longer_ours_are_not_claimed() -> None:
    claims = Claims()
    claims.assigned(P0, committed=0, metadata=None)
    fetched = claims.fetched(record(b"x", offset=0))
    claims.forget([P0])
    assert claims.needed([fetched]) == {}


def _consumed(partition: Partition, offset: int, key: bytes | None) -> ConsumerRecord[bytes, bytes]:
    value = b"v%d" % offset
    return ConsumerRecord(*partition, offset, 1_000 + offset, 0, key, value, None, 0, 0, [])


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # the partition
            st.integers(0, 30),  # its first offset fetched
            st.integers(0, 5),  # how many records
            st.one_of(st.none(), st.integers(0, 40)),  # the inherited claim
            st.booleans(),  # whether its claims were read
        ),
        max_size=6,
    )
)
def test_records_made_per_fetched_partition_equal_those_noted_one_by_one(
    batches: list[tuple[int, int, int, int | None, bool]],
) -> None:
    by_partition, one_by_one = Claims(), Claims()
    for number, first, count, inherited, read in batches:
        partition = Partition("smsc.send.v1", number)
        if read:
            for claims in (by_partition, one_by_one):
                claims.assigned(partition, committed=None, metadata=encode_claim(inherited))
        fetched = [
            _consumed(partition, o, b"k" if o % 2 else None) for o in range(first, first + count)
        ]
        made = by_partition.fetched_records(partition, fetched)
        noted = [
            one_by_one.fetched(Record(*partition, m.offset, m.key, m.value, m.timestamp))
            for m in fetched
        ]
        assert made == noted
        assert [r.source for r in made] == [r.source for r in noted]
        assert by_partition.needed(made) == one_by_one.needed(noted)
        assert by_partition.metadata(partition) == one_by_one.metadata(partition)


def test_a_record_fetched_before_its_partitions_claims_were_read_is_no_replay() -> None:
    claims = Claims()
    fetched = claims.fetched(record(b"x", offset=4))
    assert not fetched.replay
    assert claims.needed([fetched]) == {P0: (4, 5)}
