"""What every event shares: ``schema``, a stable ``event_id`` and ``occurred_at``."""

from __future__ import annotations

import hashlib
import uuid
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
    name = "\x1f".join(map(str, parts))
    data = _NAMESPACE_BYTES + name.encode()
    digest = bytearray(hashlib.sha1(data, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant RFC 4122
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# The last second formatted and its text: events of one second share the formatting of its
# "YYYY-MM-DDTHH:MM:SS" (one tuple, replaced whole, so threads cannot tear it).
_last_second: tuple[tuple[int, ...], str] = ((), "")


def rfc3339(moment: datetime) -> str:
    """UTC time in RFC 3339 with millisecond precision and a ``Z`` suffix.

    The text of the whole second is formatted once per second (about half the cost of
    ``isoformat`` each time); only the milliseconds are formatted per call.
    """
    global _last_second  # noqa: PLW0603 - a one-entry cache
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = (moment.second, moment.minute, moment.hour, moment.day, moment.month, moment.year)
    cached, text = _last_second
    if second != cached:
        text = moment.isoformat()[:19]
        _last_second = (second, text)
    return f"{text}.{moment.microsecond // 1000:03d}Z"


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
