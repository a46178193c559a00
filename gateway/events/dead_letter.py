"""``smsc.dead-letter/1``: input that could not be processed, with the reason and its bytes."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .envelope import envelope, stable_event_id

SCHEMA = "smsc.dead-letter/1"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the bad input came from: a Kafka record, an SMPP PDU or an HTTP callback."""

    kind: str  # kafka | smpp | http
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    detail: str | None = None


def dead_letter_event(
    *,
    role: str,
    origin: Origin,
    reason_code: str,
    reason: str,
    key: bytes | None,
    value: bytes | None,
    occurred_at: datetime,
    identity: bytes | None = None,
) -> dict[str, Any]:
    """The event; for Kafka input its id is derived from topic, partition and offset.

    Other input is identified by ``identity`` when given (the part of the input that stays
    the same when the peer sends it again), else by its bytes.
    """
    if origin.kind == "kafka":
        parts: tuple[object, ...] = (origin.topic, origin.partition, origin.offset)
    else:
        parts = (origin.kind, origin.detail, value if identity is None else identity)
    event = envelope(SCHEMA, stable_event_id(SCHEMA, *parts), occurred_at)
    event.update(
        role=role,
        origin={k: v for k, v in _origin_fields(origin).items() if v is not None},
        reason={"code": reason_code, "message": reason},
        key_base64=_b64(key),
        value_base64=_b64(value),
    )
    return event


def _origin_fields(origin: Origin) -> dict[str, Any]:
    return {
        "kind": origin.kind,
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "detail": origin.detail,
    }


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")
