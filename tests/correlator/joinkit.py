"""Plain objects for the correlator's pure stages: dict stores and event builders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from gateway.correlator.join import Correlator, JoinSettings
from gateway.correlator.model import HeldReports, PartEntry, RoutedReport, SubmittedMessage
from gateway.correlator.records import (
    Channel,
    InvalidInputError,
    Step,
    parse_route_records,
    route_batch,
)
from gateway.correlator.route import route_report, route_send_result
from gateway.events.dead_letter import Origin
from gateway.events.delivery import DeliveryReport, dlr_event
from gateway.events.send_result import RecipientOutcome, send_result_event
from tests.eventcheck import validate_event

V = TypeVar("V")
T0 = 1_800_000_000.0
SETTINGS = JoinSettings(hold_seconds=60.0, entry_ttl_seconds=3600.0, done_ttl_seconds=600.0)
STATS = {"delivered": "DELIVRD", "undeliverable": "UNDELIV", "expired": "EXPIRED", "enroute": ""}


class DictStore(Generic[V]):
    def __init__(self) -> None:
        self.data: dict[str, V] = {}

    def get(self, key: str) -> V | None:
        return self.data.get(key)

    def put(self, key: str, value: V) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class Harness:
    """A correlator over dict stores, fed through the route stage like the faust adapter."""

    def __init__(self, settings: JoinSettings = SETTINGS, started_at: float = T0) -> None:
        self.parts: DictStore[PartEntry] = DictStore()
        self.held: DictStore[HeldReports] = DictStore()
        self.correlator = Correlator(self.parts, self.held, settings, started_at=started_at)
        self.offset = 0

    def restart(self, started_at: float, recovered_at: float | None = None) -> Harness:
        """A new correlator over the same stores, as after recovery from the changelog
        (finished at ``recovered_at``, at once by default)."""
        again = Harness.__new__(Harness)
        again.parts, again.held, again.offset = self.parts, self.held, self.offset
        again.correlator = Correlator(
            self.parts, self.held, self.correlator._settings, started_at=started_at
        )
        again.correlator.rebuild(
            self.parts.data.items(),
            self.held.data.items(),
            recovered_at=started_at if recovered_at is None else recovered_at,
        )
        return again

    def result(self, value: bytes, now: float) -> Step:
        return self._through_route(
            route_send_result(self._origin("results"), None, value, now), now
        )

    def report(self, value: bytes, now: float) -> Step:
        key = orjson.loads(value)["message_id"].encode()
        return self._through_route(route_report(self._origin("dlr"), key, value, now), now)

    def tick(self, now: float, partition: int = 0) -> Step:
        return checked(self.correlator.tick(partition, now))

    def _through_route(self, routed: Step, now: float) -> Step:
        """As the worker does: the route documents travel as one batch record."""
        total = Step(outbound=[o for o in routed.outbound if o.channel != Channel.ROUTE])
        total.dead_lettered += routed.dead_lettered
        documents = [o.document for o in routed.outbound if o.channel is Channel.ROUTE]
        if documents:
            for record in parse_route_records(route_batch(documents)):
                assert not isinstance(record, InvalidInputError)
                assert isinstance(record, SubmittedMessage | RoutedReport)
                total.extend(self.correlator.handle(record, 0, now))
        return checked(total)

    def _origin(self, topic: str) -> Origin:
        self.offset += 1
        return Origin("kafka", topic, 0, self.offset)


def checked(step: Step) -> Step:
    for out in step.outbound:
        validate_event(out.document)
    return step


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def result(
    request_id: str, phone: str, ids: tuple[str, ...], when: float = T0, **tags: str
) -> bytes:
    event = send_result_event(
        request_id=request_id,
        outcome="accepted",
        occurred_at=at(when),
        received_at=at(when - 0.5),
        transport="smpp",
        recipients=[RecipientOutcome(phone=phone, status="accepted", message_ids=ids)],
        tags=tags,
    )
    validate_event(event)
    return orjson.dumps(event)


def report(message_id: str, phone: str, status: str = "delivered", when: float = T0) -> bytes:
    final = status != "enroute"
    event = dlr_event(
        DeliveryReport(
            source="smpp",
            message_id=message_id,
            phone=phone,
            status=status,
            final=final,
            stat=STATS.get(status) or "ENROUTE",
            received_at=at(when),
            err=0 if status == "delivered" else 1,
            cost="1.95",
            raw={"text": f"id:{message_id} stat:{STATS.get(status)}"},
        )
    )
    validate_event(event)
    return orjson.dumps(event)


def statuses(step: Step, scope: str) -> list[dict[str, Any]]:
    return [
        o.document
        for o in step.outbound
        if o.channel is Channel.STATUS and o.document["scope"] == scope
    ]


def dead_letters(step: Step) -> list[dict[str, Any]]:
    return [o.document for o in step.outbound if o.channel is Channel.DEAD_LETTER]
