"""The correlator's records: its internal topic's records and its tables' entries.

Everything here is plain data with an orjson codec; no Kafka, no faust. Times are Unix
seconds (floats) inside the correlator and RFC 3339 on the wire of public events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.events.dead_letter import Origin
from gateway.smpp.receipt import normalize_message_id

SUBMITTED = "submitted"
REPORT = "report"
TICK = "tick"
BATCH = "batch"


def part_key(message_id: str, phone: str) -> str:
    """The tables' key: (provider message id, phone); HTTP sends share one id across phones."""
    return f"{normalize_message_id(message_id)}/{normalize_phone(phone)}"


def normalize_phone(phone: str) -> str:
    """Digits only, as in send results; reports may carry a ``+`` or spaces."""
    if phone.isdigit():  # already normalized: the common case, on every join
        return phone
    return "".join(ch for ch in phone if ch.isdigit())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def replayed_key(phone: str) -> str:
    """The parts table's key of the marker left by a replayed recipient (see
    :class:`SubmittedMessage`); a message id never contains ``:``."""
    return f"replayed:{normalize_phone(phone)}"


@dataclass(frozen=True, slots=True)
class SubmittedMessage:
    """An accepted recipient of a send result: its parts' provider ids, in part order.

    ``replayed``: a recipient whose resend after a crash the provider refused as a duplicate
    of the first submit (outcome ``duplicate``, code ``provider_duplicate``). The provider
    gave no id for the refusal, so the first submit's ids are unknown (``message_ids`` is
    empty): the join adopts the reports for the phone whose id no result names.
    """

    request_id: str
    phone: str
    message_ids: tuple[str, ...]
    tags: Mapping[str, str]
    submitted_at: float
    replayed: bool = False

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "kind": SUBMITTED,
            "request_id": self.request_id,
            "phone": self.phone,
            "message_ids": list(self.message_ids),
            "tags": dict(self.tags),
            "submitted_at": self.submitted_at,
        }
        if self.replayed:
            record["replayed"] = True
        return record

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> SubmittedMessage:
        return cls(
            request_id=str(doc["request_id"]),
            phone=str(doc["phone"]),
            message_ids=tuple(str(m) for m in doc["message_ids"]),
            tags={str(k): str(v) for k, v in doc["tags"].items()},
            submitted_at=float(doc["submitted_at"]),
            replayed=doc.get("replayed") is True,
        )


@dataclass(frozen=True, slots=True)
class RoutedReport:
    """A delivery report as the route stage forwards it: where it came from and its bytes."""

    origin: Origin
    key: bytes | None
    value: bytes

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": REPORT,
            "origin": {
                "topic": self.origin.topic,
                "partition": self.origin.partition,
                "offset": self.origin.offset,
            },
            # latin-1 maps every byte to one character and back, whatever the producer sent.
            "key": None if self.key is None else self.key.decode("latin-1"),
            "value": self.value.decode("utf-8"),
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> RoutedReport:
        origin = doc["origin"]
        key = doc.get("key")
        return cls(
            origin=Origin(
                kind="kafka",
                topic=str(origin["topic"]),
                partition=int(origin["partition"]),
                offset=int(origin["offset"]),
            ),
            key=None if key is None else str(key).encode("latin-1"),
            value=str(doc["value"]).encode("utf-8"),
        )


def dead_lettered_key(key: str) -> str:
    """The held table's key of the reports dead-lettered from ``key``, kept a hold so that a
    recovery dead-letters them again; a message id never contains ``:``."""
    return f"dead-lettered:{key}"


def is_dead_lettered_key(key: str) -> bool:
    return key.startswith("dead-lettered:")


@dataclass(frozen=True, slots=True)
class HeldReport:
    """A report that came before its submit result, waiting since ``held_at``."""

    report: RoutedReport
    held_at: float


@dataclass(frozen=True, slots=True)
class PartEntry:
    """One SMS part of an accepted message: the parts table's value.

    ``final_status`` is the first final status reported for the part; later final reports are
    still published, but do not change it, so a message's overall status is decided once.
    """

    request_id: str
    phone: str
    tags: Mapping[str, str]
    submitted_at: float
    message_ids: tuple[str, ...]
    index: int
    partition: int
    expires_at: float
    final_status: str | None = None
    final_at: float | None = None
    completed: bool = False

    @property
    def sibling_keys(self) -> list[str]:
        return [part_key(m, self.phone) for m in self.message_ids]

    def finished(self, status: str, at: float) -> PartEntry:
        """The entry with its first final status recorded (unchanged if it had one)."""
        if self.final_status is not None:
            return self
        return self._with(status, at, self.completed, self.expires_at)

    def completed_until(self, expires_at: float) -> PartEntry:
        """The entry of a part whose message is complete, kept until ``expires_at``."""
        return self._with(self.final_status, self.final_at, True, expires_at)

    def _with(
        self, final_status: str | None, final_at: float | None, completed: bool, expires_at: float
    ) -> PartEntry:
        # Spelled out rather than dataclasses.replace(): this runs on every join.
        return PartEntry(
            self.request_id,
            self.phone,
            self.tags,
            self.submitted_at,
            self.message_ids,
            self.index,
            self.partition,
            expires_at,
            final_status,
            final_at,
            completed,
        )


def encode_entry(entry: PartEntry) -> bytes:
    return orjson.dumps(
        [
            entry.request_id,
            entry.phone,
            dict(entry.tags),
            entry.submitted_at,
            list(entry.message_ids),
            entry.index,
            entry.partition,
            entry.expires_at,
            entry.final_status,
            entry.final_at,
            entry.completed,
        ]
    )


def decode_entry(data: bytes) -> PartEntry:
    (request_id, phone, tags, submitted_at, ids, index, partition, expires_at, *state) = (
        orjson.loads(data)
    )
    final_status, final_at, completed = state
    return PartEntry(
        request_id=request_id,
        phone=phone,
        tags=tags,
        submitted_at=submitted_at,
        message_ids=tuple(ids),
        index=index,
        partition=partition,
        expires_at=expires_at,
        final_status=final_status,
        final_at=final_at,
        completed=completed,
    )


@dataclass(frozen=True, slots=True)
class HeldReports:
    """The held table's value: the reports waiting for one (message id, phone).

    ``released_at`` is when their part came and they were joined: they stay a hold longer,
    so that the result processed again after a crash joins them again (the tables may
    already have that step's changes when its statuses never reached Kafka).
    """

    partition: int
    reports: tuple[HeldReport, ...]
    released_at: float | None = None

    def first_held_at(self) -> float:
        return min(h.held_at for h in self.reports)


def encode_held(held: HeldReports) -> bytes:
    reports = [[h.report.to_record(), h.held_at] for h in held.reports]
    if held.released_at is None:
        return orjson.dumps([held.partition, reports])
    return orjson.dumps([held.partition, reports, held.released_at])


def decode_held(data: bytes) -> HeldReports:
    partition, reports, *released = orjson.loads(data)  # entries before release have two
    return HeldReports(
        partition,
        tuple(HeldReport(RoutedReport.from_record(r), float(at)) for r, at in reports),
        float(released[0]) if released else None,
    )
