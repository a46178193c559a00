"""The provider's delivery receipt and HLR result texts (SMPP seed, "Checking the status").

Delivery receipt::

    id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000

HLR result (string fields urlencoded)::

    id:855469 stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 mcc:250 mnc:02
    cn:Russian+Federation net:MegaFON+open+Joint+Stock+Company rcn: rnet:
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from .errors import SmppError

# Keys may contain a space ("submit date"), values never do: split on "key:" boundaries.
_FIELD = re.compile(
    r"(?:^|\s)(id|sub|dlvrd|submit date|done date|stat|err|text|"
    r"imsi|msc|mcc|mnc|cn|net|rcn|rnet):(\S*)",
    re.IGNORECASE,
)
_HLR_KEYS = ("imsi", "msc", "mcc", "mnc", "cn", "net", "rcn", "rnet")
_URLENCODED = frozenset({"cn", "net", "rcn", "rnet"})
RECEIPT_TIME_FORMAT = "%y%m%d%H%M"


@dataclass(frozen=True, slots=True)
class Receipt:
    """Fields of a delivery receipt or HLR result text; absent fields are ``None``."""

    message_id: str
    stat: str
    err: int | None = None
    sub: int | None = None
    dlvrd: int | None = None
    submit_date: str | None = None
    done_date: str | None = None
    hlr: dict[str, str] | None = None

    @property
    def is_hlr(self) -> bool:
        return self.hlr is not None


class ReceiptFormatError(SmppError):
    """The text is not a delivery receipt or HLR result."""


def parse_receipt(text: str) -> Receipt:
    """Parse a delivery receipt or an HLR result; raises :class:`ReceiptFormatError`."""
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(text):
        fields.setdefault(match.group(1).lower(), match.group(2))
    if "id" not in fields or "stat" not in fields:
        raise ReceiptFormatError("receipt text lacks id: or stat:")
    hlr = None
    if "imsi" in fields:
        hlr = {
            key: unquote_plus(fields.get(key, "")) if key in _URLENCODED else fields.get(key, "")
            for key in _HLR_KEYS
        }
    return Receipt(
        message_id=fields["id"],
        stat=fields["stat"].upper(),
        err=_int_or_none(fields.get("err")),
        sub=_int_or_none(fields.get("sub")),
        dlvrd=_int_or_none(fields.get("dlvrd")),
        submit_date=fields.get("submit date"),
        done_date=fields.get("done date"),
        hlr=hlr,
    )


def _int_or_none(value: str | None) -> int | None:
    # isascii: str.isdigit() also accepts characters such as "²" that int() refuses.
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def format_receipt(
    message_id: str,
    stat: str,
    err: int,
    *,
    submitted: datetime,
    done: datetime,
    sub: int = 1,
    dlvrd: int | None = None,
) -> str:
    """The receipt text exactly as the provider writes it."""
    delivered = (sub if stat == "DELIVRD" else 0) if dlvrd is None else dlvrd
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{delivered:03d} "
        f"submit date:{submitted.strftime(RECEIPT_TIME_FORMAT)} "
        f"done date:{done.strftime(RECEIPT_TIME_FORMAT)} stat:{stat} err:{err:03d}"
    )


def parse_receipt_time(value: str) -> datetime | None:
    """A receipt's YYMMDDhhmm[ss] time as UTC, or ``None`` when it is not one."""
    # strptime takes one-digit fields, so trying "%y%m%d%H%M%S" on "1108202241" would read
    # 22:04:01 instead of 22:41: the length alone says which form the text is in.
    fmt = {10: RECEIPT_TIME_FORMAT, 12: "%y%m%d%H%M%S"}.get(len(value))
    if fmt is None or not (value.isascii() and value.isdigit()):
        return None
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def normalize_message_id(message_id: str) -> str:
    """Provider message ids in one form: decimal digits without leading zeros.

    The provider's ids are decimal; a hex id (as some SMSCs put in receipts) is converted so
    submit responses and receipts always match. Anything else is kept as given, trimmed.
    """
    value = message_id.strip()
    if value.isascii() and value.isdigit():
        return str(int(value))
    if value.lower().startswith("0x"):
        try:
            return str(int(value, 16))
        except ValueError:
            return value
    return value
