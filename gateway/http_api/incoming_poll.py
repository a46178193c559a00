"""Incoming SMS by polling: ``get.php?get_answers=1`` to ``smsc.incoming/1`` with ``source: poll``.

Every ``incoming_interval_seconds`` the poller asks for up to ``incoming_batch`` messages
after the cursor (the highest provider id already published), for the last
``incoming_hours`` and, when set, to one of the account's numbers (``incoming_to_phone``).
A full page is followed at once by the next. Each message is published keyed by the
subscriber's phone, in id order; once Kafka acknowledged all of a page, the cursor moves to
its highest id and is saved on Kafka (:mod:`gateway.kafka.cursor`). A crash in between
publishes the page again after the restart, with the same ``event_id`` s: a numbered
message's id derives from the provider's id and the phone only, so it is also the one the
webhook gives the same message (:meth:`~gateway.events.delivery.IncomingMessage.event_id`).

The provider's answer is read as seed 001's example shows it: ascending ids after
``after_id``, the lowest first. The answers are sorted again here, and ids at or below the
cursor are left out, whatever order they come in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

from gateway.errors import KafkaUnavailableError
from gateway.events.delivery import IncomingMessage, incoming_event
from gateway.events.envelope import dumps, utc_now
from gateway.kafka.records import Publisher
from gateway.settings.http_api import PollerSettings

from .answers import IncomingAnswer
from .errors import HttpApiError
from .metrics import HttpApiMetrics

log = logging.getLogger(__name__)

SOURCE = "poll"


class InboxApi(Protocol):
    async def get_answers(
        self,
        *,
        after_id: int | None = None,
        cnt: int | None = None,
        hour: int | None = None,
        to_phone: str | None = None,
    ) -> list[IncomingAnswer]:
        """Incoming SMS after ``after_id``."""


class Cursor(Protocol):
    async def load(self) -> int | None:
        """The last position saved, None when there is none."""

    async def save(self, position: int) -> None:
        """Returns once the position is durable."""


def poll_incoming(answer: IncomingAnswer, zone: timezone, fetched_at: datetime) -> IncomingMessage:
    """The incoming message of one get_answers item; received at the provider's ``received``
    (read in the account's ``zone``), or when it was fetched if that is unreadable."""
    return IncomingMessage(
        source=SOURCE,
        phone=answer.phone,
        to=answer.to_phone,
        text=answer.message,
        received_at=(answer.received_at(zone) or fetched_at).astimezone(UTC),
        data_coding=None,
        raw=dict(answer.raw),
        incoming_id=str(answer.incoming_id),
    )


class IncomingPoller:
    """See the module docstring."""

    def __init__(
        self,
        api: InboxApi,
        cursor: Cursor,
        publisher: Publisher,
        *,
        topic: str,
        settings: PollerSettings,
        utc_offset_hours: float,
        metrics: HttpApiMetrics,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._api = api
        self._cursor = cursor
        self._publisher = publisher
        self._topic = topic
        self._settings = settings
        self._zone = timezone(timedelta(hours=utc_offset_hours))
        self._metrics = metrics
        self._wall_clock = wall_clock
        self.after_id: int | None = None
        self.loaded = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Load the cursor, then poll until ``stop``."""
        self.after_id = await self._cursor.load()
        self.loaded.set()
        log.info("polling incoming SMS after id %s", self.after_id)
        while not stop.is_set():
            pause = self._settings.incoming_interval_seconds
            try:
                if await self.poll_once():
                    continue  # a full page: more may be waiting
            except HttpApiError as exc:
                log.warning("get_answers failed: %s", exc)
                pause = max(pause, exc.retry_after_seconds or 0.0)
            except KafkaUnavailableError as exc:
                log.warning("incoming SMS not published, asking again next round: %s", exc)
            await _sleep_unless(stop, pause)

    async def poll_once(self) -> bool:
        """One request; publishes what is new and saves the cursor. True for a full page."""
        settings = self._settings
        answers = await self._api.get_answers(
            after_id=self.after_id,
            cnt=settings.incoming_batch,
            hour=settings.incoming_hours,
            to_phone=settings.incoming_to_phone,
        )
        fresh = sorted(
            (a for a in answers if self.after_id is None or a.incoming_id > self.after_id),
            key=lambda a: a.incoming_id,
        )
        if fresh:
            await self._publish(fresh)
            await self._cursor.save(fresh[-1].incoming_id)
            self.after_id = fresh[-1].incoming_id
            self._metrics.poller_incoming_cursor.set(self.after_id)
        return len(answers) >= settings.incoming_batch

    async def _publish(self, answers: Sequence[IncomingAnswer]) -> None:
        fetched_at = self._wall_clock()
        sends = []
        for answer in answers:
            message = poll_incoming(answer, self._zone, fetched_at)
            value = dumps(incoming_event(message))
            sends.append(self._publisher.publish(self._topic, message.phone.encode(), value))
        # Handed to the producer in id order; all acknowledged before the cursor moves.
        await asyncio.gather(*sends)
        self._metrics.poller_incoming.inc(len(answers))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
