"""What a DELIVER_SM means, read as the provider's SMPP seed ("Checking the status") writes it.

Receipt text, the standard TLVs 0x001E/0x0427/0x0423 and the vendor TLVs 0x2000-0x2004 all
land in the DeliveryReport; incoming SMS are decoded from GSM or UCS2; anything else gives
Unreadable, never an exception.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.events.delivery import DeliveryReport, IncomingMessage, dlr_event, incoming_event
from gateway.inbound.deliver_sm import Unreadable, interpret
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, Tlv, tlv_cstr, tlv_u8, tlv_u16
from gateway.smpp.textcoding import encode_gsm7
from tests.eventcheck import validate_event

RECEIVED = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
# The seed's own example of the status text.
SEED_RECEIPT = (
    "id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000"
)
SEED_HLR = (
    "id:855469 stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 mcc:250 mnc:02 "
    "cn:Russian+Federation net:MegaFON+open+Joint+Stock+Company rcn: rnet:"
)

# 0x2001: message type 1 (flash) in bits 0-3, bit 5 second balance, bit 8 template,
# bits 10,9 = 10 (authorization).
FLAGS = 0x0001 | 1 << 5 | 1 << 8 | 0b10 << 9


def receipt_pdu(text: str = SEED_RECEIPT, *tlvs: Tlv, **fields: Any) -> DeliverSm:
    fields.setdefault("source_addr", "+79991234567")
    fields.setdefault("destination_addr", "SMSC.RU")
    return DeliverSm(
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=text.encode("latin-1"),
        tlvs=tlvs,
        **fields,
    )


ALL_TLVS = (
    tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, "000854019"),
    tlv_u8(TlvTag.MESSAGE_STATE, 2),
    Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x00"),
    tlv_cstr(TlvTag.SMSC_COST, " 1.9500"),
    tlv_u16(TlvTag.SMSC_FLAGS, FLAGS),
    tlv_u16(TlvTag.SMSC_PARTS, 2),
    tlv_cstr(TlvTag.SMSC_MCCMNC, "25001"),
    tlv_u16(TlvTag.SMSC_EXTRA_STATUS, 2),
)


def report_of(pdu: DeliverSm) -> DeliveryReport:
    meaning = interpret(pdu, RECEIVED)
    assert isinstance(meaning, DeliveryReport), meaning
    validate_event(dlr_event(meaning))
    return meaning


def test_seed_receipt_with_every_tlv() -> None:
    report = report_of(receipt_pdu(SEED_RECEIPT, *ALL_TLVS))
    assert report.source == "smpp"
    assert report.message_id == "854019"  # from receipted_message_id, leading zeros dropped
    assert report.phone == "79991234567"
    assert report.status == "delivered"
    assert report.final is True
    assert report.stat == "DELIVRD"
    assert report.err == 0
    assert report.err_name == "No error"
    assert report.sub == 1
    assert report.dlvrd == 1
    assert report.submit_date == "1108202241"
    assert report.done_date == "1108202241"
    assert report.done_at == datetime(2011, 8, 20, 22, 41, tzinfo=UTC)
    assert report.received_at == RECEIVED
    assert report.message_state == 2
    assert report.network_error_code == "030000"
    assert report.cost == "1.9500"
    assert report.parts == 2
    assert report.mccmnc == "25001"
    assert report.flags == {
        "message_type": "flash",
        "second_balance": True,
        "template": True,
        "template_type": "authorization",
    }
    assert report.extra_status == "read"
    assert report.hlr is None
    assert report.raw["text"] == SEED_RECEIPT
    assert report.raw["tlvs"]["0x2001"] == f"{FLAGS:04x}"
    assert report.raw["tlvs"]["0x001e"] == b"000854019\x00".hex()


def test_dlr_event_of_the_seed_receipt() -> None:
    event = dlr_event(report_of(receipt_pdu(SEED_RECEIPT, *ALL_TLVS)))
    validate_event(event)
    assert event["occurred_at"] == "2011-08-20T22:41:00.000Z"
    assert event["received_at"] == "2030-01-01T12:00:30.000Z"
    assert event["message_id"] == "854019"
    assert event["cost"] == "1.9500"
    assert event["flags"]["template_type"] == "authorization"


def test_receipt_without_tlvs_takes_the_id_from_the_text() -> None:
    report = report_of(receipt_pdu("id:0854019 stat:DELIVRD err:000"))
    assert report.message_id == "854019"
    assert report.cost is None
    assert report.flags is None
    assert report.parts is None
    assert report.mccmnc is None
    assert report.extra_status is None
    assert report.message_state is None
    assert report.network_error_code is None
    assert report.done_at is None


def test_hex_receipted_message_id_is_normalized() -> None:
    pdu = receipt_pdu(SEED_RECEIPT, tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, "0xD0813"))
    assert report_of(pdu).message_id == str(0xD0813)


@pytest.mark.parametrize(
    ("stat", "err", "status", "final", "name"),
    [
        ("DELIVRD", 0, "delivered", True, "No error"),
        ("UNDELIV", 1, "undeliverable", True, "The subscriber does not exist"),
        ("UNDELIV", 6, "undeliverable", True, "Subscriber is offline"),
        ("EXPIRED", 245, "expired", True, "Status is not received"),
        ("REJECTD", 249, "rejected", True, "Invalid number format"),
        ("REJECTD", 254, "rejected", True, "Unregistered sender id"),
        ("UNDELIV", 255, "undeliverable", True, "Rejected by operator"),
        ("DELETED", 224, "deleted", True, "Insufficient funds"),
        ("ENROUTE", 0, "enroute", False, "No error"),
        ("ACCEPTD", 0, "accepted", False, "No error"),
        ("UNKNOWN", 0, "unknown", False, "No error"),
        ("UNDELIV", 99, "undeliverable", True, None),  # not in the seed's table
        ("WEIRD", 0, "unknown", False, "No error"),
    ],
)
def test_status_and_error_name_from_the_seed_table(
    stat: str, err: int, status: str, final: bool, name: str | None
) -> None:
    dates = "submit date:1108202241 done date:1108202241"
    text = f"id:1 sub:001 dlvrd:000 {dates} stat:{stat} err:{err:03d}"
    report = report_of(receipt_pdu(text))
    assert (report.stat, report.status, report.final) == (stat, status, final)
    assert (report.err, report.err_name) == (err, name)


@pytest.mark.parametrize(
    ("flags", "decoded"),
    [
        (0, {"message_type": "sms", "second_balance": False, "template": False}),
        (4, {"message_type": "hlr", "second_balance": False, "template": False}),
        (5 | 1 << 5, {"message_type": "ping", "second_balance": True, "template": False}),
        (10, {"message_type": "viber", "second_balance": False, "template": False}),
        (12, {"message_type": "social", "second_balance": False, "template": False}),
        (9, {"message_type": "type_9", "second_balance": False, "template": False}),
        # Template type bits only count when bit 8 says it is a template.
        (0b11 << 9, {"message_type": "sms", "second_balance": False, "template": False}),
    ],
)
def test_flags_without_template(flags: int, decoded: dict[str, Any]) -> None:
    report = report_of(receipt_pdu(SEED_RECEIPT, tlv_u16(TlvTag.SMSC_FLAGS, flags)))
    assert report.flags == decoded | {"template_type": None}


@pytest.mark.parametrize(
    ("bits", "template_type"),
    [(0b00, "service"), (0b01, "transactional"), (0b10, "authorization"), (0b11, "advertising")],
)
def test_template_types(bits: int, template_type: str) -> None:
    flags = 1 << 8 | bits << 9
    report = report_of(receipt_pdu(SEED_RECEIPT, tlv_u16(TlvTag.SMSC_FLAGS, flags)))
    assert report.flags is not None
    assert report.flags["template"] is True
    assert report.flags["template_type"] == template_type


@pytest.mark.parametrize(("value", "extra"), [(2, "read"), (4, "link_clicked"), (7, "7")])
def test_extra_status(value: int, extra: str) -> None:
    pdu = receipt_pdu(SEED_RECEIPT, tlv_u16(TlvTag.SMSC_EXTRA_STATUS, value))
    assert report_of(pdu).extra_status == extra


def test_extra_status_changes_the_event_id() -> None:
    plain = dlr_event(report_of(receipt_pdu(SEED_RECEIPT)))
    read = dlr_event(report_of(receipt_pdu(SEED_RECEIPT, tlv_u16(TlvTag.SMSC_EXTRA_STATUS, 2))))
    clicked = dlr_event(report_of(receipt_pdu(SEED_RECEIPT, tlv_u16(TlvTag.SMSC_EXTRA_STATUS, 4))))
    assert len({plain["event_id"], read["event_id"], clicked["event_id"]}) == 3


def test_repeated_receipt_has_the_same_event_id() -> None:
    first = dlr_event(report_of(receipt_pdu(SEED_RECEIPT, *ALL_TLVS, sequence_number=1)))
    again = interpret(receipt_pdu(SEED_RECEIPT, *ALL_TLVS, sequence_number=9), datetime.now(UTC))
    assert isinstance(again, DeliveryReport)
    assert first["event_id"] == dlr_event(again)["event_id"]


def test_receipt_in_message_payload() -> None:
    pdu = DeliverSm(
        esm_class=EsmClass.DELIVERY_RECEIPT,
        source_addr="79991234567",
        tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, SEED_RECEIPT.encode()),),
    )
    assert report_of(pdu).message_id == "854019"


def test_intermediate_notification_is_a_report() -> None:
    pdu = DeliverSm(
        esm_class=EsmClass.INTERMEDIATE_NOTIFICATION,
        source_addr="79991234567",
        short_message=b"id:5 stat:ENROUTE err:000",
    )
    report = report_of(pdu)
    assert (report.status, report.final) == ("enroute", False)


def test_hlr_result() -> None:
    report = report_of(receipt_pdu(SEED_HLR))
    assert report.message_id == "855469"
    assert report.status == "delivered"
    assert report.err == 0
    assert report.hlr == {
        "imsi": "250023012345678",
        "msc": "79232510066",
        "mcc": "250",
        "mnc": "02",
        "cn": "Russian Federation",
        "net": "MegaFON open Joint Stock Company",
        "rcn": "",
        "rnet": "",
    }
    assert dlr_event(report)["hlr"]["cn"] == "Russian Federation"


@pytest.mark.parametrize(
    "text", ["", "hello", "sub:001 stat:DELIVRD err:000", "id:1 sub:001 err:000", "id: stat:X"]
)
def test_unreadable_receipt(text: str) -> None:
    meaning = interpret(receipt_pdu(text), RECEIVED)
    assert isinstance(meaning, Unreadable)
    assert meaning.code == "invalid_receipt"
    assert meaning.message


# -- incoming SMS ----------------------------------------------------------------------------


def incoming_of(pdu: DeliverSm) -> IncomingMessage:
    meaning = interpret(pdu, RECEIVED)
    assert isinstance(meaning, IncomingMessage), meaning
    validate_event(incoming_event(meaning))
    return meaning


def test_incoming_gsm_sms() -> None:
    pdu = DeliverSm(
        source_addr="+79991234567",
        destination_addr="79000000001",
        data_coding=0,
        short_message=encode_gsm7("Hi {there} €5 @home"),
    )
    message = incoming_of(pdu)
    assert message.text == "Hi {there} €5 @home"
    assert message.phone == "79991234567"
    assert message.to == "79000000001"
    assert message.data_coding == 0
    assert message.source == "smpp"
    assert message.received_at == RECEIVED
    event = incoming_event(message)
    assert event["text"] == "Hi {there} €5 @home"
    assert event["occurred_at"] == "2030-01-01T12:00:30.000Z"


def test_incoming_ucs2_sms() -> None:
    pdu = DeliverSm(
        source_addr="79991234567",
        destination_addr="4567",
        data_coding=8,
        short_message="Привет 👋".encode("utf-16-be"),
    )
    message = incoming_of(pdu)
    assert message.text == "Привет 👋"
    assert message.data_coding == 8
    assert incoming_event(message)["raw"]["short_message_hex"] == pdu.short_message.hex()


def test_incoming_text_in_message_payload() -> None:
    pdu = DeliverSm(
        source_addr="79991234567",
        destination_addr="4567",
        data_coding=8,
        tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, "длинный текст".encode("utf-16-be")),),
    )
    assert incoming_of(pdu).text == "длинный текст"


def test_incoming_repeat_has_the_same_event_id() -> None:
    pdu = DeliverSm(source_addr="79991234567", destination_addr="4567", short_message=b"Hi")
    first = incoming_event(incoming_of(pdu))
    again = interpret(
        DeliverSm(
            source_addr="79991234567",
            destination_addr="4567",
            short_message=b"Hi",
            sequence_number=42,
        ),
        datetime.now(UTC),
    )
    assert isinstance(again, IncomingMessage)
    assert incoming_event(again)["event_id"] == first["event_id"]
    other = incoming_of(
        DeliverSm(source_addr="79991234567", destination_addr="4567", short_message=b"Hi!")
    )
    assert incoming_event(other)["event_id"] != first["event_id"]


def test_incoming_without_source_is_unreadable() -> None:
    meaning = interpret(DeliverSm(destination_addr="4567", short_message=b"Hi"), RECEIVED)
    assert isinstance(meaning, Unreadable)
    assert meaning.code == "invalid_incoming"


# -- totality ----------------------------------------------------------------------------------

_TLV_TAGS = st.sampled_from(
    [
        TlvTag.RECEIPTED_MESSAGE_ID,
        TlvTag.MESSAGE_STATE,
        TlvTag.NETWORK_ERROR_CODE,
        TlvTag.MESSAGE_PAYLOAD,
        TlvTag.SMSC_COST,
        TlvTag.SMSC_FLAGS,
        TlvTag.SMSC_PARTS,
        TlvTag.SMSC_MCCMNC,
        TlvTag.SMSC_EXTRA_STATUS,
        0x1234,
    ]
)
_RECEIPT_WORDS = st.lists(
    st.sampled_from(
        ["id:", "stat:", "err:", "sub:", "dlvrd:", "submit date:", "done date:", "imsi:", "cn:"]
    )
    | st.text(max_size=12),
    max_size=10,
).map(" ".join)


@given(
    esm_class=st.sampled_from([0, 0x04, 0x20, 0x40, 0x44]) | st.integers(0, 255),
    data_coding=st.integers(0, 255),
    source=st.text(st.characters(max_codepoint=255), max_size=21),
    body=st.binary(max_size=160) | _RECEIPT_WORDS.map(lambda t: t.encode("utf-8")),
    tlvs=st.lists(st.builds(Tlv, _TLV_TAGS, st.binary(max_size=8)), max_size=5),
)
def test_interpret_never_raises(
    esm_class: int, data_coding: int, source: str, body: bytes, tlvs: list[Tlv]
) -> None:
    pdu = DeliverSm(
        esm_class=esm_class,
        data_coding=data_coding,
        source_addr=source,
        destination_addr="4567",
        short_message=body,
        tlvs=tuple(tlvs),
    )
    meaning = interpret(pdu, RECEIVED)
    if isinstance(meaning, DeliveryReport):
        validate_event(dlr_event(meaning))
    elif isinstance(meaning, IncomingMessage):
        validate_event(incoming_event(meaning))
    else:
        assert isinstance(meaning, Unreadable)
