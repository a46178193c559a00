"""Where a DELIVER_SM sits in a concatenated SMS, and its text without the user data header.

A long SMS arrives as several DELIVER_SMs, each carrying its place in one of three ways:

- a user data header (esm_class UDHI, 0x40) with the concatenation element of an 8-bit
  reference (IEI 0x00, 3 octets: reference, total, sequence) or of a 16-bit one (IEI 0x08,
  4 octets), 3GPP TS 23.040 9.2.3.24.1 and 9.2.3.24.8;
- the TLVs sar_msg_ref_num, sar_total_segments and sar_segment_seqnum (SMPP 3.4 5.3.2.22-24).

The three are separate reference spaces: reference 7 under an 8-bit header and reference 7 in
sar_msg_ref_num are different messages. A header is stripped from the text whatever it holds;
one without a concatenation element (a port address, say) leaves a single message.

Everything here is pure and total: a malformed header raises :class:`ConcatError`, which the
caller turns into a dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.compose.split import IEI_CONCAT_8BIT, IEI_CONCAT_16BIT
from gateway.errors import GatewayError
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, Tlv


class Scheme(StrEnum):
    """How a part names its message: each is its own reference space."""

    UDH8 = "udh8"
    UDH16 = "udh16"
    SAR = "sar"


class ConcatError(GatewayError):
    """A header or sar_* TLV set that cannot be read; the PDU is refused."""


@dataclass(frozen=True, slots=True)
class Concat:
    """The place of one part: ``sequence`` of ``total`` under ``reference``."""

    scheme: Scheme
    reference: int
    total: int
    sequence: int


@dataclass(frozen=True, slots=True)
class UserData:
    """A DELIVER_SM's user data split into its header and the text octets."""

    header: bytes
    body: bytes
    # None for a single message (no concatenation data, or a "long" message of one part).
    concat: Concat | None

    @property
    def whole(self) -> bytes:
        """The octets as received: header, then body."""
        return self.header + self.body


# Element lengths fixed by 23.040 9.2.3.24.1 and 9.2.3.24.8.
_CONCAT_LENGTHS = {IEI_CONCAT_8BIT: 3, IEI_CONCAT_16BIT: 4}


def user_data(pdu: DeliverSm) -> UserData:
    """The header, body and concatenation data of ``pdu``; raises :class:`ConcatError`.

    The user data is short_message, or message_payload when short_message is empty
    (SMPP 3.4 5.3.2.32 allows one or the other).
    """
    data = pdu.short_message
    if not data:
        payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
        data = payload.value if payload is not None else b""
    header, body, from_header = b"", data, None
    if pdu.esm_class & EsmClass.UDHI:
        header, body, from_header = _split_header(data)
    concat = from_header or _from_sar(pdu)
    if concat is not None:
        _check(concat)
        if concat.total == 1:
            concat = None
    return UserData(header, body, concat)


def _split_header(data: bytes) -> tuple[bytes, bytes, Concat | None]:
    if not data:
        raise ConcatError("UDHI is set but the user data is empty")
    end = 1 + data[0]
    if end > len(data):
        raise ConcatError(f"user data header of {data[0]} octets runs past the {len(data)}")
    found: Concat | None = None
    offset = 1
    while offset < end:
        if offset + 2 > end:
            raise ConcatError("user data header ends inside an element's tag and length")
        iei, length = data[offset], data[offset + 1]
        value = data[offset + 2 : offset + 2 + length]
        if offset + 2 + length > end:
            raise ConcatError(f"element 0x{iei:02x} of {length} octets runs past the header")
        if iei in _CONCAT_LENGTHS:
            # A repeated element counts by its last occurrence (23.040 9.2.3.24).
            found = _from_element(iei, value)
        offset += 2 + length
    return data[:end], data[end:], found


def _from_element(iei: int, value: bytes) -> Concat:
    if len(value) != _CONCAT_LENGTHS[iei]:
        raise ConcatError(f"concatenation element 0x{iei:02x} has {len(value)} octets")
    if iei == IEI_CONCAT_8BIT:
        return Concat(Scheme.UDH8, value[0], value[1], value[2])
    return Concat(Scheme.UDH16, int.from_bytes(value[:2], "big"), value[2], value[3])


def _from_sar(pdu: DeliverSm) -> Concat | None:
    found = {
        tag: pdu.tlv(tag)
        for tag in (TlvTag.SAR_MSG_REF_NUM, TlvTag.SAR_TOTAL_SEGMENTS, TlvTag.SAR_SEGMENT_SEQNUM)
    }
    present = {tag: tlv for tag, tlv in found.items() if tlv is not None}
    if not present:
        return None
    if len(present) < len(found):
        missing = sorted(tag.name.lower() for tag in found if tag not in present)
        raise ConcatError(f"sar TLVs incomplete: {', '.join(missing)} missing")
    return Concat(
        Scheme.SAR,
        _sized(present[TlvTag.SAR_MSG_REF_NUM], 2),
        _sized(present[TlvTag.SAR_TOTAL_SEGMENTS], 1),
        _sized(present[TlvTag.SAR_SEGMENT_SEQNUM], 1),
    )


def _sized(tlv: Tlv, size: int) -> int:
    # Integer sizes fixed by SMPP 3.4 5.3.2.22-24.
    if len(tlv.value) != size:
        raise ConcatError(f"TLV 0x{tlv.tag:04x} has {len(tlv.value)} octets, not {size}")
    return tlv.as_int()


def _check(concat: Concat) -> None:
    if concat.total == 0:
        raise ConcatError(f"{concat.scheme} part claims a total of 0 parts")
    if not 1 <= concat.sequence <= concat.total:
        raise ConcatError(
            f"{concat.scheme} part number {concat.sequence} is outside 1..{concat.total}"
        )
