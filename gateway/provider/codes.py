"""The provider's delivery error codes (SMPP seed, "Error codes in the status").

Names are the seed's own, so events and metrics speak the provider's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DELIVERY_ERRORS: Mapping[int, str] = MappingProxyType(
    {
        0: "No error",
        1: "The subscriber does not exist",
        6: "Subscriber is offline",
        11: "The service is not connected",
        12: "Error in the subscriber's phone",
        13: "Subscriber is blocked",
        21: "No support for the service",
        200: "Virtual sending",
        219: "SIM Card Replacement",
        220: "Queue overflowed from operator",
        224: "Insufficient funds",
        237: "The caller is not responding",
        238: "No template",
        239: "Forbidden ip address",
        240: "Subscriber is busy",
        241: "Conversion error",
        242: "Recorded answering machine",
        243: "No contract",
        244: "Mailing is prohibited",
        245: "Status is not received",
        246: "Time limit",
        247: "Limit exceeded messages",
        248: "No route",
        249: "Invalid number format",
        250: "Telephone number is forbidden settings",
        251: "Limit is exceeded on a single number",
        252: "Number not permitted",
        253: "Prohibited spam filter",
        254: "Unregistered sender id",
        255: "Rejected by operator",
    }
)

# Message types carried in bits 0-3 of the vendor TLV 0x2001 (SMPP seed).
MESSAGE_TYPES: Mapping[int, str] = MappingProxyType(
    {
        0: "sms",
        1: "flash",
        2: "binary",
        3: "wap_push",
        4: "hlr",
        5: "ping",
        6: "mms",
        7: "call",
        8: "mail",
        10: "viber",
        12: "social",
    }
)

TEMPLATE_TYPES: Mapping[int, str] = MappingProxyType(
    {0: "service", 1: "transactional", 2: "authorization", 3: "advertising"}
)

# Additional status of vendor TLV 0x2004 (SMPP seed).
EXTRA_STATUSES: Mapping[int, str] = MappingProxyType({2: "read", 4: "link_clicked"})

# Receipt ``stat`` strings to the normalized status of smsc.dlr/1, and whether it is final.
STAT_TO_STATUS: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "DELIVRD": ("delivered", True),
        "EXPIRED": ("expired", True),
        "UNDELIV": ("undeliverable", True),
        "REJECTD": ("rejected", True),
        "DELETED": ("deleted", True),
        "ACCEPTD": ("accepted", False),
        "ENROUTE": ("enroute", False),
        "UNKNOWN": ("unknown", False),
    }
)


def delivery_error_name(code: int | None) -> str | None:
    """The seed's name for a delivery error code, or ``None`` when not documented."""
    if code is None:
        return None
    return DELIVERY_ERRORS.get(code)


def decode_flags(flags: int) -> dict[str, object]:
    """The fields packed in vendor TLV 0x2001: message type, second balance, template."""
    message_type = flags & 0x0F
    template = bool(flags & (1 << 8))
    return {
        "message_type": MESSAGE_TYPES.get(message_type, f"type_{message_type}"),
        "second_balance": bool(flags & (1 << 5)),
        "template": template,
        "template_type": TEMPLATE_TYPES[(flags >> 9) & 0x03] if template else None,
    }


# Delivery error codes of e-mail messages (SMPP seed, "Possible error codes in the status of
# e-mail messages"): the same ``err`` field, a table of its own where the codes differ.
MAIL_DELIVERY_ERRORS: Mapping[int, str] = MappingProxyType(
    {
        0: "No error",
        1: "Recipient does not exist",
        2: "Crowded Inbox",
        3: "Recipient server was not found",
        4: "Mailbox is locked",
        239: "Forbidden ip address",
        245: "Status is not received",
        248: "No route",
        249: "Invalid format",
        252: "E-mail address is prohibited",
        253: "Prohibited spam filter",
        254: "Unregistered sender",
        255: "Rejected by the recipient server",
    }
)

# The numeric ``status`` of the webhook's status callbacks (and of status.php) to the
# normalized status of smsc.dlr/1, whether it is final, and the additional status it implies.
# The webhook seed only says "Message status"; the codes are the provider's status table as
# collected in reference/smsc-http-api.md section 2.4 (a public copy of the docs table,
# consistent with two public clients). 2 (read) and 4 (link clicked) follow a delivery, as
# the SMPP seed's TLV 0x2004 additional status does.
WEBHOOK_STATUSES: Mapping[int, tuple[str, bool, str | None]] = MappingProxyType(
    {
        -3: ("unknown", True, None),  # message not found
        -2: ("accepted", False, None),  # stopped: a paused bulk job held it at the provider
        -1: ("accepted", False, None),  # waiting to be sent
        0: ("enroute", False, None),  # transferred to the operator
        1: ("delivered", True, None),
        2: ("delivered", True, "read"),
        3: ("expired", True, None),
        4: ("delivered", True, "link_clicked"),
        20: ("undeliverable", True, None),  # cannot be delivered
        22: ("rejected", True, None),  # invalid number
        23: ("rejected", True, None),  # prohibited
        24: ("rejected", True, None),  # insufficient funds
        25: ("undeliverable", True, None),  # unavailable number
    }
)

# Message type numbers of the webhook's ``type`` parameter (webhook seed): the same numbering
# as the flag's bits 0-3, so MESSAGE_TYPES names both.
MAIL_MESSAGE_TYPE = 8


def webhook_status(code: int) -> tuple[str, bool, str | None]:
    """Normalized status, finality and additional status of a numeric provider status."""
    return WEBHOOK_STATUSES.get(code, ("unknown", False, None))


def mail_delivery_error_name(code: int | None) -> str | None:
    """The seed's name for an ``err`` of an e-mail message, or ``None`` when not documented."""
    if code is None:
        return None
    return MAIL_DELIVERY_ERRORS.get(code)


# The provider refuses a submit identical to one it accepted less than a minute before (SMPP
# seed: "The server does not accept more than one identical request to send SMS messages
# within a minute"). The seed names no command_status for the refusal; ESME_RSUBMITFAIL (0x45,
# 69) is the generic "submit failed" status, the one the provider's refusals of this kind are
# seen with (the simulator's GATEWAY_SIMULATOR_DUPLICATE_STATUS default). It also marks other
# failures, so it means "duplicate" only for a submit that may repeat an earlier one of ours.
SMPP_DUPLICATE_STATUS = 0x45
