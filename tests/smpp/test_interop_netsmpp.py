"""Cross-check of our codec against Debian's Net::SMPP (package libnet-smpp-perl).

tests/smpp/interop/netsmpp.pl has Net::SMPP decode our frames and encode the same PDUs; both
directions must agree field by field, TLV by TLV (the provider's vendor TLVs 0x2000-0x2004
included), and, where SMPP leaves no choice, byte for byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.smpp.codec import decode, encode
from gateway.smpp.constants import CommandId, CommandStatus, TlvTag
from gateway.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Kind,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    tlv_cstr,
    tlv_u8,
    tlv_u16,
)
from gateway.smpp.textcoding import encode_gsm7

SCRIPT = Path(__file__).parent / "interop" / "netsmpp.pl"
RECEIPT = (
    b"id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000"
)
UCS2 = "Привет, мир! 🙂".encode("utf-16-be")


def _netsmpp_missing() -> str | None:
    perl = shutil.which("perl")
    if perl is None:
        return "perl is not installed"
    probe = subprocess.run(
        [perl, "-MNet::SMPP", "-MJSON::PP", "-e", "1"], capture_output=True, check=False
    )
    if probe.returncode:
        return "perl's Net::SMPP is not installed (Debian package libnet-smpp-perl)"
    return None


MISSING = _netsmpp_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

CASES: dict[str, Pdu] = {
    "bind_transceiver": BindTransceiver(
        sequence_number=1,
        system_id="login",
        password="secret",
        system_type="ISO,SINGLE",
        addr_ton=5,
        addr_npi=1,
        address_range="^79",
    ),
    "bind_receiver": BindReceiver(sequence_number=2, system_id="login", password="pw"),
    "bind_transceiver_resp": BindTransceiverResp(
        sequence_number=1,
        system_id="SMSC",
        tlvs=(tlv_u8(TlvTag.SC_INTERFACE_VERSION, 0x34),),
    ),
    "bind_transmitter_resp_error": BindTransmitterResp(
        sequence_number=2, command_status=CommandStatus.ESME_RINVPASWD
    ),
    "submit_sm_gsm": SubmitSm(
        sequence_number=3,
        source_addr_ton=5,
        source_addr_npi=1,
        source_addr="SMSC",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79231234567",
        validity_period="000001000000000R",
        registered_delivery=1,
        short_message=encode_gsm7("Hello €uro {x} @home"),
        tlvs=(tlv_u16(TlvTag.USER_MESSAGE_REFERENCE, 42),),
    ),
    "submit_sm_ucs2_sar": SubmitSm(
        sequence_number=4,
        destination_addr="79231234567",
        esm_class=0x40,
        data_coding=8,
        short_message=b"\x05\x00\x03\x2a\x02\x01" + UCS2,
        tlvs=(
            tlv_u16(TlvTag.SAR_MSG_REF_NUM, 0x1234),
            tlv_u8(TlvTag.SAR_TOTAL_SEGMENTS, 2),
            tlv_u8(TlvTag.SAR_SEGMENT_SEQNUM, 1),
        ),
    ),
    "submit_sm_payload": SubmitSm(
        sequence_number=5,
        destination_addr="79231234567",
        data_coding=8,
        tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, UCS2 * 20),),
    ),
    "submit_sm_resp": SubmitSmResp(sequence_number=3, message_id="854019"),
    "submit_sm_resp_error": SubmitSmResp(
        sequence_number=4, command_status=CommandStatus.ESME_RTHROTTLED
    ),
    "deliver_sm_receipt": DeliverSm(
        sequence_number=6,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="79231234567",
        dest_addr_ton=5,
        destination_addr="SMSC",
        esm_class=0x04,
        short_message=RECEIPT,
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, "854019"),
            tlv_u8(TlvTag.MESSAGE_STATE, 2),
            Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x00"),
            tlv_cstr(TlvTag.SMSC_COST, "1.45"),
            tlv_u16(TlvTag.SMSC_FLAGS, 0x0104),
            tlv_u16(TlvTag.SMSC_PARTS, 1),
            tlv_cstr(TlvTag.SMSC_MCCMNC, "25002"),
            tlv_u16(TlvTag.SMSC_EXTRA_STATUS, 2),
        ),
    ),
    "deliver_sm_resp": DeliverSmResp(sequence_number=6),
    "query_sm": QuerySm(
        sequence_number=7, message_id="854019", source_addr_ton=5, source_addr="SMSC"
    ),
    "query_sm_resp": QuerySmResp(
        sequence_number=7,
        message_id="854019",
        final_date="110820224100000+",
        message_state=2,
        error_code=0,
    ),
    "enquire_link": EnquireLink(sequence_number=8),
    "enquire_link_resp": EnquireLinkResp(sequence_number=8),
    "unbind": Unbind(sequence_number=0x7FFFFFFF),
    "unbind_resp": UnbindResp(sequence_number=0x7FFFFFFF),
    "generic_nack": GenericNack(sequence_number=9, command_status=CommandStatus.ESME_RINVCMDID),
}


def _fields(pdu: Pdu) -> dict[str, Any]:
    """Mandatory fields as the script exchanges them: integers, octet strings as hex."""
    fields: dict[str, Any] = {}
    for name, kind, _ in pdu.FIELDS:
        value = getattr(pdu, name)
        if kind is Kind.CSTR:
            fields[name] = {"hex": value.encode("latin-1").hex()}
        elif kind is Kind.SM:
            fields[name] = {"hex": value.hex()}
        else:
            fields[name] = value
    return fields


def _encode_request(pdu: Pdu) -> dict[str, Any]:
    return {
        "command": CommandId(pdu.command_id).name.lower(),
        "seq": pdu.sequence_number,
        "status": pdu.command_status,
        "fields": _fields(pdu),
        "tlvs": [[tlv.tag, tlv.value.hex()] for tlv in pdu.tlvs],
    }


def _body_omitted(pdu: Pdu) -> bool:
    return pdu.BODY_ONLY_ON_SUCCESS and pdu.command_status != 0


@pytest.fixture(scope="module")
def netsmpp() -> dict[str, list[Any]]:
    """Net::SMPP's reading of every case and its own encoding of each, in one perl run."""
    request = {
        "decode": [encode(pdu).hex() for pdu in CASES.values()],
        "encode": [_encode_request(pdu) for pdu in CASES.values()],
    }
    result = subprocess.run(
        ["perl", str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    output: dict[str, list[Any]] = json.loads(result.stdout)
    assert len(output["decoded"]) == len(output["encoded"]) == len(CASES)
    return output


@pytest.mark.parametrize(("index", "name"), list(enumerate(CASES)), ids=list(CASES))
def test_netsmpp_reads_our_bytes(netsmpp: dict[str, list[Any]], index: int, name: str) -> None:
    pdu = CASES[name]
    seen = netsmpp["decoded"][index]
    assert seen["command"] == CommandId(pdu.command_id).name.lower()
    assert (seen["command_id"], seen["command_status"], seen["sequence_number"]) == (
        pdu.command_id,
        pdu.command_status,
        pdu.sequence_number,
    )
    assert seen["tlvs"] == {str(tlv.tag): tlv.value.hex() for tlv in pdu.tlvs}
    if _body_omitted(pdu):
        # Net::SMPP reads an absent body as empty strings (and, past them, missing integers).
        assert all(value in ({"hex": ""}, None) for value in seen["fields"].values())
    else:
        assert seen["fields"] == _fields(pdu)


@pytest.mark.parametrize(("index", "name"), list(enumerate(CASES)), ids=list(CASES))
def test_netsmpp_bytes_decode_with_ours(
    netsmpp: dict[str, list[Any]], index: int, name: str
) -> None:
    pdu = CASES[name]
    frame = bytes.fromhex(netsmpp["encoded"][index])
    assert decode(frame) == pdu
    if _body_omitted(pdu):
        # Net::SMPP writes the body of an error response anyway; we leave it out (4.4.2).
        assert len(frame) > len(encode(pdu)) == 16
    else:
        assert frame == encode(pdu)


def test_cases_cover_every_command_netsmpp_and_we_share() -> None:
    ours = {CommandId(pdu.command_id) for pdu in CASES.values()}
    assert set(CommandId) - ours == {
        CommandId.BIND_TRANSMITTER,
        CommandId.BIND_RECEIVER_RESP,
    }
