"""DELIVER_SM to Kafka, answered only once Kafka holds the event.

Answers (SMPP 3.4 5.1.3): ESME_ROK after the event is acknowledged; ESME_RX_T_APPN when Kafka
cannot take it now (down, or the topic refused), so the provider delivers it again;
ESME_RX_P_APPN for a PDU that cannot be read, after it was put on the dead-letter topic with
the reason, and for an event Kafka refuses for good (too large): delivering it again could
not help.

The hot path runs without a task per PDU: the PDUs of one read are queued, one pump task hands
their events to the producer in arrival order, and each PDU is answered from the callback of
its own record's acknowledgement. A publisher that cannot hand records over that way (one with
only ``publish``) gets a task per record instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import GatewayError, KafkaRecordRefusedError
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.delivery import DeliveryReport, IncomingMessage, dlr_event, incoming_event
from gateway.events.envelope import dumps, utc_now
from gateway.metrics import Children, Metrics
from gateway.provider.codes import DELIVERY_ERRORS, STAT_TO_STATUS
from gateway.settings import TopicSettings
from gateway.smpp import codec
from gateway.smpp.constants import CommandStatus, status_name
from gateway.smpp.pdu import DeliverSm

from .deliver_sm import Unreadable, interpret
from .parts import IncomingPart, part_record

log = logging.getLogger(__name__)

Respond = Callable[[int], None]
Acked = Callable[[GatewayError | None], None]


class PipelinedPublisher(Protocol):
    """What the publisher of DELIVER_SMs writes through: both of the gateway's Kafka
    publishers (:class:`~gateway.kafka.batching.BatchingPublisher`,
    :class:`~gateway.kafka.client.KafkaPublisher`) take records this way."""

    async def enqueue(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        """Hand one record to the producer, in call order; ``acked`` is called once Kafka
        acknowledged it (with None) or could not take it (with the error)."""


@dataclass(frozen=True, slots=True)
class _Taken:
    """A DELIVER_SM handed to the producer, waiting for its record's acknowledgement."""

    respond: Respond
    bind: str
    kind: str
    ok: int
    report: DeliveryReport | None


class DeliverSmPublisher:
    """Publishes what each DELIVER_SM means and then answers it; owns its pump task."""

    def __init__(
        self,
        publisher: PipelinedPublisher,
        topics: TopicSettings,
        metrics: Metrics,
        *,
        role: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sink = publisher
        self._topics = topics
        self._metrics = metrics
        self._deliver_sm = Children(metrics.smpp_deliver_sm)
        self._reports = Children(metrics.smpp_delivery_reports)
        self._errors = Children(metrics.smpp_delivery_errors)
        self._role = role
        self._clock = clock
        self._queue: deque[tuple[DeliverSm, Respond, str]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._unanswered = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def unanswered(self) -> int:
        """DELIVER_SMs taken and not answered yet."""
        return self._unanswered

    def submit(self, pdu: DeliverSm, respond: Respond, *, bind: str) -> None:
        """Start handling one DELIVER_SM; ``respond`` is called once with the status to answer.

        After :meth:`close`, the answer is ESME_RX_T_APPN at once: the provider delivers the
        PDU again later, to this bind or another.
        """
        if self._closed:
            self._deliver_sm(bind, "refused", "ESME_RX_T_APPN").inc()
            respond(CommandStatus.ESME_RX_T_APPN)
            return
        self._unanswered += 1
        self._idle.clear()
        self._queue.append((pdu, respond, bind))
        if self._pump is None:
            self._pump = asyncio.create_task(self._run_pump(), name="deliver-sm-pump")

    def close(self) -> None:
        """Take no more DELIVER_SMs; those already taken are still published and answered."""
        self._closed = True

    async def drain(self) -> None:
        """Wait for every DELIVER_SM taken to be answered."""
        await self._idle.wait()

    async def _run_pump(self) -> None:
        queue = self._queue
        try:
            while queue:
                pdu, respond, bind = queue.popleft()
                try:
                    await self._start(pdu, respond, bind)
                except Exception:
                    # Task root: answer the PDU (the provider delivers it again), keep pumping.
                    log.exception("%s: deliver_sm could not be handed to Kafka", bind)
                    self._answer(respond, bind, "error", CommandStatus.ESME_RX_T_APPN)
        finally:
            self._pump = None

    async def _start(self, pdu: DeliverSm, respond: Respond, bind: str) -> None:
        meaning = interpret(pdu, self._clock())
        kind, topic, key, event, ok = self._route(pdu, meaning)
        report = meaning if isinstance(meaning, DeliveryReport) else None
        taken = _Taken(respond, bind, kind, ok, report)
        await self._sink.enqueue(topic, key, dumps(event), functools.partial(self._acked, taken))

    def _acked(self, taken: _Taken, error: GatewayError | None) -> None:
        if isinstance(error, KafkaRecordRefusedError):
            log.error("%s: deliver_sm refused by Kafka for good, not stored: %s", taken.bind, error)
            self._answer(taken.respond, taken.bind, taken.kind, CommandStatus.ESME_RX_P_APPN)
            return
        if error is not None:
            log.warning("%s: deliver_sm not stored, asking to redeliver: %s", taken.bind, error)
            self._answer(taken.respond, taken.bind, taken.kind, CommandStatus.ESME_RX_T_APPN)
            return
        if taken.report is not None:
            self._count_report(taken.kind, taken.report)
        self._answer(taken.respond, taken.bind, taken.kind, taken.ok)

    def _answer(self, respond: Respond, bind: str, kind: str, status: int) -> None:
        self._deliver_sm(bind, kind, status_name(status)).inc()
        self._unanswered -= 1
        if not self._unanswered:
            self._idle.set()
        respond(status)

    def _count_report(self, kind: str, report: DeliveryReport) -> None:
        # Labels stay bounded: a stat or err code outside the provider's tables is "other".
        self._reports(kind, report.stat if report.stat in STAT_TO_STATUS else "other").inc()
        if report.err is None:
            return
        name = DELIVERY_ERRORS.get(report.err)
        self._errors(str(report.err) if name else "other", name or "other").inc()

    def _route(
        self,
        pdu: DeliverSm,
        meaning: DeliveryReport | IncomingMessage | IncomingPart | Unreadable,
    ) -> tuple[str, str, bytes | None, dict[str, Any], int]:
        if isinstance(meaning, DeliveryReport):
            key = meaning.message_id.encode()
            kind = "dlr" if meaning.hlr is None else "hlr"
            return kind, self._topics.dlr, key, dlr_event(meaning), CommandStatus.ESME_ROK
        if isinstance(meaning, IncomingMessage):
            event = incoming_event(meaning)
            key = meaning.phone.encode()
            return "incoming", self._topics.incoming, key, event, CommandStatus.ESME_ROK
        if isinstance(meaning, IncomingPart):
            # Stored for the reassembler, keyed by phone so a message's parts share a partition.
            record, key = part_record(meaning), meaning.phone.encode()
            return "incoming_part", self._topics.incoming_parts, key, record, CommandStatus.ESME_ROK
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
