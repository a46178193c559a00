"""``smsc.dead-letter/1``: input that could not be processed, with the reason and its bytes.

A dead letter must always fit on Kafka, whatever the input it reports: it keeps at most
:data:`COPY_LIMIT_BYTES` of the original key and of the original value (their first bytes),
with their full sizes and SHA-256 digests, and the origin (topic, partition, offset for a
Kafka record) says where the whole input is. A record of up to the broker's default limit
(1 MB) thus makes a dead letter of about 180 KB at most. The reason's text is bounded too.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .envelope import bounded_text, envelope, stable_event_id

SCHEMA = "smsc.dead-letter/1"
# The most of an original key, and of an original value, a dead letter carries.
COPY_LIMIT_BYTES = 64 * 1024


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
    """The event; for Kafka input its id is derived from topic, partition and offset (and the
    origin's ``detail`` when it names a part of the record, as one document of a batch).

    Other input is identified by ``identity`` when given (the part of the input that stays
    the same when the peer sends it again), else by its bytes.
    """
    if origin.kind == "kafka":
        parts: tuple[object, ...] = (origin.topic, origin.partition, origin.offset)
        if origin.detail is not None:
            parts += (origin.detail,)
    else:
        parts = (origin.kind, origin.detail, value if identity is None else identity)
    event = envelope(SCHEMA, stable_event_id(SCHEMA, *parts), occurred_at)
    event.update(
        role=role,
        origin={k: v for k, v in _origin_fields(origin).items() if v is not None},
        reason={"code": reason_code, "message": bounded_text(reason)},
        key_base64=_b64(_head(key)),
        value_base64=_b64(_head(value)),
        key_size=None if key is None else len(key),
        value_size=None if value is None else len(value),
        key_sha256=_sha256(key),
        value_sha256=_sha256(value),
        truncated=_longer_than_copy(key) or _longer_than_copy(value),
    )
    return event


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a dead letter: the original key, or for a key longer than
    :data:`COPY_LIMIT_BYTES` ``sha256:`` and its hex digest (the record must fit)."""
    if not _longer_than_copy(key):
        return key
    assert key is not None
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode()


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


def _head(data: bytes | None) -> bytes | None:
    return None if data is None else data[:COPY_LIMIT_BYTES]


def _longer_than_copy(data: bytes | None) -> bool:
    return data is not None and len(data) > COPY_LIMIT_BYTES


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()
