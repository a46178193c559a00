"""DELIVER_SM from the provider: a delivery report, an HLR result or an incoming SMS.

The SMPP seed ("Checking the status", "Receiving incoming messages") defines the fields: the
receipt text, the standard TLVs receipted_message_id, message_state and network_error_code,
and the vendor TLVs 0x2000 (cost), 0x2001 (flags), 0x2002 (parts), 0x2003 (mccmnc) and
0x2004 (additional status). Parts of concatenated incoming SMS are told apart by
:mod:`gateway.inbound.concat`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime

from gateway.events.delivery import DeliveryReport, IncomingMessage
from gateway.provider.codes import (
    EXTRA_STATUSES,
    STAT_TO_STATUS,
    decode_flags,
    delivery_error_name,
)
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, Tlv
from gateway.smpp.receipt import (
    ReceiptFormatError,
    normalize_message_id,
    parse_receipt,
    parse_receipt_time,
)
from gateway.smpp.textcoding import decode_text

from .concat import ConcatError, user_data
from .parts import IncomingPart

# Receipt times have minute resolution, so a stream of reports repeats the same few strings;
# strptime costs more than the rest of a report's parsing together.
_receipt_time = functools.lru_cache(maxsize=4096)(parse_receipt_time)
# A plain int: IntFlag arithmetic builds enum members on every call, on the per-PDU path.
_REPORT_BITS = int(EsmClass.DELIVERY_RECEIPT | EsmClass.INTERMEDIATE_NOTIFICATION)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A DELIVER_SM that is neither a valid report nor a readable message."""

    code: str
    message: str


def interpret(
    pdu: DeliverSm, received_at: datetime
) -> DeliveryReport | IncomingMessage | IncomingPart | Unreadable:
    """What a DELIVER_SM means; total: bad input gives :class:`Unreadable`, never raises.

    An incoming SMS that is one part of a concatenated one is an :class:`IncomingPart`, left
    for reassembly; its user data header is stripped from the text either way.
    """
    if pdu.esm_class & _REPORT_BITS:
        return _report(pdu, received_at)
    return _incoming(pdu, received_at)


def _report(pdu: DeliverSm, received_at: datetime) -> DeliveryReport | Unreadable:
    text = pdu.short_message.decode("latin-1")
    payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
    if not text and payload is not None:
        text = payload.value.decode("latin-1")
    try:
        receipt = parse_receipt(text)
    except ReceiptFormatError as exc:
        return Unreadable("invalid_receipt", str(exc))
    receipted = pdu.tlv(TlvTag.RECEIPTED_MESSAGE_ID)
    message_id = normalize_message_id(receipted.as_str() if receipted else receipt.message_id)
    if not message_id:
        return Unreadable("invalid_receipt", "receipt without a message id")
    status, final = STAT_TO_STATUS.get(receipt.stat, ("unknown", False))
    vendor = _vendor_fields(pdu)
    return DeliveryReport(
        source="smpp",
        message_id=message_id,
        phone=pdu.source_addr.lstrip("+"),
        status=status,
        final=final,
        stat=receipt.stat,
        received_at=received_at,
        err=receipt.err,
        err_name=delivery_error_name(receipt.err),
        done_at=_receipt_time(receipt.done_date) if receipt.done_date else None,
        submit_date=receipt.submit_date,
        done_date=receipt.done_date,
        sub=receipt.sub,
        dlvrd=receipt.dlvrd,
        hlr=receipt.hlr,
        raw={"text": text, "tlvs": {f"0x{t.tag:04x}": t.value.hex() for t in pdu.tlvs}},
        message_state=vendor.message_state,
        network_error_code=vendor.network_error_code,
        cost=vendor.cost,
        flags=vendor.flags,
        parts=vendor.parts,
        mccmnc=vendor.mccmnc,
        extra_status=vendor.extra_status,
    )


@dataclass(frozen=True, slots=True)
class _Vendor:
    message_state: int | None = None
    network_error_code: str | None = None
    cost: str | None = None
    flags: dict[str, object] | None = None
    parts: int | None = None
    mccmnc: str | None = None
    extra_status: str | None = None


def _vendor_fields(pdu: DeliverSm) -> _Vendor:
    # One pass over the TLVs instead of one scan per tag; the first of a repeated tag wins,
    # as with DeliverSm.tlv.
    by_tag: dict[int, Tlv] = {}
    for item in pdu.tlvs:
        by_tag.setdefault(item.tag, item)
    get = by_tag.get

    state, network, cost, flags, parts, mccmnc, extra = (
        get(TlvTag.MESSAGE_STATE),
        get(TlvTag.NETWORK_ERROR_CODE),
        get(TlvTag.SMSC_COST),
        get(TlvTag.SMSC_FLAGS),
        get(TlvTag.SMSC_PARTS),
        get(TlvTag.SMSC_MCCMNC),
        get(TlvTag.SMSC_EXTRA_STATUS),
    )
    return _Vendor(
        message_state=state.as_int() if state else None,
        network_error_code=network.value.hex() if network else None,
        cost=cost.as_str().strip() if cost else None,
        flags=decode_flags(flags.as_int()) if flags else None,
        parts=parts.as_int() if parts else None,
        mccmnc=mccmnc.as_str() if mccmnc else None,
        extra_status=EXTRA_STATUSES.get(extra.as_int(), str(extra.as_int())) if extra else None,
    )


def _incoming(pdu: DeliverSm, received_at: datetime) -> IncomingMessage | IncomingPart | Unreadable:
    if not pdu.source_addr:
        return Unreadable("invalid_incoming", "incoming message without a source address")
    try:
        data = user_data(pdu)
    except ConcatError as exc:
        return Unreadable("invalid_concatenation", str(exc))
    if data.concat is not None:
        return IncomingPart(
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            concat=data.concat,
            data_coding=pdu.data_coding,
            esm_class=pdu.esm_class,
            header=data.header,
            body=data.body,
            received_at=received_at,
        )
    whole = data.whole
    return IncomingMessage(
        source="smpp",
        phone=pdu.source_addr.lstrip("+"),
        to=pdu.destination_addr.lstrip("+"),
        text=decode_text(data.body, pdu.data_coding),
        received_at=received_at,
        data_coding=pdu.data_coding,
        identity=(pdu.source_addr, pdu.destination_addr, pdu.esm_class, _sha256(whole)),
        raw={"short_message_hex": whole.hex(), "esm_class": pdu.esm_class},
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
