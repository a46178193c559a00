"""DELIVER_SM to Kafka, answered only once Kafka holds the event.

Answers (SMPP 3.4 5.1.3): ESME_ROK after the event is acknowledged; ESME_RX_T_APPN when Kafka
cannot take it, so the provider delivers it again; ESME_RX_P_APPN for a PDU that cannot be
read, after it was put on the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.config import TopicSettings
from gateway.errors import KafkaUnavailableError
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.delivery import DeliveryReport, IncomingMessage, dlr_event, incoming_event
from gateway.events.envelope import dumps, utc_now
from gateway.kafka.records import Publisher
from gateway.metrics import Children, Metrics
from gateway.smpp import codec
from gateway.smpp.constants import CommandStatus, status_name
from gateway.smpp.pdu import DeliverSm

from .deliver_sm import Unreadable, interpret

log = logging.getLogger(__name__)

Respond = Callable[[int], None]


class DeliverSmPublisher:
    """Publishes what each DELIVER_SM means and then answers it; owns its tasks."""

    def __init__(
        self,
        publisher: Publisher,
        topics: TopicSettings,
        metrics: Metrics,
        *,
        role: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._publisher = publisher
        self._topics = topics
        self._metrics = metrics
        self._deliver_sm = Children(metrics.smpp_deliver_sm)
        self._role = role
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, pdu: DeliverSm, respond: Respond, *, bind: str) -> None:
        """Start handling one DELIVER_SM; ``respond`` is called with the status to answer."""
        task = asyncio.create_task(self._handle(pdu, respond, bind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every DELIVER_SM being handled to be answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _handle(self, pdu: DeliverSm, respond: Respond, bind: str) -> None:
        meaning = interpret(pdu, self._clock())
        kind, topic, key, event, ok = self._route(pdu, meaning)
        try:
            await self._publisher.publish(topic, key, dumps(event))
            status = ok
        except KafkaUnavailableError as exc:
            log.warning("%s: deliver_sm not stored, asking to redeliver: %s", bind, exc)
            status = CommandStatus.ESME_RX_T_APPN
        self._deliver_sm(bind, kind, status_name(status)).inc()
        respond(status)

    def _route(
        self, pdu: DeliverSm, meaning: DeliveryReport | IncomingMessage | Unreadable
    ) -> tuple[str, str, bytes | None, dict[str, Any], int]:
        if isinstance(meaning, DeliveryReport):
            key = meaning.message_id.encode()
            return "dlr", self._topics.dlr, key, dlr_event(meaning), CommandStatus.ESME_ROK
        if isinstance(meaning, IncomingMessage):
            event = incoming_event(meaning)
            key = meaning.phone.encode()
            return "incoming", self._topics.incoming, key, event, CommandStatus.ESME_ROK
        self._metrics.dead_letters.labels(meaning.code).inc()
        event = dead_letter_event(
            role=self._role,
            origin=Origin(kind="smpp", detail="deliver_sm"),
            reason_code=meaning.code,
            reason=meaning.message,
            key=None,
            value=codec.encode(pdu),
            # Without its sequence number, so the provider's redelivery has the same event_id.
            identity=codec.encode(replace(pdu, sequence_number=0)),
            occurred_at=self._clock(),
        )
        return "unreadable", self._topics.dead_letter, None, event, CommandStatus.ESME_RX_P_APPN
