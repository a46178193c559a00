"""Plain records and the seams the domain uses instead of Kafka clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple, Protocol

from gateway.errors import GatewayError
from gateway.slots import slot_setters

# How a publisher tells of an offered record: None once Kafka acknowledged it, else the
# error; and the seconds it waited for that answer.
Settle = Callable[[GatewayError | None, float], None]


class Partition(NamedTuple):
    """A topic's partition.

    A tuple rather than a dataclass: every record's partition is a dict key several times
    on its way (offsets, claims, revokes), and a tuple hashes and compares in C.
    """

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record.

    ``replay``: an earlier consumer of the group may have started it before it crashed (see
    :mod:`gateway.kafka.claims`); only sources that keep claims set it.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    replay: bool = False
    # The record's partition, made once: every step of a record's way looks it up.
    source: Partition = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Partition(self.topic, self.partition))


# fetched_record sets a Record's slots in this order; the import fails if they change.
_RECORD_FIELDS = ("topic", "partition", "offset", "key", "value", "timestamp_ms", "replay")
if tuple(f.name for f in fields(Record) if f.init) != _RECORD_FIELDS:
    raise ImportError("fetched_record no longer sets every field of Record")
(
    _set_topic,
    _set_partition,
    _set_offset,
    _set_key,
    _set_value,
    _set_timestamp_ms,
    _set_replay,
    _set_source,
) = slot_setters(Record, (*_RECORD_FIELDS, "source"))


def fetched_record(
    source: Partition,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    *,
    replay: bool,
) -> Record:
    """``Record(*source, offset, key, value, timestamp_ms, replay)`` sharing ``source`` (one
    per fetched partition) and with its slots set directly: a consumer makes one per record,
    and the frozen dataclass's ``__init__`` (an ``object.__setattr__`` per field, a
    ``Partition`` per record) cost three times as much."""
    record: Record = object.__new__(Record)
    _set_topic(record, source.topic)
    _set_partition(record, source.partition)
    _set_offset(record, offset)
    _set_key(record, key)
    _set_value(record, value)
    _set_timestamp_ms(record, timestamp_ms)
    _set_replay(record, replay)
    _set_source(record, source)
    return record


class Publisher(Protocol):
    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Return only once Kafka acknowledged the record (acks=all)."""


class OfferingPublisher(Publisher, Protocol):
    def offer(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        """Take the record without awaiting anything; ``settle`` is called once Kafka
        acknowledged it (acks=all), or with the error when it cannot be stored (maybe at
        once)."""


class RecordSource(Protocol):
    async def fetch(self, timeout_seconds: float, max_records: int) -> list[Record]:
        """Records in partition order; empty when none arrived in time."""

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit the next offset to read for each partition."""


class ClaimingSource(RecordSource, Protocol):
    """A source that keeps claims (:mod:`gateway.kafka.claims`): marks replays."""

    async def claim(self, records: Sequence[Record]) -> list[Record]:
        """Make durable that ``records`` may be started, before they are; the ones that may
        (those of partitions still assigned). :class:`~gateway.errors.KafkaUnavailableError`
        when Kafka did not take the claim."""
