"""The delivery reports the simulator sends (incoming SMS are built in :mod:`.incoming`).

A delivery report is built as the provider describes it (SMPP seed, "Checking the status"):
esm_class 0x04, the addresses of the original message swapped, the receipt text in
short_message, and the TLVs receipted_message_id, message_state, network_error_code and the
vendor tags 0x2000 (cost), 0x2001 (flags), 0x2002 (parts) and 0x2003 (mccmnc).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gateway.settings.simulator import STAT_STATES, DlrOutcome
from gateway.smpp.constants import DataCoding, EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, SubmitSm, Tlv, tlv_cstr, tlv_u8, tlv_u16
from gateway.smpp.receipt import format_receipt

# network_error_code (5.3.2.31): network type 3 is GSM, then the 2-octet error code; the
# provider puts its ``err`` code there.
NETWORK_TYPE_GSM = 3
# Message type in bits 0-3 of the 0x2001 flags TLV: 0 is a plain SMS, 4 an HLR request.
MESSAGE_TYPE_SMS = 0
MESSAGE_TYPE_HLR = 4


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    """What the simulator keeps about an accepted message to report on it later."""

    message_id: str
    source_addr_ton: int
    source_addr_npi: int
    source_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str
    submitted: datetime
    parts: int = 1

    @classmethod
    def from_submit(
        cls, pdu: SubmitSm, message_id: str, submitted: datetime, parts: int = 1
    ) -> AcceptedMessage:
        return cls(
            message_id=message_id,
            source_addr_ton=pdu.source_addr_ton,
            source_addr_npi=pdu.source_addr_npi,
            source_addr=pdu.source_addr,
            dest_addr_ton=pdu.dest_addr_ton,
            dest_addr_npi=pdu.dest_addr_npi,
            destination_addr=pdu.destination_addr,
            submitted=submitted,
            parts=parts,
        )


def format_cost(cost: Decimal) -> str:
    """The cost as the 0x2000 TLV carries it: ``n.nnnn``.

    The seed writes the format as " n.nnnn" but limits the field to 6 characters; the
    leading space reads as an artefact of the page, so the simulator sends e.g. "1.9500".
    """
    return f"{cost:.4f}"


def build_delivery_report(
    message: AcceptedMessage,
    outcome: DlrOutcome,
    done: datetime,
    *,
    cost: Decimal,
    mccmnc: str,
    flags: int = MESSAGE_TYPE_SMS,
) -> DeliverSm:
    """The deliver_sm reporting ``outcome`` for ``message``, as the provider sends it."""
    delivered = message.parts if outcome.stat == "DELIVRD" else 0
    text = format_receipt(
        message.message_id,
        outcome.stat,
        outcome.err,
        submitted=message.submitted,
        done=done,
        sub=message.parts,
        dlvrd=delivered,
    )
    return report_pdu(message, outcome, text, cost=cost, mccmnc=mccmnc, flags=flags)


def report_pdu(
    message: AcceptedMessage,
    outcome: DlrOutcome,
    text: str,
    *,
    cost: Decimal,
    mccmnc: str,
    flags: int,
) -> DeliverSm:
    """A report deliver_sm with ``text`` (a receipt or an HLR result) and the TLVs."""
    network_error = bytes([NETWORK_TYPE_GSM]) + outcome.err.to_bytes(2, "big")
    return DeliverSm(
        source_addr_ton=message.dest_addr_ton,
        source_addr_npi=message.dest_addr_npi,
        source_addr=message.destination_addr,
        dest_addr_ton=message.source_addr_ton,
        dest_addr_npi=message.source_addr_npi,
        destination_addr=message.source_addr,
        esm_class=EsmClass.DELIVERY_RECEIPT,
        data_coding=DataCoding.GSM7,
        short_message=text.encode("ascii"),
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, message.message_id),
            tlv_u8(TlvTag.MESSAGE_STATE, STAT_STATES[outcome.stat]),
            Tlv(TlvTag.NETWORK_ERROR_CODE, network_error),
            tlv_cstr(TlvTag.SMSC_COST, format_cost(cost)),
            tlv_u16(TlvTag.SMSC_FLAGS, flags),
            tlv_u16(TlvTag.SMSC_PARTS, message.parts),
            tlv_cstr(TlvTag.SMSC_MCCMNC, mccmnc),
        ),
    )
