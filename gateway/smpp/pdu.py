"""SMPP 3.4 PDUs as frozen dataclasses.

Each class lists its mandatory body fields in ``FIELDS`` (name, kind, size) in wire order;
:mod:`gateway.smpp.codec` reads and writes every PDU from that one description. Address and
time fields are ``str`` holding the raw octets as Latin-1 (a lossless byte-to-character
mapping), ``short_message`` stays ``bytes``: its meaning depends on ``data_coding``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from .constants import CommandId, TlvTag


class Kind(Enum):
    """How a body field is laid out on the wire."""

    U8 = "u8"
    U32 = "u32"
    CSTR = "cstr"  # C-Octet String, size counts the terminating NUL
    SM = "sm"  # sm_length (1 octet) followed by that many octets


FieldSpec = tuple[str, Kind, int]


@dataclass(frozen=True, slots=True)
class Tlv:
    """An optional parameter, kept as raw bytes so unknown and vendor tags pass through."""

    tag: int
    value: bytes

    def as_int(self) -> int:
        """The value read as a big-endian unsigned integer."""
        return int.from_bytes(self.value, "big")

    def as_str(self) -> str:
        """The value read as a C-Octet String (trailing NUL dropped), Latin-1."""
        return self.value.rstrip(b"\x00").decode("latin-1")


def tlv_u8(tag: int, value: int) -> Tlv:
    return Tlv(tag, value.to_bytes(1, "big"))


def tlv_u16(tag: int, value: int) -> Tlv:
    return Tlv(tag, value.to_bytes(2, "big"))


def tlv_cstr(tag: int, value: str) -> Tlv:
    return Tlv(tag, value.encode("latin-1") + b"\x00")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Fields every PDU has: the header's status and sequence number, and its TLVs."""

    command_id: ClassVar[CommandId]
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()
    # Whether optional parameters may follow the mandatory body.
    ALLOWS_TLVS: ClassVar[bool] = False
    # Responses whose body is omitted when command_status is not ESME_ROK (4.1.2, 4.4.2).
    BODY_ONLY_ON_SUCCESS: ClassVar[bool] = False

    sequence_number: int = 0
    command_status: int = 0
    tlvs: tuple[Tlv, ...] = ()

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def tlv(self, tag: int) -> Tlv | None:
        """The first optional parameter with this tag, if present."""
        for item in self.tlvs:
            if item.tag == tag:
                return item
        return None


_BIND_FIELDS: tuple[FieldSpec, ...] = (
    ("system_id", Kind.CSTR, 16),
    ("password", Kind.CSTR, 9),
    ("system_type", Kind.CSTR, 13),
    ("interface_version", Kind.U8, 1),
    ("addr_ton", Kind.U8, 1),
    ("addr_npi", Kind.U8, 1),
    ("address_range", Kind.CSTR, 41),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bind(Pdu):
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = _BIND_FIELDS

    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindResp(Pdu):
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("system_id", Kind.CSTR, 16),)
    ALLOWS_TLVS: ClassVar[bool] = True
    BODY_ONLY_ON_SUCCESS: ClassVar[bool] = True

    system_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[CommandId] = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id: ClassVar[CommandId] = CommandId.GENERIC_NACK


_SM_FIELDS: tuple[FieldSpec, ...] = (
    ("service_type", Kind.CSTR, 6),
    ("source_addr_ton", Kind.U8, 1),
    ("source_addr_npi", Kind.U8, 1),
    ("source_addr", Kind.CSTR, 21),
    ("dest_addr_ton", Kind.U8, 1),
    ("dest_addr_npi", Kind.U8, 1),
    ("destination_addr", Kind.CSTR, 21),
    ("esm_class", Kind.U8, 1),
    ("protocol_id", Kind.U8, 1),
    ("priority_flag", Kind.U8, 1),
    ("schedule_delivery_time", Kind.CSTR, 17),
    ("validity_period", Kind.CSTR, 17),
    ("registered_delivery", Kind.U8, 1),
    ("replace_if_present_flag", Kind.U8, 1),
    ("data_coding", Kind.U8, 1),
    ("sm_default_msg_id", Kind.U8, 1),
    ("short_message", Kind.SM, 254),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessage(Pdu):
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = _SM_FIELDS
    ALLOWS_TLVS: ClassVar[bool] = True

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM_RESP
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("message_id", Kind.CSTR, 65),)
    BODY_ONLY_ON_SUCCESS: ClassVar[bool] = True

    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM_RESP
    # message_id is unused and set to NULL (4.6.2).
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("message_id", Kind.CSTR, 65),)
    BODY_ONLY_ON_SUCCESS: ClassVar[bool] = True

    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.QUERY_SM
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("message_id", Kind.CSTR, 65),
        ("source_addr_ton", Kind.U8, 1),
        ("source_addr_npi", Kind.U8, 1),
        ("source_addr", Kind.CSTR, 21),
    )

    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.QUERY_SM_RESP
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("message_id", Kind.CSTR, 65),
        ("final_date", Kind.CSTR, 17),
        ("message_state", Kind.U8, 1),
        ("error_code", Kind.U8, 1),
    )
    BODY_ONLY_ON_SUCCESS: ClassVar[bool] = True

    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        GenericNack,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        QuerySm,
        QuerySmResp,
    )
}

BIND_REQUESTS = (BindTransmitter, BindReceiver, BindTransceiver)

RESPONSE_FOR: dict[type[Pdu], type[Pdu]] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
    Unbind: UnbindResp,
    EnquireLink: EnquireLinkResp,
    SubmitSm: SubmitSmResp,
    DeliverSm: DeliverSmResp,
    QuerySm: QuerySmResp,
}

__all__ = [
    "BIND_REQUESTS",
    "PDU_CLASSES",
    "RESPONSE_FOR",
    "BindReceiver",
    "BindReceiverResp",
    "BindTransceiver",
    "BindTransceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "DeliverSm",
    "DeliverSmResp",
    "EnquireLink",
    "EnquireLinkResp",
    "GenericNack",
    "Kind",
    "Pdu",
    "QuerySm",
    "QuerySmResp",
    "SubmitSm",
    "SubmitSmResp",
    "Tlv",
    "TlvTag",
    "Unbind",
    "UnbindResp",
    "tlv_cstr",
    "tlv_u8",
    "tlv_u16",
]
