"""Reconciliation by status queries (:class:`Reconciler`) and the balance watch: the pieces
the ``poller`` role (:mod:`gateway.roles.poller`) runs; see that module for the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from gateway.errors import KafkaUnavailableError
from gateway.events.delivery import dlr_event
from gateway.events.envelope import dumps, utc_now
from gateway.kafka.records import Publisher
from gateway.settings.http_api import PollerSettings

from .client import SmscHttpClient
from .errors import HttpApiError
from .metrics import HttpApiMetrics
from .pending import PendingMessage, PendingSet
from .replies import MessageStatus
from .reports import poll_report

log = logging.getLogger(__name__)


class Reconciler:
    """Queries the provider about pending messages and publishes what it answers."""

    def __init__(
        self,
        client: SmscHttpClient,
        pending: PendingSet,
        publisher: Publisher,
        *,
        dlr_topic: str,
        settings: PollerSettings,
        metrics: HttpApiMetrics,
        clock: Callable[[], float] = time.time,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._pending = pending
        self._publisher = publisher
        self._dlr_topic = dlr_topic
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_stat: dict[tuple[str, str], str] = {}

    async def run(self, stop: asyncio.Event, ready: Callable[[], Awaitable[None]]) -> None:
        """Poll every ``interval_seconds`` until ``stop``, from when ``ready()`` returns."""
        if not await until_stopped(stop, ready()):
            return
        while not stop.is_set():
            try:
                await self.poll_once()
            except KafkaUnavailableError as exc:
                log.warning("poll round not published, retrying next round: %s", exc)
            await until_stopped(stop, asyncio.sleep(self._settings.interval_seconds))

    async def poll_once(self) -> int:
        """One round: one status query for what is due; returns the reports published."""
        due = self._pending.take_due(self._clock(), self._settings.batch_size)
        self._metrics.poller_pending.set(len(self._pending))
        self._forget_finished()
        if not due:
            return 0
        try:
            statuses = await self._client.statuses([(e.message_id, e.phone) for e in due])
        except HttpApiError as exc:
            log.warning("status query of %d messages failed: %s", len(due), exc)
            self._pending.returned(due)
            return 0
        return await self._publish_all(due, match(due, statuses))

    async def _publish_all(
        self, due: list[PendingMessage], answers: dict[tuple[str, str], MessageStatus]
    ) -> int:
        published = 0
        for position, entry in enumerate(due):
            answer = answers.get(entry.key)
            try:
                published += await self._publish(entry, answer)
            except KafkaUnavailableError:
                self._pending.returned(due[position:])
                raise
        return published

    async def _publish(self, entry: PendingMessage, answer: MessageStatus | None) -> int:
        if answer is None:  # not in the answer: ask again later
            self._pending.polled(entry, final=False, now=self._clock())
            return 0
        report = poll_report(answer, self._wall_clock())
        changed = self._last_stat.get(entry.key) != report.stat
        if changed:
            event = dlr_event(report)
            await self._publisher.publish(self._dlr_topic, report.message_id.encode(), dumps(event))
            self._metrics.poller_reports(report.status).inc()
        self._pending.polled(entry, final=report.final, now=self._clock())
        if report.final:
            self._last_stat.pop(entry.key, None)
        else:
            self._last_stat[entry.key] = report.stat
        return int(changed)

    def _forget_finished(self) -> None:
        # Entries that left the set another way (a final report, eviction, age).
        for key in [k for k in self._last_stat if k not in self._pending]:
            del self._last_stat[key]


def match(
    due: Sequence[PendingMessage], statuses: Sequence[MessageStatus]
) -> dict[tuple[str, str], MessageStatus]:
    """Each due entry's answer, by (id, phone); by id alone where the provider wrote the phone
    differently and the id is unique in the batch. Answers carry the entry's phone."""
    by_key = {(s.message_id, s.phone): s for s in statuses}
    ids = Counter(e.message_id for e in due)
    by_id = {s.message_id: s for s in statuses if ids[s.message_id] == 1}
    found: dict[tuple[str, str], MessageStatus] = {}
    for entry in due:
        answer = by_key.get(entry.key) or by_id.get(entry.message_id)
        if answer is not None:
            found[entry.key] = dataclasses.replace(answer, phone=entry.phone)
    return found


async def watch_balance(
    client: SmscHttpClient, interval_seconds: float, stop: asyncio.Event
) -> None:
    """Query the balance every ``interval_seconds`` until ``stop`` (the client sets the gauge)."""
    while not stop.is_set():
        try:
            await client.balance()
        except HttpApiError as exc:
            log.warning("balance query failed: %s", exc)
        await until_stopped(stop, asyncio.sleep(interval_seconds))


async def until_stopped(stop: asyncio.Event, awaitable: Awaitable[None]) -> bool:
    """Await ``awaitable`` unless ``stop`` comes first (then cancel it); True if it finished."""
    work = asyncio.ensure_future(awaitable)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return work in done
