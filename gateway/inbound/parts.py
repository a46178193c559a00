"""One part of a concatenated incoming SMS, and its record on the internal parts topic.

Parts are stored on Kafka before their DELIVER_SM is answered, and reassembled from there, so
a restart loses none. The record is internal (no consumer outside the gateway), versioned by
its ``record`` field, and carries what the final ``smsc.incoming/1`` event needs: addresses,
the concatenation data, data_coding and esm_class, the header and body octets, and when the
part was received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.events.envelope import rfc3339

from .concat import Concat, Scheme

PART_RECORD = "smsc.incoming-part/1"

# (source_addr, destination_addr, scheme, reference, total): the parts of one message.
MessageKey = tuple[str, str, Scheme, int, int]


class PartRecordError(GatewayError):
    """A record on the parts topic that is not a readable part."""


@dataclass(frozen=True, slots=True)
class IncomingPart:
    """One DELIVER_SM of a concatenated incoming SMS, header split off."""

    source_addr: str
    destination_addr: str
    concat: Concat
    data_coding: int
    esm_class: int
    header: bytes
    body: bytes
    received_at: datetime

    @property
    def phone(self) -> str:
        """The sender's number as events carry it: digits, no plus."""
        return self.source_addr.lstrip("+")

    @property
    def message_key(self) -> MessageKey:
        c = self.concat
        return (self.source_addr, self.destination_addr, c.scheme, c.reference, c.total)


def part_record(part: IncomingPart) -> dict[str, Any]:
    """The JSON object stored on the parts topic (keyed by :attr:`IncomingPart.phone`)."""
    return {
        "record": PART_RECORD,
        "source_addr": part.source_addr,
        "destination_addr": part.destination_addr,
        "scheme": part.concat.scheme.value,
        "reference": part.concat.reference,
        "total": part.concat.total,
        "sequence": part.concat.sequence,
        "data_coding": part.data_coding,
        "esm_class": part.esm_class,
        "header": part.header.hex(),
        "body": part.body.hex(),
        "received_at": rfc3339(part.received_at),
    }


_STR = ("source_addr", "destination_addr", "scheme", "header", "body", "received_at")
_INT = ("reference", "total", "sequence", "data_coding", "esm_class")


def read_part(value: bytes | None) -> IncomingPart:
    """The part a record holds; raises :class:`PartRecordError` naming what is wrong."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise PartRecordError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("record") != PART_RECORD:
        raise PartRecordError(f"not a {PART_RECORD} record")
    wrong = [n for n in _STR if not isinstance(data.get(n), str)]
    wrong += [n for n in _INT if type(data.get(n)) is not int]
    if wrong:
        raise PartRecordError(f"fields missing or of the wrong type: {', '.join(wrong)}")
    try:
        concat = Concat(Scheme(data["scheme"]), data["reference"], data["total"], data["sequence"])
        header, body = bytes.fromhex(data["header"]), bytes.fromhex(data["body"])
        received_at = datetime.fromisoformat(data["received_at"])
    except ValueError as exc:
        raise PartRecordError(str(exc)) from None
    if received_at.tzinfo is None or not 1 <= concat.sequence <= concat.total:
        raise PartRecordError("received_at without a zone, or sequence outside 1..total")
    return IncomingPart(
        source_addr=data["source_addr"],
        destination_addr=data["destination_addr"],
        concat=concat,
        data_coding=data["data_coding"],
        esm_class=data["esm_class"],
        header=header,
        body=body,
        received_at=received_at,
    )
