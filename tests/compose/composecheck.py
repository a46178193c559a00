"""Reading composed parts back, written apart from gateway.compose so the tests do not just
replay its own logic: a UDH/SAR parser, a reassembler and the on-air size of a part."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from gateway.compose import (
    BindProfile,
    ComposedMessage,
    CompositionError,
    CompositionSettings,
    compose_message,
)
from gateway.events.send_request import SendRequest
from gateway.smpp.pdu import SubmitSm
from gateway.smpp.textcoding import decode_gsm7

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
PHONE = "79991234567"
WIDE = CompositionSettings(max_parts=255)
PROFILE = BindProfile(default_source="SMSC.RU")

UDHI = 0x40
SAR_REF, SAR_TOTAL, SAR_SEQ, PAYLOAD = 0x020C, 0x020E, 0x020F, 0x0424


def request(**fields: Any) -> SendRequest:
    fields.setdefault("request_id", "req-1")
    fields.setdefault("recipients", (PHONE,))
    fields.setdefault("text", "Hello")
    if isinstance(fields.get("provider_options"), dict):
        fields["provider_options"] = MappingProxyType(fields["provider_options"])
    return SendRequest(**fields)


def compose(
    settings: CompositionSettings = WIDE,
    profile: BindProfile = PROFILE,
    reference: int = 0x1234,
    priority: bool = False,
    **fields: Any,
) -> ComposedMessage:
    return compose_message(
        request(**fields), PHONE, settings, profile, reference=reference, priority=priority, now=NOW
    )


def refused(code: str, **fields: Any) -> str:
    """Composing ``fields`` fails with ``code``; the error's message."""
    with pytest.raises(CompositionError) as caught:
        compose(**fields)
    assert caught.value.code == code
    return str(caught.value)


def sent_text(**fields: Any) -> str:
    """The text the provider reads from the composed parts."""
    composed = compose(**fields)
    return decode(reassemble(composed.parts), composed.parts[0].data_coding)


@dataclass(frozen=True)
class Piece:
    """One part as a handset would see it."""

    reference: int | None
    total: int
    sequence: int
    udh: bytes  # the whole header, length octet included; b"" without one
    body: bytes


def piece(pdu: SubmitSm) -> Piece:
    tlvs = {tlv.tag: tlv.value for tlv in pdu.tlvs}
    if PAYLOAD in tlvs:
        assert pdu.short_message == b""
        return Piece(None, 1, 1, b"", tlvs[PAYLOAD])
    if SAR_REF in tlvs:
        assert not pdu.esm_class & UDHI
        ref, total, seq = (int.from_bytes(tlvs[t], "big") for t in (SAR_REF, SAR_TOTAL, SAR_SEQ))
        return Piece(ref, total, seq, b"", pdu.short_message)
    if not pdu.esm_class & UDHI:
        return Piece(None, 1, 1, b"", pdu.short_message)
    data = pdu.short_message
    udh = data[: 1 + data[0]]
    return Piece(*_concatenation(udh[1:]), udh, data[len(udh) :])


def _concatenation(elements: bytes) -> tuple[int, int, int]:
    offset = 0
    while offset < len(elements):
        iei, length = elements[offset], elements[offset + 1]
        value = elements[offset + 2 : offset + 2 + length]
        if iei == 0x00:
            return value[0], value[1], value[2]
        if iei == 0x08:
            return value[0] << 8 | value[1], value[2], value[3]
        offset += 2 + length
    raise AssertionError("no concatenation element in the header")


def reassemble(parts: Sequence[SubmitSm]) -> bytes:
    """The message's octets (without headers), checking the parts belong together."""
    pieces = [piece(pdu) for pdu in parts]
    assert len({(p.reference, p.total) for p in pieces}) == 1
    assert sorted(p.sequence for p in pieces) == list(range(1, pieces[0].total + 1))
    assert len({pdu.data_coding for pdu in parts}) == 1
    return b"".join(p.body for p in sorted(pieces, key=lambda p: p.sequence))


def decode(body: bytes, data_coding: int) -> str:
    """Text of octets in a data_coding (message class bits ignored); strict for UTF-16."""
    alphabet = data_coding & 0x0C
    if alphabet == 0x08:
        return body.decode("utf-16-be")  # strict: a cut surrogate pair raises
    if alphabet == 0x04:
        return body.decode("latin-1")
    return decode_gsm7(body)


def air_octets(pdu: SubmitSm) -> int:
    """TP-UD octets over the air: GSM septets packed after a septet-aligned header."""
    part = piece(pdu)
    if pdu.data_coding & 0x0C:
        return len(part.udh) + len(part.body)
    header_septets = math.ceil(len(part.udh) * 8 / 7)
    return math.ceil((header_septets + len(part.body)) * 7 / 8)
