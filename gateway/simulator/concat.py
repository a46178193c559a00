"""Long messages: one message id and one delivery report for all parts.

By default the provider answers every part of a concatenated message with the same id in
submit_sm_resp and sends one deliver_sm for the glued message (SMPP seed, "Checking the
status"). Parts are recognised by the UDH concatenation element (IEI 0x00 with an 8-bit
reference, 0x08 with a 16-bit one; 3GPP TS 23.040 9.2.3.24.1) or the sar_* TLVs (5.3.2.22-24).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import SubmitSm

from .dlr import AcceptedMessage

_IEI_CONCAT_8BIT = 0x00
_IEI_CONCAT_16BIT = 0x08
# One SMS holds 140 octets: 160 GSM septets (one per octet in SMPP), or 140 octets of 8-bit
# or UCS2 data; a part of a long message loses 6 octets (7 septets) to the UDH.
_SINGLE_SEPTETS, _PART_SEPTETS = 160, 153
_SINGLE_OCTETS, _PART_OCTETS = 140, 134


@dataclass(frozen=True, slots=True)
class PartInfo:
    """Where one submit_sm sits in a concatenated message."""

    reference: int
    total: int
    sequence: int


def part_info(pdu: SubmitSm) -> PartInfo | None:
    """The concatenation data of a part, or ``None`` for a whole message."""
    info = _from_udh(pdu.short_message) if pdu.esm_class & EsmClass.UDHI else None
    if info is None:
        info = _from_sar(pdu)
    if info is None or info.total < 2 or not 1 <= info.sequence <= info.total:
        return None
    return info


def _from_udh(data: bytes) -> PartInfo | None:
    if not data:
        return None
    end = min(1 + data[0], len(data))
    offset = 1
    while offset + 2 <= end:
        iei, length = data[offset], data[offset + 1]
        value = data[offset + 2 : offset + 2 + length]
        if len(value) < length or offset + 2 + length > end:
            return None  # truncated UDH: treat the message as a whole one
        if iei == _IEI_CONCAT_8BIT and length == 3:
            return PartInfo(value[0], value[1], value[2])
        if iei == _IEI_CONCAT_16BIT and length == 4:
            return PartInfo(int.from_bytes(value[:2], "big"), value[2], value[3])
        offset += 2 + length
    return None


def _from_sar(pdu: SubmitSm) -> PartInfo | None:
    reference = pdu.tlv(TlvTag.SAR_MSG_REF_NUM)
    total = pdu.tlv(TlvTag.SAR_TOTAL_SEGMENTS)
    sequence = pdu.tlv(TlvTag.SAR_SEGMENT_SEQNUM)
    if reference is None or total is None or sequence is None:
        return None
    return PartInfo(reference.as_int(), total.as_int(), sequence.as_int())


def count_parts(pdu: SubmitSm) -> int:
    """How many SMS a whole message costs: more than one only for a long message_payload."""
    payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
    if payload is None:
        return 1
    size = len(payload.value)
    single, part = (
        (_SINGLE_OCTETS, _PART_OCTETS)
        if pdu.data_coding & 0x0C
        else (_SINGLE_SEPTETS, _PART_SEPTETS)
    )
    return 1 if size <= single else -(-size // part)


_Key = tuple[str, str, str, int, int]


def _key(system_id: str, pdu: SubmitSm, info: PartInfo) -> _Key:
    return (system_id, pdu.source_addr, pdu.destination_addr, info.reference, info.total)


@dataclass(slots=True)
class _Partial:
    message: AcceptedMessage
    seen: set[int] = field(default_factory=set)


class PartAssembler:
    """Groups parts by (system_id, source, destination, reference, total).

    At most ``limit`` unfinished messages are remembered; the oldest is forgotten first, as
    a part that never completes would otherwise stay forever.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._open: OrderedDict[_Key, _Partial] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def is_open(self, system_id: str, pdu: SubmitSm, info: PartInfo) -> bool:
        """Whether this part belongs to a message whose other parts already arrived."""
        return _key(system_id, pdu, info) in self._open

    def add(
        self,
        system_id: str,
        pdu: SubmitSm,
        info: PartInfo,
        accept: Callable[[int], AcceptedMessage],
    ) -> tuple[AcceptedMessage, bool]:
        """The message this part belongs to and whether this part completed it.

        ``accept(total)`` makes the message when a first part arrives. A completed message
        is forgotten: a part sent again after that starts a new message.
        """
        key = _key(system_id, pdu, info)
        partial = self._open.get(key)
        if partial is None:
            partial = self._open[key] = _Partial(accept(info.total))
            while len(self._open) > self._limit:
                self._open.popitem(last=False)
        partial.seen.add(info.sequence)
        if len(partial.seen) < info.total:
            return partial.message, False
        del self._open[key]
        return partial.message, True
