"""What every event shares: ``schema``, a stable ``event_id`` and ``occurred_at``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

# Event ids are UUIDv5 names under this namespace, so the same fact always gets the same id
# and consumers can drop repeats (a redelivered request, a provider's repeated report).
EVENT_NAMESPACE = uuid.UUID("0f5b7d1e-3c61-5a9e-9d62-5e4c2a9b7a10")


def stable_event_id(*parts: object) -> str:
    """A UUIDv5 over ``parts``; equal parts give equal ids across processes and restarts."""
    name = "\x1f".join(str(part) for part in parts)
    return str(uuid.uuid5(EVENT_NAMESPACE, name))


def rfc3339(moment: datetime) -> str:
    """UTC time in RFC 3339 with millisecond precision and a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> datetime:
    return datetime.now(UTC)


def dumps(event: dict[str, Any]) -> bytes:
    """Serialize an event as compact UTF-8 JSON."""
    return orjson.dumps(event)


def envelope(schema: str, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The three fields every event starts with."""
    return {"schema": schema, "event_id": event_id, "occurred_at": rfc3339(occurred_at)}
