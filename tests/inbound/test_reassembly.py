"""The reassembly state machine: parts in any order, duplicates, timeouts on event time, and
the offsets it lets the service commit. Plain objects, a fake clock (the parts' times)."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.compose.encoding import Encoding
from gateway.events.delivery import incoming_event
from gateway.inbound.concat import Concat, Scheme
from gateway.inbound.parts import IncomingPart
from gateway.inbound.reassembly import Assembled, Outcome, Reassembly, incoming_message
from gateway.smpp.constants import DataCoding
from tests.eventcheck import validate_event
from tests.inbound.concat_support import deliver_parts, incoming_parts

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TIMEOUT = 120.0
LONG_TEXT = "The quick brown fox jumps over the lazy dog. " * 9  # 405 characters: 3 parts


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def parts_of(text: str, **options: object) -> list[IncomingPart]:
    return incoming_parts(deliver_parts(text, **options), T0)  # type: ignore[arg-type]


def feed(
    machine: Reassembly[int], parts: list[IncomingPart], *, partition: int = 0, start: int = 0
) -> list[Assembled]:
    finished: list[Assembled] = []
    for offset, part in enumerate(parts, start=start):
        finished += machine.add(partition, offset, part).finished
    return finished


def part(
    sequence: int,
    body: bytes,
    *,
    total: int = 3,
    reference: int = 1,
    scheme: Scheme = Scheme.UDH8,
    received: float = 0.0,
    data_coding: int = 0,
) -> IncomingPart:
    return IncomingPart(
        source_addr="79001234567",
        destination_addr="4567",
        concat=Concat(scheme, reference, total, sequence),
        data_coding=data_coding,
        esm_class=0x40,
        header=b"",
        body=body,
        received_at=at(received),
    )


def test_parts_in_order_give_one_whole_message() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    (message,) = feed(machine, parts_of(LONG_TEXT))
    assert message.outcome is Outcome.COMPLETE
    assert message.missing == ()
    content = incoming_message(message)
    assert content.text == LONG_TEXT
    assert content.parts == 3
    assert machine.pending() == 0


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 4))
def test_any_order_with_duplicates_gives_the_same_message(rng: random.Random, extra: int) -> None:
    parts = parts_of(LONG_TEXT)
    shuffled = parts + [rng.choice(parts) for _ in range(extra)]
    rng.shuffle(shuffled)
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    finished = feed(machine, shuffled)
    (reference,) = feed(Reassembly(TIMEOUT), parts)
    # Exactly one message; a duplicate after completion is known as one, not a new message.
    assert len(finished) == 1
    assert machine.pending() == 0
    (message,) = finished
    assert incoming_message(message).text == LONG_TEXT
    expected = incoming_event(incoming_message(reference))
    assert incoming_event(incoming_message(message))["event_id"] == expected["event_id"]


def test_duplicates_are_reported_as_such() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    first, second, third = parts_of(LONG_TEXT)
    assert not machine.add(0, 0, first).duplicate
    assert machine.add(0, 1, first).duplicate
    assert not machine.add(0, 2, third).duplicate
    assert machine.add(0, 3, second).finished
    assert machine.add(0, 4, second).duplicate  # the provider delivered it again


def test_each_encoding_and_scheme_reads_back() -> None:
    cases: list[tuple[str | bytes, dict[str, object]]] = [
        ("Ünïcödé ✓ текст " * 20, {"encoding": Encoding.UCS2}),
        ("café à la crème " * 20, {"encoding": Encoding.LATIN1}),
        ("GSM {escapes} [and] €uro ~ " * 12, {"encoding": Encoding.GSM7}),
        ("sixteen-bit reference " * 12, {"reference_bits": 16, "reference": 0xBEEF}),
        ("sar tlvs " * 40, {"split": "sar", "reference": 0x1234}),
    ]
    for text, options in cases:
        parts = parts_of(text, **options)  # type: ignore[arg-type]
        assert len(parts) > 1
        (message,) = feed(Reassembly(TIMEOUT), list(reversed(parts)))
        assert incoming_message(message).text == text


def test_binary_parts_join_to_the_octets_sent() -> None:
    octets = bytes(range(256)) * 2
    parts = incoming_parts(deliver_parts(octets), T0)
    (message,) = feed(Reassembly(TIMEOUT), parts)
    assert b"".join(p.body for p in message.parts) == octets


def test_ucs2_surrogate_pair_split_across_parts_decodes_whole() -> None:
    text = "ab😀cd"
    octets = text.encode("utf-16-be")
    cut = 6  # inside the pair: "ab" is 4 octets, the high surrogate 2 more
    ucs2 = int(DataCoding.UCS2)
    parts = [
        part(2, octets[cut:], total=2, data_coding=ucs2),
        part(1, octets[:cut], total=2, data_coding=ucs2),
    ]
    (message,) = feed(Reassembly(TIMEOUT), parts)
    assert incoming_message(message).text == text


def test_gsm_escape_split_across_parts_decodes_whole() -> None:
    parts = [part(1, b"price 5\x1b", total=2), part(2, b"\x65 only", total=2)]
    (message,) = feed(Reassembly(TIMEOUT), parts)
    assert incoming_message(message).text == "price 5€ only"


def test_references_of_each_scheme_are_separate_messages() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    mixed = [
        part(1, b"8-a", total=2, scheme=Scheme.UDH8, reference=7),
        part(1, b"16-a", total=2, scheme=Scheme.UDH16, reference=7),
        part(1, b"sar-a", total=2, scheme=Scheme.SAR, reference=7),
        part(2, b"sar-b", total=2, scheme=Scheme.SAR, reference=7),
        part(2, b"16-b", total=2, scheme=Scheme.UDH16, reference=7),
        part(2, b"8-b", total=2, scheme=Scheme.UDH8, reference=7),
    ]
    finished = feed(machine, mixed)
    assert [incoming_message(m).text for m in finished] == ["sar-asar-b", "16-a16-b", "8-a8-b"]


def test_a_part_announcing_another_total_belongs_to_another_message() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    assert not feed(machine, [part(1, b"a", total=2), part(1, b"x", total=3)])
    assert machine.pending() == 2
    (done,) = feed(machine, [part(2, b"b", total=2)], start=2)
    assert incoming_message(done).text == "ab"
    assert machine.pending() == 1


def test_a_reused_reference_finishes_the_held_message_as_superseded() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    feed(machine, [part(1, b"old-1"), part(2, b"old-2")])
    (old,) = feed(machine, [part(1, b"new-1")], start=2)
    assert old.outcome is Outcome.SUPERSEDED
    assert old.missing == (3,)
    assert incoming_message(old).text == "old-1old-2"
    (new,) = feed(machine, [part(2, b"new-2"), part(3, b"new-3")], start=3)
    assert incoming_message(new).text == "new-1new-2new-3"


def test_timeout_on_event_time_publishes_what_arrived_as_partial() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    feed(machine, [part(1, b"one ", received=0), part(3, b"three", received=5)])
    # Another message's part, received after the deadline, moves the partition's clock.
    late = part(1, b"other", total=2, reference=9, received=TIMEOUT + 1)
    (partial,) = machine.add(0, 2, late).finished
    assert partial.outcome is Outcome.TIMED_OUT
    assert partial.missing == (2,)
    content = incoming_message(partial)
    assert content.text == "one three"  # runs either side of the gap decoded apart
    event = incoming_event(content)
    validate_event(event)
    assert (event["parts"], event["partial"], event["missing"]) == (3, True, [2])
    assert machine.pending() == 1


def test_wall_clock_tick_times_out_and_never_before_the_deadline() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    feed(machine, [part(1, b"a", received=0)])
    assert machine.tick(0, at(TIMEOUT - 1)) == []
    assert machine.tick(1, at(TIMEOUT + 100)) == []  # another partition's clock
    (partial,) = machine.tick(0, at(TIMEOUT))
    assert partial.missing == (2, 3)


def test_a_late_part_after_timeout_starts_over() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    feed(machine, [part(1, b"a", received=0)])
    (first,) = machine.tick(0, at(TIMEOUT))
    result = machine.add(0, 1, part(2, b"b", received=TIMEOUT + 1))
    assert not result.duplicate
    assert not result.finished
    assert machine.pending() == 1
    (second,) = machine.tick(0, at(2 * TIMEOUT + 1))
    assert (first.missing, second.missing) == ((2, 3), (1, 3))
    assert (
        incoming_event(incoming_message(first))["event_id"]
        != (incoming_event(incoming_message(second))["event_id"])
    )


def test_repeat_of_a_finished_part_is_a_duplicate_until_forgotten() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    parts = [part(n, b"p%d" % n, total=2) for n in (1, 2)]
    assert feed(machine, parts)
    assert machine.add(0, 2, dataclasses.replace(parts[0], received_at=at(60))).duplicate
    machine.tick(0, at(TIMEOUT + 1))
    again = machine.add(0, 3, dataclasses.replace(parts[0], received_at=at(TIMEOUT + 2)))
    assert not again.duplicate
    assert machine.pending() == 1


def test_safe_offset_stays_at_the_first_pending_part() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    assert machine.safe_offset(0, 10) == 10  # nothing known about the partition
    machine.add(0, 4, part(1, b"a"))
    machine.add(0, 7, part(2, b"b"))
    assert machine.safe_offset(0, 8) == 4
    assert machine.safe_offset(1, 3) == 3


def test_safe_offset_holds_a_finished_message_until_its_repeats_are_forgotten() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    feed(machine, [part(1, b"a", total=2), part(2, b"b", total=2)], start=5)
    assert machine.safe_offset(0, 7) == 5
    machine.tick(0, at(TIMEOUT + 1))
    assert machine.safe_offset(0, 7) == 7


def test_safe_offset_never_splits_a_finished_message() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    # A (offsets 0 and 3) finishes; B (offset 1) times out later; C (offset 2) is pending.
    machine.add(0, 0, part(1, b"a1", total=2, reference=1, received=10))
    machine.add(0, 1, part(1, b"b1", total=2, reference=2, received=1))
    # C's bind stamps a little ahead of A's: written before A's last part, received after.
    machine.add(0, 2, part(1, b"c1", total=2, reference=3, received=TIMEOUT + 5))
    machine.add(0, 3, part(2, b"a2", total=2, reference=1, received=TIMEOUT))
    machine.tick(0, at(2 * TIMEOUT + 1))  # A and B forgotten as repeats; C still pending
    assert machine.pending() == 1
    # C pending at 2 would split A (0..3): a restart from 2 would see A's last part alone.
    assert machine.safe_offset(0, 4) == 0
    machine.committed(0, 0)
    assert machine.safe_offset(0, 4) == 0


def test_committed_forgets_spans_wholly_before_it() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    feed(machine, [part(1, b"a", total=2), part(2, b"b", total=2)])
    machine.tick(0, at(TIMEOUT + 1))
    assert machine.safe_offset(0, 2) == 2
    machine.committed(0, 2)
    machine.add(0, 2, part(1, b"c", total=2, reference=4, received=TIMEOUT + 2))
    assert machine.safe_offset(0, 3) == 2


def test_drop_forgets_a_revoked_partition() -> None:
    machine: Reassembly[int] = Reassembly(TIMEOUT)
    machine.add(0, 0, part(1, b"a"))
    machine.add(1, 0, part(1, b"b"))
    machine.drop(0)
    assert machine.pending() == 1
    assert machine.safe_offset(0, 9) == 9
    assert machine.tick(0, at(10 * TIMEOUT)) == []


def test_event_id_depends_on_content_not_on_offsets_or_arrival() -> None:
    parts = parts_of(LONG_TEXT)
    (a,) = feed(Reassembly(TIMEOUT), parts, start=0)
    later = [dataclasses.replace(p, received_at=at(30)) for p in reversed(parts)]
    (b,) = feed(Reassembly(TIMEOUT), later, start=1000)
    event_a, event_b = incoming_event(incoming_message(a)), incoming_event(incoming_message(b))
    assert event_a["event_id"] == event_b["event_id"]
    other = parts_of(LONG_TEXT.replace("fox", "cat"))
    (c,) = feed(Reassembly(TIMEOUT), other)
    assert incoming_event(incoming_message(c))["event_id"] != event_a["event_id"]


def test_whole_message_event_matches_the_schema() -> None:
    (message,) = feed(Reassembly(TIMEOUT), parts_of(LONG_TEXT, reference=200))
    event = incoming_event(incoming_message(message))
    validate_event(event)
    assert event["phone"] == "79001234567"
    assert event["to"] == "4567"
    assert (event["parts"], event["partial"], event["missing"]) == (3, False, [])
    assert event["raw"]["concat"] == {"scheme": "udh8", "reference": 200, "total": 3}
    assert [p["sequence"] for p in event["raw"]["parts"]] == [1, 2, 3]
    assert event["raw"]["parts"][0]["short_message_hex"].startswith("050003c80301")
