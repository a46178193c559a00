"""Concatenated incoming SMS for tests: DELIVER_SMs built as a subscriber's phone cuts them.

Parts are cut with the gateway's own outbound splitter (:mod:`gateway.compose.split`), the
way any sender cuts a long message; the byte-level tests in test_concat.py check the header
format independently of it.
"""

from __future__ import annotations

from datetime import datetime

from gateway.compose.encoding import DATA_CODING, Encoded, Encoding, encode
from gateway.compose.split import frame, plan
from gateway.inbound.deliver_sm import interpret
from gateway.inbound.parts import IncomingPart
from gateway.settings.composition import CompositionSettings
from gateway.smpp.pdu import DeliverSm

SUBSCRIBER = "+79001234567"
SHORT_NUMBER = "4567"


def deliver_parts(
    text: str | bytes,
    *,
    encoding: Encoding = Encoding.GSM7,
    split: str = "udh",
    reference_bits: int = 8,
    reference: int = 42,
    source: str = SUBSCRIBER,
    destination: str = SHORT_NUMBER,
) -> list[DeliverSm]:
    """The DELIVER_SMs of ``text`` (octets when binary), in order; more than one if long."""
    encoded = Encoded(Encoding.BINARY, text) if isinstance(text, bytes) else encode(text, encoding)
    settings = CompositionSettings(split=split, reference_bits=reference_bits, max_parts=255)
    split_parts = frame(plan(encoded, settings), settings, reference)
    return [
        DeliverSm(
            sequence_number=index + 1,
            source_addr=source,
            destination_addr=destination,
            esm_class=int(part.esm_class),
            data_coding=int(DATA_CODING[encoded.encoding]),
            short_message=part.short_message,
            tlvs=part.tlvs,
        )
        for index, part in enumerate(split_parts.parts)
    ]


def incoming_parts(pdus: list[DeliverSm], received_at: datetime) -> list[IncomingPart]:
    """What the gateway reads from each DELIVER_SM: every one must be a part."""
    found = [interpret(pdu, received_at) for pdu in pdus]
    parts = [p for p in found if isinstance(p, IncomingPart)]
    assert len(parts) == len(found), found
    return parts
