"""What every event shares: ``schema``, a stable ``event_id`` and ``occurred_at``."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

# Event ids are UUIDv5 names under this namespace, so the same fact always gets the same id
# and consumers can drop repeats (a redelivered request, a provider's repeated report).
EVENT_NAMESPACE = uuid.UUID("0f5b7d1e-3c61-5a9e-9d62-5e4c2a9b7a10")
_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes
# The longest human-readable message (an error's, a dead letter's reason) an event carries:
# messages may quote the input, and an event must stay small whatever the input was.
MESSAGE_LIMIT_CHARS = 1000


def stable_event_id(*parts: object) -> str:
    """A UUIDv5 over ``parts``; equal parts give equal ids across processes and restarts.

    The id is ``str(uuid.uuid5(EVENT_NAMESPACE, name))`` (RFC 4122 section 4.3: SHA-1 of the
    namespace and the name, the first 16 bytes with the version and variant bits set),
    computed without building a ``UUID`` object on the way; tests hold the two equal.
    """
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update("\x1f".join(map(str, parts)).encode())
    return _uuid5_text(sha1.hexdigest())


def stable_event_ids(*parts: object) -> Callable[[object], str]:
    """``stable_event_id(*parts, last)`` as a function of ``last``: for ids made per event
    under the same leading parts (a result's schema), whose share of the SHA-1 is computed
    here once."""
    prefix = _NAMESPACE_SHA1.copy()
    prefix.update("".join(f"{part}\x1f" for part in parts).encode())

    def event_id(last: object) -> str:
        sha1 = prefix.copy()
        sha1.update(str(last).encode())
        return _uuid5_text(sha1.hexdigest())

    return event_id


# The SHA-1 of the namespace alone, copied for each id (the keyword is not parsed per id).
_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE_BYTES, usedforsecurity=False)
# The variant's hex digit for each digit the hash has there: its two high bits set to 10.
_VARIANT_DIGIT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def _uuid5_text(sha1_hex: str) -> str:
    """The UUID's text from the hash's hex digits: 16 bytes, version digit 5, variant 10."""
    h = sha1_hex
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


# The last second formatted: its first and last moment and the text of its
# "YYYY-MM-DDTHH:MM:SS" (one tuple, replaced whole, so threads cannot tear it). At first
# no moment is in it.
_last_second: tuple[datetime, datetime, str] = (
    datetime.max.replace(tzinfo=UTC),
    datetime.min.replace(tzinfo=UTC),
    "",
)
# The text after the second, for each count of milliseconds.
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def rfc3339(moment: datetime) -> str:
    """UTC time in RFC 3339 with millisecond precision and a ``Z`` suffix.

    The text of the whole second is formatted once per second (about half the cost of
    ``isoformat`` each time); a moment is placed in the last second formatted by two
    comparisons (datetimes of one time zone compare in C), and its milliseconds are looked
    up, not formatted.
    """
    global _last_second  # noqa: PLW0603 - a one-entry cache
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    first, last, text = _last_second
    if not first <= moment <= last:
        first = moment.replace(microsecond=0)
        text = first.isoformat()[:19]
        _last_second = (first, first.replace(microsecond=999_999), text)
    return text + _MILLIS[moment.microsecond // 1000]


def utc_now() -> datetime:
    return datetime.now(UTC)


def dumps(event: dict[str, Any]) -> bytes:
    """Serialize an event as compact UTF-8 JSON."""
    return orjson.dumps(event)


def bounded_text(text: str, limit: int = MESSAGE_LIMIT_CHARS) -> str:
    """``text``, or its first ``limit`` characters and a note of how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def envelope(schema: str, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The three fields every event starts with."""
    return {"schema": schema, "event_id": event_id, "occurred_at": rfc3339(occurred_at)}
