"""SMPP time formats (SMPP 3.4 section 7.1.1): absolute and relative ``YYMMDDhhmmsstnnp``."""

from __future__ import annotations

from datetime import UTC, datetime


def absolute_time(moment: datetime) -> str:
    """An absolute time in UTC (``nn`` = 00 quarter hours, ``p`` = ``+``).

    ``YY`` has two digits: only the years 2000-2099 can be written (ValueError otherwise).
    """
    utc = moment.astimezone(UTC)
    if not 2000 <= utc.year <= 2099:
        raise ValueError(f"absolute time in {utc.year}: only 2000-2099 fit in YY")
    tenths = utc.microsecond // 100_000
    return f"{utc:%y%m%d%H%M%S}{tenths}00+"


def relative_time(seconds: int) -> str:
    """A relative period (``p`` = ``R``): years and months stay zero, days carry the rest."""
    if seconds < 0:
        raise ValueError("relative time cannot be negative")
    days, rest = divmod(seconds, 86400)
    if days > 99:
        raise ValueError("relative time above 99 days")
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"
