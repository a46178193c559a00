"""What the opt-out does with one record of ``smsc.incoming.v1`` (no Kafka or HTTP here).

1. The record must be an ``smsc.incoming/1`` event; anything else goes to the dead-letter
   topic with the reason, and the partition moves on.
2. Its text must be one of the keywords (:mod:`.keywords`); other SMS are left alone.
3. An SMS the ledger knows was acted on already (a replay after a restart or a rebalance) is
   not sent to the provider again.
4. phones.php ``add_black`` puts the phone on the blacklist with the configured type. The
   provider keeps one entry per phone, so adding it again (a crash between the call and the
   event) changes nothing. Errors a wait can cure (9, 4, the circuit open, no answer) are
   tried again, backing off, until the role stops; others end the opt-out ``failed``.
5. The ``smsc.opt-out/1`` event is published (keyed by phone) and the SMS is entered in the
   ledger. :meth:`OptOutService.handle` returns True only then, so the caller commits the
   record's offset only once its outcome is on Kafka.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from gateway.account.contacts import BlacklistType
from gateway.errors import GatewayError, KafkaUnavailableError
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.envelope import dumps, utc_now
from gateway.events.opt_out import OptOut, opt_out_event
from gateway.http_api.errors import ProviderApiError
from gateway.kafka.records import Publisher, Record
from gateway.logsetup import mask_phone
from gateway.settings.optout import OptOutSettings

from .keywords import KeywordMatcher
from .ledger import OptOutLedger
from .metrics import OptOutMetrics

log = logging.getLogger(__name__)

INCOMING_SCHEMA = "smsc.incoming/1"


class Blacklister(Protocol):
    async def add_black(self, phone: str, block: BlacklistType = BlacklistType.ALL) -> int:
        """The phone's blacklist entry id."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """The fields of an ``smsc.incoming/1`` event the opt-out reads."""

    event_id: str
    phone: str
    to: str
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Topics:
    opt_out: str
    dead_letter: str


def read_incoming(value: bytes | None) -> Incoming | str:
    """The event, or why the record is not one."""
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return "not JSON"
    if not isinstance(event, dict) or event.get("schema") != INCOMING_SCHEMA:
        return f"not an {INCOMING_SCHEMA} event"
    fields = [event.get(k) for k in ("event_id", "phone", "to", "text", "source")]
    if not all(isinstance(f, str) for f in fields) or not fields[0] or not fields[1]:
        return "event_id, phone, to, text or source missing or not text"
    return Incoming(*fields)  # type: ignore[arg-type]


class OptOutService:
    """See the module docstring."""

    def __init__(
        self,
        settings: OptOutSettings,
        ledger: OptOutLedger,
        blacklister: Blacklister,
        publisher: Publisher,
        *,
        topics: Topics,
        metrics: OptOutMetrics,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._matcher = KeywordMatcher(settings.keywords)
        self._ledger = ledger
        self._blacklister = blacklister
        self._publisher = publisher
        self._topics = topics
        self._metrics = metrics
        self._wall_clock = wall_clock

    async def handle(self, record: Record, stop: asyncio.Event) -> bool:
        """Act on one record; True once nothing is left to do for it (its offset may be
        committed), False when ``stop`` came first."""
        incoming = read_incoming(record.value)
        if isinstance(incoming, str):
            return await self._dead_letter(record, incoming, stop)
        keyword = self._matcher.match(incoming.text)
        if keyword is None:
            return True
        if incoming.event_id in self._ledger:
            self._metrics.outcomes("replayed").inc()
            return True
        opt_out = await self._blacklist(incoming, keyword, stop)
        if opt_out is None:
            return False
        event = opt_out_event(opt_out, self._wall_clock())
        if not await self._publish(self._topics.opt_out, incoming.phone.encode(), event, stop):
            return False
        self._ledger.add(incoming.event_id)
        self._metrics.outcomes(event["outcome"]).inc()
        log.info("opt-out of %s: %s", mask_phone(incoming.phone), event["outcome"])
        return True

    async def _blacklist(
        self, incoming: Incoming, keyword: str, stop: asyncio.Event
    ) -> OptOut | None:
        block = self._settings.blacklist_type
        made = OptOut(
            incoming.phone, keyword, incoming.event_id, incoming.source, incoming.to, block
        )
        delay = self._settings.retry_initial_seconds
        while True:
            try:
                entry = await self._blacklister.add_black(incoming.phone, BlacklistType(block))
            except GatewayError as exc:
                if not exc.retriable:
                    return _failed(made, exc)
                log.warning("opt-out blacklist call failed, trying again: %s", exc)
                self._metrics.retries("provider").inc()
                if not await _pause(stop, self._wait(delay, exc)):
                    return None
                delay = min(delay * 2, self._settings.retry_max_seconds)
                continue
            return dataclasses.replace(made, blacklist_id=entry)

    async def _dead_letter(self, record: Record, reason: str, stop: asyncio.Event) -> bool:
        log.warning("incoming %s:%d not acted on: %s", record.topic, record.offset, reason)
        event = dead_letter_event(
            role="poller",
            origin=Origin("kafka", record.topic, record.partition, record.offset),
            reason_code="optout_invalid_incoming",
            reason=f"opt-out: {reason}",
            key=record.key,
            value=record.value,
            occurred_at=self._wall_clock(),
        )
        return await self._publish(self._topics.dead_letter, record.key, event, stop)

    async def _publish(
        self, topic: str, key: bytes | None, event: dict[str, object], stop: asyncio.Event
    ) -> bool:
        """Publish until Kafka has it (True), or until ``stop`` (False)."""
        delay = self._settings.retry_initial_seconds
        while True:
            try:
                await self._publisher.publish(topic, key, dumps(event))
                return True
            except KafkaUnavailableError as exc:
                log.warning("opt-out publish to %s failed, trying again: %s", topic, exc)
                self._metrics.retries("kafka").inc()
                if not await _pause(stop, delay):
                    return False
                delay = min(delay * 2, self._settings.retry_max_seconds)

    def _wait(self, delay: float, exc: GatewayError) -> float:
        hint = getattr(exc, "retry_after_seconds", None) or 0.0
        return min(max(delay, hint), self._settings.retry_max_seconds)


def _failed(made: OptOut, exc: GatewayError) -> OptOut:
    code = exc.code if isinstance(exc, ProviderApiError) else None
    reason = getattr(exc, "reason", None) or "provider_error"
    log.error("opt-out of %s not blacklisted: %s", mask_phone(made.phone), exc)
    return dataclasses.replace(made, error=(str(reason), str(exc), code))


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; False when ``stop`` is set first."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return True
    return False
