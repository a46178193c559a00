"""Wire constants of SMPP 3.4 (section numbers refer to the SMPP v3.4 specification)."""

from __future__ import annotations

from enum import IntEnum, IntFlag

HEADER_SIZE = 16
GENERIC_NACK = 0x80000000
RESPONSE_BIT = 0x80000000
# Sequence numbers run 0x00000001..0x7FFFFFFF (5.1.4).
MAX_SEQUENCE = 0x7FFFFFFF


class CommandId(IntEnum):
    """command_id values (5.1.2.1) for the operations the gateway speaks."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class CommandStatus(IntEnum):
    """command_status values (5.1.3) the gateway or its simulator produce or react to."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVESMCLASS = 0x00000043
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


def status_name(value: int) -> str:
    """Name of a command_status, or its hex form when it is not a standard value."""
    try:
        return CommandStatus(value).name
    except ValueError:
        return f"0x{value:08X}"


class TlvTag(IntEnum):
    """Optional parameter tags (5.3.2) and the provider's vendor tags (SMPP seed)."""

    DEST_ADDR_SUBUNIT = 0x0005
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    RECEIPTED_MESSAGE_ID = 0x001E
    USER_MESSAGE_REFERENCE = 0x0204
    SC_INTERFACE_VERSION = 0x0210
    PAYLOAD_TYPE = 0x0019
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427
    NETWORK_ERROR_CODE = 0x0423
    # Vendor TLVs of the provider's delivery reports (SMPP seed, "Checking the status").
    SMSC_COST = 0x2000
    SMSC_FLAGS = 0x2001
    SMSC_PARTS = 0x2002
    SMSC_MCCMNC = 0x2003
    SMSC_EXTRA_STATUS = 0x2004


class MessageState(IntEnum):
    """message_state values (5.2.28)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


class EsmClass(IntFlag):
    """esm_class bits (5.2.12) the gateway uses."""

    DEFAULT = 0x00
    DELIVERY_RECEIPT = 0x04
    INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40


class DataCoding(IntEnum):
    """data_coding values the provider accepts: its ``coding`` times 4 (SMPP seed)."""

    GSM7 = 0x00
    LATIN1 = 0x04
    UCS2 = 0x08


class Ton(IntEnum):
    """Type of number (5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering plan indicator (5.2.6)."""

    UNKNOWN = 0
    ISDN = 1


INTERFACE_VERSION_34 = 0x34
