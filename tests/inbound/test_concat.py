"""Reading a DELIVER_SM's place in a concatenated SMS: UDH (8/16-bit) and SAR, header stripped.

Header bytes are written out by hand from 3GPP TS 23.040 9.2.3.24.1 and 9.2.3.24.8, not
built with the gateway's own composer, so a shared mistake cannot hide.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.events.delivery import IncomingMessage, incoming_event
from gateway.inbound.concat import Concat, ConcatError, Scheme, user_data
from gateway.inbound.deliver_sm import Unreadable, interpret
from gateway.inbound.parts import IncomingPart, PartRecordError, part_record, read_part
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, Tlv, tlv_u8, tlv_u16
from tests.eventcheck import validate_event
from tests.inbound.concat_support import deliver_parts

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
UDHI = int(EsmClass.UDHI)


def pdu(short_message: bytes, *, esm_class: int = UDHI, tlvs: tuple[Tlv, ...] = ()) -> DeliverSm:
    return DeliverSm(
        source_addr="+79001234567",
        destination_addr="4567",
        esm_class=esm_class,
        short_message=short_message,
        tlvs=tlvs,
    )


def sar(reference: int, total: int, sequence: int) -> tuple[Tlv, ...]:
    return (
        tlv_u16(TlvTag.SAR_MSG_REF_NUM, reference),
        tlv_u8(TlvTag.SAR_TOTAL_SEGMENTS, total),
        tlv_u8(TlvTag.SAR_SEGMENT_SEQNUM, sequence),
    )


def test_8bit_reference_header_is_read_and_stripped() -> None:
    data = user_data(pdu(b"\x05\x00\x03\xa7\x03\x02hello"))
    assert data.concat == Concat(Scheme.UDH8, 0xA7, 3, 2)
    assert data.header == b"\x05\x00\x03\xa7\x03\x02"
    assert data.body == b"hello"
    assert data.whole == b"\x05\x00\x03\xa7\x03\x02hello"


def test_16bit_reference_header_is_read_and_stripped() -> None:
    data = user_data(pdu(b"\x06\x08\x04\x12\x34\x04\x04end"))
    assert data.concat == Concat(Scheme.UDH16, 0x1234, 4, 4)
    assert data.body == b"end"


def test_sar_tlvs_give_the_place_and_leave_the_text_alone() -> None:
    data = user_data(pdu(b"\x05 not a header", esm_class=0, tlvs=sar(0x0102, 2, 1)))
    assert data.concat == Concat(Scheme.SAR, 0x0102, 2, 1)
    assert data.header == b""
    assert data.body == b"\x05 not a header"


def test_header_in_message_payload_when_short_message_is_empty() -> None:
    payload = Tlv(TlvTag.MESSAGE_PAYLOAD, b"\x05\x00\x03\x01\x02\x01abc")
    data = user_data(pdu(b"", tlvs=(payload,)))
    assert data.concat == Concat(Scheme.UDH8, 1, 2, 1)
    assert data.body == b"abc"


def test_header_without_concatenation_is_a_single_message_with_the_header_stripped() -> None:
    # Application port addressing, 16-bit (IEI 0x05): no concatenation in it.
    data = user_data(pdu(b"\x06\x05\x04\x0b\x84\x23\xf0payload"))
    assert data.concat is None
    assert data.body == b"payload"


def test_concatenation_beside_other_elements_is_found() -> None:
    header = b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x09\x02\x02"
    data = user_data(pdu(header + b"tail"))
    assert data.concat == Concat(Scheme.UDH8, 9, 2, 2)
    assert data.body == b"tail"


def test_a_repeated_concatenation_element_counts_by_its_last_occurrence() -> None:
    data = user_data(pdu(b"\x0a\x00\x03\x01\x02\x01\x00\x03\x05\x03\x03x"))
    assert data.concat == Concat(Scheme.UDH8, 5, 3, 3)


def test_a_one_part_message_is_not_left_for_reassembly() -> None:
    data = user_data(pdu(b"\x05\x00\x03\x07\x01\x01whole"))
    assert data.concat is None
    assert data.body == b"whole"


def test_without_udhi_the_octets_are_text_even_if_they_look_like_a_header() -> None:
    data = user_data(pdu(b"\x05\x00\x03\x07\x02\x01", esm_class=0))
    assert data.concat is None
    assert data.body == b"\x05\x00\x03\x07\x02\x01"


@pytest.mark.parametrize(
    ("message", "tlvs", "reason"),
    [
        (b"", (), "empty"),
        (b"\x09\x00\x03\x01\x02\x01", (), "runs past"),
        (b"\x04\x00\x03\x01\x02", (), "runs past the header"),
        (b"\x01\x00", (), "tag and length"),
        (b"\x04\x00\x02\x01\x02x", (), "has 2 octets"),
        (b"\x05\x00\x03\x01\x00\x01x", (), "total of 0"),
        (b"\x05\x00\x03\x01\x02\x00x", (), "outside 1..2"),
        (b"\x05\x00\x03\x01\x02\x03x", (), "outside 1..2"),
        (b"\x06\x08\x04\x00\x01\x03\x04x", (), "outside 1..3"),
    ],
    ids=[
        "udhi-empty",
        "udhl-past-end",
        "element-past-header",
        "element-cut",
        "wrong-element-length",
        "total-0",
        "seq-0",
        "seq-past-total",
        "16bit-seq-past-total",
    ],
)
def test_malformed_headers_are_refused_with_a_reason(
    message: bytes, tlvs: tuple[Tlv, ...], reason: str
) -> None:
    with pytest.raises(ConcatError, match=reason):
        user_data(pdu(message, tlvs=tlvs))


@pytest.mark.parametrize(
    ("tlvs", "reason"),
    [
        (sar(1, 2, 1)[:2], "sar_segment_seqnum missing"),
        ((tlv_u8(TlvTag.SAR_MSG_REF_NUM, 1), *sar(1, 2, 1)[1:]), "has 1 octets, not 2"),
        (sar(1, 0, 1), "total of 0"),
        (sar(1, 2, 3), "outside 1..2"),
    ],
    ids=["incomplete", "wrong-size", "total-0", "seq-past-total"],
)
def test_malformed_sar_tlvs_are_refused_with_a_reason(tlvs: tuple[Tlv, ...], reason: str) -> None:
    with pytest.raises(ConcatError, match=reason):
        user_data(pdu(b"text", esm_class=0, tlvs=tlvs))


def test_interpret_turns_a_malformed_header_into_a_dead_letter_reason() -> None:
    meaning = interpret(pdu(b"\x05\x00\x03\x01\x00\x01x"), NOW)
    assert isinstance(meaning, Unreadable)
    assert meaning.code == "invalid_concatenation"
    assert "total of 0" in meaning.message


def test_interpret_gives_a_part_for_each_piece_of_a_long_message() -> None:
    pdus = deliver_parts("x" * 200, reference=77)
    meanings = [interpret(p, NOW) for p in pdus]
    assert all(isinstance(m, IncomingPart) for m in meanings)
    parts = [m for m in meanings if isinstance(m, IncomingPart)]
    assert [p.concat for p in parts] == [
        Concat(Scheme.UDH8, 77, 2, 1),
        Concat(Scheme.UDH8, 77, 2, 2),
    ]
    assert b"".join(p.body for p in parts) == b"x" * 200
    assert parts[0].phone == "79001234567"


def test_interpret_strips_a_non_concatenation_header_from_a_single_sms() -> None:
    meaning = interpret(pdu(b"\x06\x05\x04\x0b\x84\x23\xf0Hi"), NOW)
    assert isinstance(meaning, IncomingMessage)
    assert meaning.text == "Hi"
    event = incoming_event(meaning)
    validate_event(event)
    assert event["raw"]["short_message_hex"] == "0605040b8423f04869"
    assert "parts" not in event


@given(
    reference=st.integers(0, 0xFFFF),
    total=st.integers(2, 255),
    data=st.data(),
    body=st.binary(max_size=130),
)
def test_any_valid_header_or_sar_set_reads_back(
    reference: int, total: int, data: st.DataObject, body: bytes
) -> None:
    sequence = data.draw(st.integers(1, total))
    short = reference & 0xFF
    cases = [
        (pdu(bytes((5, 0, 3, short, total, sequence)) + body), Scheme.UDH8, short),
        (
            pdu(bytes((6, 8, 4, reference >> 8, reference & 0xFF, total, sequence)) + body),
            Scheme.UDH16,
            reference,
        ),
        (pdu(body, esm_class=0, tlvs=sar(reference, total, sequence)), Scheme.SAR, reference),
    ]
    for message, scheme, expected_reference in cases:
        found = user_data(message)
        assert found.concat == Concat(scheme, expected_reference, total, sequence)
        assert found.body == body


@given(st.binary(max_size=40))
def test_any_octets_under_udhi_either_read_or_raise_concat_error(octets: bytes) -> None:
    try:
        found = user_data(pdu(octets))
    except ConcatError:
        return
    assert found.whole == octets


def test_part_record_round_trips() -> None:
    first = interpret(deliver_parts("y" * 170, reference_bits=16)[0], NOW)
    assert isinstance(first, IncomingPart)
    assert first.concat.scheme is Scheme.UDH16
    assert read_part(orjson.dumps(part_record(first))) == first


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "not JSON"),
        (b"{", "not JSON"),
        (b'{"record": "smsc.incoming-part/9"}', "not a smsc.incoming-part/1"),
        (b'{"record": "smsc.incoming-part/1", "total": "2"}', "wrong type: source_addr"),
    ],
    ids=["none", "not-json", "other-version", "wrong-types"],
)
def test_unreadable_part_records_are_refused_with_a_reason(
    value: bytes | None, reason: str
) -> None:
    with pytest.raises(PartRecordError, match=reason):
        read_part(value)


def test_part_record_with_a_bad_field_value_is_refused() -> None:
    first = interpret(deliver_parts("z" * 170)[0], NOW)
    assert isinstance(first, IncomingPart)
    record = part_record(first) | {"body": "not hex"}
    with pytest.raises(PartRecordError):
        read_part(orjson.dumps(record))
