"""Phone confirmation, step 1: a request from ``smsc.call-confirm.v1`` gets its number.

Its phone is given a number by wait_call.php, and ``number_issued`` (request_id, tags, the
number, every number it could have been, the deadline) is published on ``smsc.waitcall.v1``,
keyed by the phone. A request the provider refuses ends ``rejected`` (a blacklisted phone:
error 5), one whose temporary errors outlast ``give_up_after_seconds`` ends ``failed``; an
invalid one is dead-lettered and, when its request_id can be read, ``rejected``. A request
already given a number or ended (the topic says so) is not asked about again. Kafka and the
HTTP API are reached through Protocols.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

from gateway.errors import KafkaUnavailableError
from gateway.events.call_confirm import (
    CallConfirmRequest,
    InvalidCallConfirm,
    parse_call_confirm,
)
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.envelope import dumps, utc_now
from gateway.events.waitcall import (
    FAILED,
    REJECTED,
    NumberIssued,
    Outcome,
    number_issued_event,
    outcome_event,
)
from gateway.http_api.answers import CallNumber
from gateway.http_api.errors import HttpApiError, ProviderApiError
from gateway.kafka.records import Publisher, Record
from gateway.settings.callconfirm import CallConfirmSettings

from .metrics import CallConfirmMetrics
from .waiting import sleep_unless

log = logging.getLogger(__name__)

ROLE = "poller"
# Request ids given a number by this process, until the book reads the number back.
_REMEMBER_ISSUED = 10000


class CallDesk(Protocol):
    async def wait_call(self, phone: str) -> CallNumber:
        """The number ``phone`` must call (wait_call.php)."""


class Issuer:
    """Handles one request record; see the module docstring."""

    def __init__(
        self,
        desk: CallDesk,
        publisher: Publisher,
        known: Callable[[str], bool],
        *,
        waitcall_topic: str,
        dead_letter_topic: str,
        settings: CallConfirmSettings,
        metrics: CallConfirmMetrics,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._desk = desk
        self._publisher = publisher
        self._known = known
        self._waitcall = waitcall_topic
        self._dead_letter = dead_letter_topic
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._issued: OrderedDict[str, None] = OrderedDict()
        self._asking: set[str] = set()

    async def handle(self, record: Record, stop: asyncio.Event) -> bool:
        """True once what the record leads to is on Kafka (or nothing was needed); False
        when ``stop`` came first (the record is then left for the next start)."""
        request = parse_call_confirm(record.value)
        if isinstance(request, InvalidCallConfirm):
            return await self._refuse(record, request, stop)
        request_id = request.request_id
        if self._known(request_id) or request_id in self._issued or request_id in self._asking:
            log.info("request %s already has a number or an outcome", request_id)
            return True
        self._asking.add(request_id)  # a copy of it in the same batch waits for nothing
        try:
            return await self._issue(request, stop)
        finally:
            self._asking.discard(request_id)

    async def _issue(self, request: CallConfirmRequest, stop: asyncio.Event) -> bool:
        event = await self._ask(request, stop)
        if event is None:
            return False
        if not await self._publish(request.phone.encode(), event, stop):
            return False
        if event["kind"] == "number_issued":
            self._remember(request.request_id)
            self._metrics.issued.inc()
        else:
            self._metrics.outcomes(event["kind"]).inc()
        return True

    async def _ask(self, request: CallConfirmRequest, stop: asyncio.Event) -> dict[str, Any] | None:
        """number_issued, or the outcome that ends the request; None when stopped first."""
        give_up = self._monotonic() + self._settings.give_up_after_seconds
        delay = self._settings.retry_initial_seconds
        while True:
            try:
                number = await self._desk.wait_call(request.phone)
            except HttpApiError as exc:
                if not exc.retriable:
                    return outcome_event(self._ended(REJECTED, request, exc))
                wait = max(exc.retry_after_seconds or 0.0, delay)
                if self._monotonic() + wait > give_up:
                    return outcome_event(self._ended(FAILED, request, exc))
                log.warning("wait_call again in %.1f s: %s", wait, exc)
                if not await sleep_unless(stop, wait):
                    return None
                delay = min(delay * 2, self._settings.retry_max_seconds)
                continue
            return number_issued_event(self._issued_number(request, number))

    def _issued_number(self, request: CallConfirmRequest, number: CallNumber) -> NumberIssued:
        now = self._clock()
        return NumberIssued(
            request_id=request.request_id,
            phone=request.phone,
            call_to=number.call_to,
            all_phones=number.all_phones,
            issued_at=now,
            deadline=now + timedelta(seconds=self._settings.deadline_seconds),
            tags=request.tags,
            raw=MappingProxyType({"phone": number.call_to, "all_phones": list(number.all_phones)}),
        )

    def _ended(self, kind: str, request: CallConfirmRequest, exc: HttpApiError) -> Outcome:
        return Outcome(
            kind=kind,
            request_id=request.request_id,
            phone=request.phone,
            decided_at=self._clock(),
            tags=request.tags,
            reason_code=exc.reason,
            reason=str(exc),
            error_code=exc.code if isinstance(exc, ProviderApiError) else None,
        )

    async def _refuse(
        self, record: Record, invalid: InvalidCallConfirm, stop: asyncio.Event
    ) -> bool:
        now = self._clock()
        dead = dead_letter_event(
            role=ROLE,
            origin=Origin("kafka", record.topic, record.partition, record.offset),
            reason_code=invalid.code,
            reason=invalid.message,
            key=record.key,
            value=record.value,
            occurred_at=now,
        )
        if not await self._publish(record.key, dead, stop, topic=self._dead_letter):
            return False
        if invalid.request_id is None:
            return True
        outcome = Outcome(
            kind=REJECTED,
            request_id=invalid.request_id,
            phone=invalid.phone or "",
            decided_at=now,
            reason_code=invalid.code,
            reason=invalid.message,
        )
        key = (invalid.phone or invalid.request_id).encode()
        if not await self._publish(key, outcome_event(outcome), stop):
            return False
        self._metrics.outcomes(REJECTED).inc()
        return True

    async def _publish(
        self, key: bytes | None, event: dict[str, Any], stop: asyncio.Event, *, topic: str = ""
    ) -> bool:
        """Publish until Kafka has it; False when ``stop`` came first."""
        delay = self._settings.retry_initial_seconds
        while True:
            try:
                await self._publisher.publish(topic or self._waitcall, key, dumps(event))
            except KafkaUnavailableError as exc:
                log.warning("call confirmation not published, trying again: %s", exc)
                if not await sleep_unless(stop, delay):
                    return False
                delay = min(delay * 2, self._settings.retry_max_seconds)
                continue
            return True

    def _remember(self, request_id: str) -> None:
        self._issued[request_id] = None
        while len(self._issued) > _REMEMBER_ISSUED:
            self._issued.popitem(last=False)
