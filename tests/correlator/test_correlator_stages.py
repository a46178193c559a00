"""The plumbing between the correlator's stages, with plain objects: in-order completion,
route batches, changelog coalescing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from gateway.correlator.acks import InOrderAcks
from gateway.correlator.faustapp import guard_acks
from gateway.correlator.model import BATCH, RoutedReport, SubmittedMessage
from gateway.correlator.outputs import Sends
from gateway.correlator.records import (
    InvalidInputError,
    Tick,
    parse_route_record,
    parse_route_records,
    route_batch,
)
from gateway.correlator.route import MAX_REPORT_BYTES, route_report
from gateway.correlator.router import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    batch_records,
    route_partition,
)
from gateway.correlator.tables import Change, Changelog, PersistedOffsets
from gateway.errors import KafkaUnavailableError
from gateway.events.dead_letter import Origin, dead_letter_event
from tests.correlator.joinkit import T0, at, report


def test_records_complete_in_order_once_all_their_outputs_are_acked() -> None:
    done: list[str] = []
    acks: InOrderAcks[str] = InOrderAcks(done.append)
    first, second = acks.take("a", 2), acks.take("b", 1)
    acks.take("c", 0)  # nothing to wait for, but "a" and "b" come first
    second.settle(None)
    assert done == []
    first.settle(None)
    assert done == []
    first.settle(None)
    assert done == ["a", "b", "c"]
    assert len(acks) == 0


def test_nothing_completes_after_a_failed_output() -> None:
    done: list[str] = []
    acks: InOrderAcks[str] = InOrderAcks(done.append)
    failing, later = acks.take("a", 1), acks.take("b", 1)
    later.settle(None)
    failing.settle(KafkaUnavailableError("refused"))
    acks.take("c", 0)
    assert done == []
    assert acks.failed.is_set()
    assert isinstance(acks.failure, KafkaUnavailableError)


async def test_draining_waits_for_the_acks_and_gives_up_in_time() -> None:
    acks: InOrderAcks[str] = InOrderAcks(lambda _: None)
    slot = acks.take("a", 1)
    assert not await acks.drained(0.05)
    asyncio.get_running_loop().call_later(0.01, slot.settle, None)
    assert await acks.drained(5.0)


class _Producer:
    """A producer double answering each send at once, or refusing it."""

    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, int | None]] = []
        self._refuse = refuse

    async def send(  # noqa: PLR0917 - faust's positional signature
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, key, partition))
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._refuse:
            answer.set_exception(RuntimeError("MessageSizeTooLarge"))
        else:
            answer.set_result(len(self.sent))
        return answer


async def test_sends_report_each_answer() -> None:
    answers: list[object] = []
    stored: list[object] = []
    await Sends(_Producer()).send(
        "t", b"k", b"v", answers.append, partition=2, stored=stored.append
    )
    await Sends(_Producer(refuse=True)).send("t", b"k", b"v", answers.append)
    await asyncio.sleep(0)
    assert answers[0] is None
    assert stored == [1]
    assert isinstance(answers[1], KafkaUnavailableError)
    assert "MessageSizeTooLarge" in str(answers[1])


def test_a_changelog_sends_the_last_change_of_each_key() -> None:
    changelog = Changelog(Sends(_Producer()))
    store = object()
    changelog.pending += [
        Change(store, "parts", b"1/7", b"a"),
        Change(store, "held", b"1/7", b"h"),
        Change(store, "parts", b"2/7", b"b"),
        Change(store, "parts", b"1/7", None),
    ]
    taken = changelog.take()
    assert [(c.topic, c.key, c.value) for c in taken] == [
        ("parts", b"1/7", None),
        ("held", b"1/7", b"h"),
        ("parts", b"2/7", b"b"),
    ]
    assert changelog.pending == []


class _Store:
    def __init__(self) -> None:
        self.written: list[tuple[TP, int]] = []

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.written.append((tp, offset))


async def test_persisted_offsets_are_written_once_per_partition_the_highest() -> None:
    parts, held = _Store(), _Store()
    offsets = PersistedOffsets()
    for store, topic, partition, offset in [
        (parts, "parts", 1, 5),
        (parts, "parts", 1, 7),
        (parts, "parts", 1, 6),  # answers for one partition can come in any order
        (parts, "parts", 2, 3),
        (held, "held", 1, 4),
    ]:
        offsets.note(store, SimpleNamespace(topic=topic, partition=partition, offset=offset))
    assert parts.written == held.written == []  # at the end of the event loop's turn
    await asyncio.sleep(0)
    assert sorted(parts.written) == [(TP("parts", 1), 7), (TP("parts", 2), 3)]
    assert held.written == [(TP("held", 1), 4)]
    offsets.note(parts, SimpleNamespace(topic="parts", partition=1, offset=8))
    await asyncio.sleep(0)
    assert parts.written[-1] == (TP("parts", 1), 8)
    assert len(parts.written) == 3


async def test_persisted_offsets_only_for_partitions_still_actively_owned() -> None:
    """An answer that comes after the partition went elsewhere (a standby here now, filled
    from the changelog by faust) must not move its offset: the next recovery here would start
    there and skip the new owner's records that this store never applied."""
    parts = _Store()
    owned = {TP("parts", 1)}
    offsets = PersistedOffsets(actives=lambda: owned)
    offsets.note(parts, SimpleNamespace(topic="parts", partition=1, offset=5))
    offsets.note(parts, SimpleNamespace(topic="parts", partition=2, offset=9))
    await asyncio.sleep(0)
    assert parts.written == [(TP("parts", 1), 5)]
    offsets.note(parts, SimpleNamespace(topic="parts", partition=1, offset=6))
    owned.clear()  # revoked before the write
    await asyncio.sleep(0)
    assert parts.written == [(TP("parts", 1), 5)]


async def test_persisted_offsets_only_in_the_generation_the_record_was_sent_in() -> None:
    parts = _Store()
    generation = 3
    offsets = PersistedOffsets(generation=lambda: generation)
    late = SimpleNamespace(topic="parts", partition=1, offset=40)
    offsets.note(parts, late, generation=2)  # sent before the last rebalance
    await asyncio.sleep(0)
    assert parts.written == []
    offsets.note(parts, SimpleNamespace(topic="parts", partition=1, offset=41), generation=3)
    generation = 4  # a rebalance between the answer and the write
    await asyncio.sleep(0)
    assert parts.written == []
    offsets.note(parts, SimpleNamespace(topic="parts", partition=1, offset=42), generation=4)
    await asyncio.sleep(0)
    assert parts.written == [(TP("parts", 1), 42)]


class _OffsetsProducer(_Producer):
    """Answers with the record's metadata, offsets counting from 0 per partition."""

    async def send(  # noqa: PLR0917 - faust's positional signature
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> asyncio.Future[Any]:
        await super().send(topic, key, value, partition, timestamp, headers)
        offset = sum(1 for t, _, p in self.sent if (t, p) == (topic, partition)) - 1
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        answer.set_result(SimpleNamespace(topic=topic, partition=partition, offset=offset))
        return answer


async def test_a_changelog_notes_offsets_in_the_generation_of_its_event() -> None:
    parts = _Store()
    changelog = Changelog(
        Sends(_OffsetsProducer()), generation=lambda: 7, actives=lambda: {TP("parts", 0)}
    )
    answers: list[object] = []
    await changelog.send([Change(parts, "parts", b"1/7", b"a")], 0, answers.append, 6)
    await changelog.send([Change(parts, "parts", b"2/7", b"b")], 0, answers.append, 7)
    for _ in range(3):
        await asyncio.sleep(0)
    assert answers == [None, None]  # both records are acknowledged all the same
    assert parts.written == [(TP("parts", 0), 1)]


@pytest.mark.parametrize("key", [b"79001234567", b"7", b"", "телефон".encode()])
@pytest.mark.parametrize("partitions", [1, 3, 6, 24])
def test_route_partition_is_kafkas_default_for_the_key(key: bytes, partitions: int) -> None:
    expected = DefaultPartitioner()(key, list(range(partitions)), [])
    assert route_partition(key, partitions) == expected


def _document(i: int, size: int = 10) -> dict[str, Any]:
    return {"kind": "report", "i": i, "value": "x" * size}


def test_route_batches_keep_the_order_and_stay_under_the_limits() -> None:
    many = [_document(i) for i in range(2 * MAX_BATCH_ITEMS + 5)]
    large = [_document(i, size=MAX_BATCH_BYTES // 3) for i in range(5)]
    for documents in (many, large, [_document(0)]):
        values = batch_records(documents)
        items = [item for v in values for item in orjson.loads(v)["items"]]
        assert items == documents
        assert all(orjson.loads(v)["kind"] == BATCH for v in values)
        assert all(len(orjson.loads(v)["items"]) <= MAX_BATCH_ITEMS for v in values)
        assert all(len(v) <= MAX_BATCH_BYTES for v in values if len(orjson.loads(v)["items"]) > 1)
    assert len(batch_records(many)) == 3
    assert len(batch_records(large)) >= 2


def test_a_route_record_carries_one_document_or_a_batch() -> None:
    origin = Origin("kafka", "dlr", 1, 7)
    routed = RoutedReport(origin, b"101", report("101", "79001234567"))
    submitted = SubmittedMessage("req-1", "79001234567", ("101",), {"a": "b"}, T0)
    batch = route_batch([submitted.to_record(), routed.to_record(), {"kind": "nonsense"}])
    first, second, third = parse_route_records(batch)
    assert first == submitted
    assert second == routed
    assert isinstance(third, InvalidInputError)
    assert third.code == "invalid_route_record"
    # A record of one document, as written before batching, and ticks.
    assert parse_route_record(orjson.dumps(routed.to_record())) == routed
    assert parse_route_records(b'{"kind":"tick"}') == [Tick()]
    with pytest.raises(InvalidInputError):
        parse_route_records(b'{"kind":"batch","items":7}')


def test_a_report_too_large_for_a_route_batch_is_dead_lettered() -> None:
    value = orjson.dumps(orjson.loads(report("101", "79001234567")) | {"x": "y" * MAX_REPORT_BYTES})
    step = route_report(Origin("kafka", "dlr", 0, 1), b"101", value, T0)
    assert step.dead_lettered == ["too_large"]


def test_dead_letters_of_documents_of_one_record_have_their_own_ids() -> None:
    def letter(detail: str | None) -> str:
        origin = Origin("kafka", "route", 2, 40, detail)
        event = dead_letter_event(
            role="correlator",
            origin=origin,
            reason_code="internal_error",
            reason="boom",
            key=None,
            value=b"{}",
            occurred_at=at(T0),
        )
        return str(event["event_id"])

    assert len({letter(None), letter("document 0"), letter("document 1")}) == 3
    assert letter("document 1") == letter("document 1")


class _Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: Any) -> bool:
        self.acked.append(message.offset)
        return True


def test_acks_of_events_faust_skipped_do_not_count() -> None:
    """faust acks the events its stream skips (fetched before the last rebalance, or taken
    while a rebalance holds the flow), also on a noack stream: those must not let a commit
    pass records nothing processed."""
    consumer = _Consumer()
    state = SimpleNamespace(generation=5, rebalancing=False)
    guard_acks(
        consumer,
        lambda m: m.generation_id == state.generation and not state.rebalancing,
    )
    assert consumer.ack(SimpleNamespace(offset=10, generation_id=5))
    assert not consumer.ack(SimpleNamespace(offset=11, generation_id=4))
    state.rebalancing = True
    assert not consumer.ack(SimpleNamespace(offset=12, generation_id=5))
    state.rebalancing, state.generation = False, 6
    assert not consumer.ack(SimpleNamespace(offset=12, generation_id=5))
    assert consumer.ack(SimpleNamespace(offset=12, generation_id=6))
    assert consumer.acked == [10, 12]
