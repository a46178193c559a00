"""Incoming SMS as the simulator builds them, read back by the gateway's own codec.

No sockets: :func:`build_incoming` is pure. Each PDU goes through ``codec.encode`` and
``codec.decode`` first, so what is checked is what travels.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.compose import CompositionError
from gateway.errors import ConfigError
from gateway.events.delivery import IncomingMessage
from gateway.inbound.deliver_sm import interpret
from gateway.settings.simulator import SimulatorSettings
from gateway.simulator.incoming import IncomingSpec, References, build_incoming
from gateway.simulator.traffic import IncomingTraffic
from gateway.smpp import codec
from gateway.smpp.constants import DataCoding, EsmClass, Npi, TlvTag, Ton
from gateway.smpp.pdu import DeliverSm
from gateway.smpp.textcoding import decode_text

SUBSCRIBER, NUMBER = "79161234567", "79001234567"
LONG_GSM = "Order {1}: [€10] ~ thanks! " * 12  # extension characters across part boundaries
LONG_LATIN1 = "Commande reçue à l'hôtel, merci. " * 10
LONG_UCS2 = "Здравствуйте, заказ получен ✓ " * 8


def on_the_wire(pdus: Sequence[DeliverSm]) -> list[DeliverSm]:
    decoded = []
    for pdu in pdus:
        back = codec.decode(codec.encode(pdu))
        assert isinstance(back, DeliverSm)
        decoded.append(back)
    return decoded


def udh_parts(pdus: Sequence[DeliverSm]) -> list[tuple[bytes, bytes]]:
    """(header, body) of each part, the header checked to be one concatenation element."""
    parts = []
    for pdu in pdus:
        assert pdu.esm_class == EsmClass.UDHI
        length = pdu.short_message[0]
        parts.append((pdu.short_message[: 1 + length], pdu.short_message[1 + length :]))
    return parts


def test_a_short_gsm_message_is_one_plain_deliver_sm() -> None:
    spec = IncomingSpec(SUBSCRIBER, NUMBER, "Hi {there} €5")
    (pdu,) = on_the_wire(build_incoming(spec))
    assert (pdu.source_addr, pdu.destination_addr) == (SUBSCRIBER, NUMBER)
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (Ton.INTERNATIONAL, Npi.ISDN)
    assert (pdu.esm_class, pdu.data_coding, pdu.tlvs) == (0, DataCoding.GSM7, ())
    # "{", "}" and "€" are GSM extension characters: escape 0x1B, then their code.
    assert pdu.short_message == b"Hi \x1b\x28there\x1b\x29 \x1b\x655"
    assert decode_text(pdu.short_message, pdu.data_coding) == "Hi {there} €5"


@pytest.mark.parametrize(
    ("coding", "text", "data_coding", "octets"),
    [
        ("auto", "Привет", DataCoding.UCS2, "Привет".encode("utf-16-be")),
        ("ucs2", "Hello", DataCoding.UCS2, "Hello".encode("utf-16-be")),
        ("latin1", "Café àé", DataCoding.LATIN1, "Café àé".encode("latin-1")),
        ("gsm", "Hello @", DataCoding.GSM7, b"Hello \x00"),
    ],
)
def test_each_coding_sets_data_coding_and_octets(
    coding: str, text: str, data_coding: int, octets: bytes
) -> None:
    (pdu,) = on_the_wire(build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, text, coding)))
    assert (pdu.data_coding, pdu.short_message) == (data_coding, octets)
    assert decode_text(pdu.short_message, pdu.data_coding) == text


def test_binary_octets_travel_as_coding_one_untouched() -> None:
    data = bytes(range(256))[:100]
    (pdu,) = on_the_wire(build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, data, "binary")))
    assert (pdu.data_coding, pdu.short_message) == (DataCoding.LATIN1, data)


def test_an_iso_bind_gets_latin1_instead_of_gsm() -> None:
    (pdu,) = build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, "Café"), iso=True)
    assert (pdu.data_coding, pdu.short_message) == (DataCoding.LATIN1, b"Caf\xe9")
    with pytest.raises(CompositionError):
        build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, "Cafe", "gsm"), iso=True)


@pytest.mark.parametrize(
    ("text", "coding", "per_part"),
    [(LONG_GSM, "gsm", 153), (LONG_LATIN1, "latin1", 134), (LONG_UCS2, "ucs2", 134)],
)
def test_udh8_parts_carry_reference_total_and_sequence(
    text: str, coding: str, per_part: int
) -> None:
    pdus = on_the_wire(
        build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, text, coding, "udh8"), reference=0x1A7)
    )
    total = len(pdus)
    assert total >= 3
    parts = udh_parts(pdus)
    for sequence, (header, body) in enumerate(parts, start=1):
        # UDHL 5, IEI 0x00, length 3, reference masked to 8 bits, total, sequence.
        assert header == bytes((5, 0x00, 3, 0xA7, total, sequence))
        assert len(body) <= per_part
    assert len({pdu.data_coding for pdu in pdus}) == 1
    whole = b"".join(body for _, body in parts)
    assert decode_text(whole, pdus[0].data_coding) == text


def test_udh16_parts_carry_a_two_octet_reference() -> None:
    spec = IncomingSpec(SUBSCRIBER, NUMBER, LONG_UCS2, "ucs2", "udh16")
    pdus = on_the_wire(build_incoming(spec, reference=0x1234))
    parts = udh_parts(pdus)
    for sequence, (header, body) in enumerate(parts, start=1):
        assert header == bytes((6, 0x08, 4, 0x12, 0x34, len(pdus), sequence))
        assert len(body) <= 133
    assert b"".join(body for _, body in parts).decode("utf-16-be") == LONG_UCS2


def test_sar_parts_carry_the_tlvs_and_no_header() -> None:
    spec = IncomingSpec(SUBSCRIBER, NUMBER, LONG_GSM, "gsm", "sar")
    pdus = on_the_wire(build_incoming(spec, reference=0xBEEF))
    for sequence, pdu in enumerate(pdus, start=1):
        assert pdu.esm_class == 0
        reference = pdu.tlv(TlvTag.SAR_MSG_REF_NUM)
        total = pdu.tlv(TlvTag.SAR_TOTAL_SEGMENTS)
        seqnum = pdu.tlv(TlvTag.SAR_SEGMENT_SEQNUM)
        assert reference is not None
        assert total is not None
        assert seqnum is not None
        assert (reference.value, total.as_int(), seqnum.as_int()) == (
            b"\xbe\xef",
            len(pdus),
            sequence,
        )
    whole = b"".join(pdu.short_message for pdu in pdus)
    assert decode_text(whole, DataCoding.GSM7) == LONG_GSM


def test_payload_carries_a_long_message_in_one_deliver_sm() -> None:
    (pdu,) = on_the_wire(
        build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, LONG_UCS2, "ucs2", "payload"))
    )
    payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
    assert pdu.short_message == b""
    assert payload is not None
    assert payload.value.decode("utf-16-be") == LONG_UCS2


def test_a_long_message_reads_whole_to_the_gateway_when_sent_as_payload() -> None:
    (pdu,) = build_incoming(IncomingSpec(SUBSCRIBER, NUMBER, LONG_GSM, "gsm", "payload"))
    event = interpret(pdu, datetime.now(UTC))
    assert isinstance(event, IncomingMessage)
    assert (event.phone, event.to, event.text) == (SUBSCRIBER, NUMBER, LONG_GSM)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"coding": "utf8"}, "coding"),
        ({"concat": "udh"}, "concat"),
        ({"coding": "binary"}, "bytes"),
        ({"text": b"\x01"}, "bytes"),
    ],
)
def test_a_spec_names_what_is_wrong(fields: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {"source": SUBSCRIBER, "destination": NUMBER, "text": "x"}
    with pytest.raises(ValueError, match=problem):
        IncomingSpec(**(values | fields))  # type: ignore[arg-type]


def test_references_cycle_per_destination_within_their_field() -> None:
    references = References()
    first = [references.take("100", "udh8") for _ in range(3)]
    assert first == [1, 2, 3]
    assert references.take("200", "udh8") == 1
    for _ in range(252):
        references.take("100", "udh8")
    assert references.take("100", "udh8") == 0  # 256 wraps to 0 in one octet
    assert references.take("100", "udh16") == 257


def test_configured_traffic_follows_the_mix_and_reads_back_whole() -> None:
    config = SimulatorSettings(
        incoming_codings=("gsm", "ucs2"), incoming_concat=("sar",), incoming_long_share=1.0
    )
    traffic = IncomingTraffic(config, random.Random(1))
    specs = [traffic.next_message() for _ in range(20)]
    assert {spec.coding for spec in specs} == {"gsm", "ucs2"}
    assert {spec.concat for spec in specs} == {"sar"}
    assert {spec.destination for spec in specs} == {config.incoming_number}
    for spec in specs:
        pdus = build_incoming(spec)
        assert len(pdus) > 1
        whole = b"".join(pdu.short_message for pdu in pdus)
        assert decode_text(whole, pdus[0].data_coding) == spec.text


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"incoming_codings": ("gsm", "utf8")}, "incoming_codings"),
        ({"incoming_concat": ()}, "incoming_concat"),
        ({"incoming_long_share": 1.5}, "incoming_long_share"),
        ({"incoming_rate_per_second": -1.0}, "incoming_rate_per_second"),
        ({"incoming_number": "7" * 21}, "incoming_number"),
        ({"incoming_retry_seconds": 0.0}, "incoming_retry_seconds"),
    ],
)
def test_incoming_settings_are_checked(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        SimulatorSettings(**fields)  # type: ignore[arg-type]
