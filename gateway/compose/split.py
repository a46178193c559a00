"""Long messages as several SMPP short messages, or one with ``message_payload``.

One SMS carries 140 octets of user data: 160 GSM septets, 140 octets of 8-bit data, 70 UCS2
characters. A part of a long message gives up room to the concatenation header (3GPP TS
23.040 9.2.3.24.1): 6 octets with an 8-bit reference (IEI 0x00), 7 with a 16-bit one (IEI
0x08). In septets that is 7 or 8 (the header is padded to a septet boundary), leaving 153 or
152 GSM characters, 134 or 133 octets, 67 or 66 UCS2 characters.

SMPP carries GSM septets one per octet (unpacked), so a GSM part's short_message is up to
6 + 153 octets; packed on the air it is the 140 octets above.

Modes (``CompositionSettings.split``):

- ``udh``: each part's short_message starts with the header, esm_class has UDHI (0x40).
- ``sar``: no header; sar_msg_ref_num, sar_total_segments, sar_segment_seqnum TLVs (SMPP
  3.4 5.3.2.22-24) and the SMSC adds the header, so parts keep the 8-bit-header sizes.
- ``payload``: one submit_sm, empty short_message, the whole message in message_payload
  (5.3.2.32); the SMSC splits it, into as many SMS as counted here.

Parts are filled greedily with whole units (see :mod:`gateway.compose.encoding`), so no
part ends between a GSM escape and its character or inside a UTF-16 surrogate pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from gateway.settings.composition import CompositionSettings
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import Tlv, tlv_u8, tlv_u16

from .encoding import Encoded, Encoding
from .errors import CompositionError

# (one SMS, a part under an 8-bit-reference header, a part under a 16-bit one), in units of
# the short_message: septets for GSM (one per octet), octets otherwise.
CAPACITY = MappingProxyType(
    {
        Encoding.GSM7: (160, 153, 152),
        Encoding.LATIN1: (140, 134, 133),
        Encoding.UCS2: (140, 134, 133),
        Encoding.BINARY: (140, 134, 133),
    }
)
IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08


@dataclass(frozen=True, slots=True)
class PartBody:
    """What differs between the submit_sm of the parts of one message."""

    short_message: bytes
    esm_class: int = EsmClass.DEFAULT
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """A message cut into chunks, before any reference is chosen."""

    chunks: tuple[bytes, ...]
    # More than one SMS: the chunks need a header, sar_* TLVs, or message_payload.
    long: bool


@dataclass(frozen=True, slots=True)
class Split:
    """A message's parts; ``segments`` is the number of SMS the subscriber receives."""

    parts: tuple[PartBody, ...]
    segments: int
    # The concatenation reference used, masked to its field; None when there is none.
    reference: int | None


def plan(encoded: Encoded, settings: CompositionSettings) -> Plan:
    """The message's chunks under ``settings``; ``too_many_parts`` past ``max_parts``."""
    single, part8, part16 = CAPACITY[encoded.encoding]
    if len(encoded.octets) <= single:
        return Plan((encoded.octets,), long=False)
    wide = settings.split == "udh" and settings.reference_bits == 16
    chunks = pack(encoded.units(), part16 if wide else part8)
    if len(chunks) > settings.max_parts:
        raise CompositionError(
            "too_many_parts",
            f"the message needs {len(chunks)} SMS parts, more than the {settings.max_parts} "
            "allowed (GATEWAY_COMPOSE_MAX_PARTS)",
        )
    return Plan(tuple(chunks), long=True)


def frame(planned: Plan, settings: CompositionSettings, reference: int) -> Split:
    """The parts of a planned message, concatenated under ``reference`` if it is long."""
    chunks = planned.chunks
    if not planned.long:
        return Split((PartBody(chunks[0]),), 1, None)
    if settings.split == "payload":
        payload = Tlv(TlvTag.MESSAGE_PAYLOAD, b"".join(chunks))
        return Split((PartBody(b"", tlvs=(payload,)),), len(chunks), None)
    if settings.split == "sar":
        return _sar(chunks, reference & 0xFFFF)
    wide = settings.reference_bits == 16
    return _udh(chunks, reference & (0xFFFF if wide else 0xFF), wide=wide)


def pack(units: Sequence[bytes], capacity: int) -> list[bytes]:
    """Consecutive units joined into chunks of at most ``capacity`` octets, greedily."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for unit in units:
        if size + len(unit) > capacity and current:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    if current:
        chunks.append(b"".join(current))
    return chunks


def concatenation_header(reference: int, total: int, sequence: int, *, wide: bool) -> bytes:
    """The user data header of one part: UDHL, then the concatenation element."""
    if wide:
        return bytes((6, IEI_CONCAT_16BIT, 4, reference >> 8, reference & 0xFF, total, sequence))
    return bytes((5, IEI_CONCAT_8BIT, 3, reference, total, sequence))


def _udh(chunks: tuple[bytes, ...], reference: int, *, wide: bool) -> Split:
    total = len(chunks)
    parts = tuple(
        PartBody(
            concatenation_header(reference, total, sequence, wide=wide) + chunk,
            esm_class=EsmClass.UDHI,
        )
        for sequence, chunk in enumerate(chunks, start=1)
    )
    return Split(parts, total, reference)


def _sar(chunks: tuple[bytes, ...], reference: int) -> Split:
    total = len(chunks)
    parts = tuple(
        PartBody(
            chunk,
            tlvs=(
                tlv_u16(TlvTag.SAR_MSG_REF_NUM, reference),
                tlv_u8(TlvTag.SAR_TOTAL_SEGMENTS, total),
                tlv_u8(TlvTag.SAR_SEGMENT_SEQNUM, sequence),
            ),
        )
        for sequence, chunk in enumerate(chunks, start=1)
    )
    return Split(parts, total, reference)
