"""Messages the simulator's HTTP API has taken, and what status.php says about them (no I/O).

A message is (id, phone): one send.php request with several phones makes one message per
phone under one id (reference 1.2, 2.1). It is "transferred to operator" (status 0) until
``final_at``, then has its chosen final status. A message refused after an id was assigned
(errors 3, 6, 7, 8: reference 1.3) is kept with the matching final status at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from gateway.settings.simulator_http_api import StatusOutcome

COMMENT_MARKER = "\n~~~\n"
# Status names (reference 2.4).
STATUS_NAMES: Mapping[int, str] = MappingProxyType(
    {
        -3: "Message not found",
        -1: "Waiting to be sent",
        0: "Transferred to operator",
        1: "Delivered",
        3: "Expired",
        20: "Cannot be delivered",
        22: "Invalid number",
        23: "Prohibited",
        24: "Insufficient funds",
        25: "Unavailable number",
    }
)
TRANSFERRED = 0
NOT_FOUND = -3
# Single-part capacity and per-part capacity once a concatenation header is added.
_GSM_LIMITS = (160, 153)
_UCS2_LIMITS = (70, 67)
_PHONE = re.compile(r"[0-9]{5,20}")


@dataclass(slots=True)
class SimMessage:
    """One (id, phone) the simulator knows."""

    message_id: int
    phone: str
    login: str
    text: str
    sender: str
    parts: int
    cost: Decimal
    sent_at: float  # Unix time
    final_at: float
    outcome: StatusOutcome

    def status_at(self, now: float) -> tuple[int, int, float]:
        """Status code, err and the time of the last change, at Unix time ``now``."""
        if now < self.final_at:
            return TRANSFERRED, 0, self.sent_at
        return self.outcome.status, self.outcome.err, self.final_at

    def fields(self, now: float, detail: int) -> dict[str, Any]:
        """The status answer's fields (``detail`` is status.php's ``all``)."""
        status, err, changed = self.status_at(now)
        out: dict[str, Any] = {
            "status": status,
            "last_date": _date(changed),
            "last_timestamp": int(changed),
            "err": err,
            "flag": 0,
        }
        if detail >= 1:
            message, _, comment = self.text.partition(COMMENT_MARKER)
            out |= {
                "send_date": _date(self.sent_at),
                "send_timestamp": int(self.sent_at),
                "phone": self.phone,
                "cost": f"{self.cost:.2f}",
                "sender_id": self.sender,
                "status_name": STATUS_NAMES.get(status, str(status)),
                "message": message,
                "comment": comment,
                "type": 0,
                "sms_cnt": self.parts,
            }
        return out


def parts_of(text: str) -> int:
    """SMS parts a text takes: 160/153 characters when ASCII, 70/67 otherwise."""
    single, multi = _GSM_LIMITS if text.isascii() else _UCS2_LIMITS
    if len(text) <= single:
        return 1
    return -(-len(text) // multi)


def split_phones(raw: str) -> list[str]:
    """``phones``: separated by commas or semicolons, ``+`` optional (reference 1.1)."""
    return [p.strip().lstrip("+") for p in re.split(r"[,;]", raw) if p.strip()]


def valid_phone(phone: str) -> bool:
    return bool(_PHONE.fullmatch(phone))


def _date(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%d.%m.%Y %H:%M:%S")
