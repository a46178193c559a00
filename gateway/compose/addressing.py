"""Source and destination addresses with their TON/NPI, and the SMPP time fields.

Senders (SMPP 3.4 5.2.5-6; the provider's sample settings use TON/NPI 5/1 for senders and
1/1 for destinations):

- ``+`` and digits: an international number, sent as digits with TON 1 (international),
  NPI 1 (ISDN), the way kannel's ``source-addr-autodetect`` (in those sample settings)
  treats it;
- digits only: international when longer than 8 digits, otherwise a short code with the
  short-code TON/NPI of :class:`~gateway.settings.composition.CompositionSettings`;
- anything else: an alphanumeric sender of at most 11 characters (the length GSM allows for
  an alphanumeric originator, 3GPP TS 23.040 9.1.2.5) with the bind's alphanumeric TON/NPI.

Destinations are the request's normalized phone numbers (E.164 digits) with the bind's
destination TON/NPI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gateway.settings.composition import BindProfile, CompositionSettings
from gateway.smpp.constants import Npi, Ton
from gateway.smpp.timefmt import absolute_time, relative_time

from .errors import CompositionError

SHORT_CODE_MAX_DIGITS = 8
_INTERNATIONAL = re.compile(r"\+?[0-9]{1,20}")
_ALPHANUMERIC = re.compile(r"[\x20-\x7E]{1,11}")
_PHONE = re.compile(r"[0-9]{5,20}")  # destination_addr holds at most 20 characters


@dataclass(frozen=True, slots=True)
class Address:
    addr: str
    ton: int
    npi: int


def source_address(sender: str, profile: BindProfile, settings: CompositionSettings) -> Address:
    """The submit_sm source for ``sender`` (empty: the provider's default sender)."""
    if sender == "":
        return Address("", profile.alphanumeric_ton, profile.alphanumeric_npi)
    if _INTERNATIONAL.fullmatch(sender):
        digits = sender.removeprefix("+")
        if sender.startswith("+") or len(digits) > SHORT_CODE_MAX_DIGITS:
            return Address(digits, Ton.INTERNATIONAL, Npi.ISDN)
        return Address(digits, settings.short_code_ton, settings.short_code_npi)
    # A "+" is only the lead of an international number.
    if "+" in sender or not _ALPHANUMERIC.fullmatch(sender):
        raise CompositionError(
            "invalid_sender_id",
            f"sender {sender[:24]!r} is neither a number of up to 20 digits nor an "
            "alphanumeric name of up to 11 printable ASCII characters",
        )
    return Address(sender, profile.alphanumeric_ton, profile.alphanumeric_npi)


def destination_address(phone: str, profile: BindProfile) -> Address:
    """The submit_sm destination for a normalized phone number."""
    if not _PHONE.fullmatch(phone):
        raise CompositionError(
            "invalid_phone", f"destination {phone[:24]!r} is not 5-20 digits (E.164)"
        )
    return Address(phone, profile.destination_ton, profile.destination_npi)


def schedule_field(schedule_at: datetime | None, now: datetime) -> str:
    """schedule_delivery_time: absolute when in the future, empty (at once) otherwise."""
    if schedule_at is None or schedule_at <= now:
        return ""
    try:
        return absolute_time(schedule_at)
    except ValueError as exc:
        raise CompositionError("invalid_schedule", str(exc)) from None


def validity_field(validity_seconds: int | None) -> str:
    """validity_period: relative, or empty for the SMSC's default."""
    if validity_seconds is None:
        return ""
    try:
        return relative_time(validity_seconds)
    except ValueError as exc:
        raise CompositionError("invalid_validity", str(exc)) from None
