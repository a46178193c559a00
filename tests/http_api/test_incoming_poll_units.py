"""The incoming poller with plain objects: pages in id order, the cursor saved only after
Kafka has the page, a page published again after a failure carries the same event_ids, and
get.php's parameters follow the settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.errors import KafkaUnavailableError
from gateway.events.envelope import rfc3339
from gateway.http_api.answers import IncomingAnswer, parse_answers, provider_time
from gateway.http_api.errors import TooManyRequestsError
from gateway.http_api.incoming_poll import IncomingPoller, poll_incoming
from gateway.http_api.metrics import HttpApiMetrics
from gateway.metrics import Metrics
from gateway.settings.http_api import PollerSettings
from tests.sender.fakes import FakePublisher

TOPIC = "smsc.incoming.v1"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def answer(incoming_id: int, phone: str = "79001234567") -> IncomingAnswer:
    return IncomingAnswer(
        incoming_id, phone, f"text {incoming_id}", "79309990000", "01.01.2030 03:00:05", None
    )


class Inbox:
    """get.php as a list: what is after after_id, ``cnt`` at a time, possibly reversed."""

    def __init__(self, ids: list[int], *, newest_first: bool = False) -> None:
        self.ids = ids
        self.newest_first = newest_first
        self.requests: list[dict[str, Any]] = []
        self.failures: list[BaseException] = []

    async def get_answers(
        self,
        *,
        after_id: int | None = None,
        cnt: int | None = None,
        hour: int | None = None,
        to_phone: str | None = None,
    ) -> list[IncomingAnswer]:
        self.requests.append({"after_id": after_id, "cnt": cnt, "hour": hour, "to": to_phone})
        if self.failures:
            raise self.failures.pop(0)
        found = [answer(i) for i in self.ids if after_id is None or i > after_id][:cnt]
        return found[::-1] if self.newest_first else found


class Cursor:
    def __init__(self, position: int | None = None) -> None:
        self.position = position
        self.saved: list[int] = []
        self.failing = False
        self.moved = asyncio.Event()

    async def load(self) -> int | None:
        return self.position

    async def save(self, position: int) -> None:
        if self.failing:
            raise KafkaUnavailableError("not acknowledged")
        self.position = position
        self.saved.append(position)
        self.moved.set()


def poller(
    inbox: Inbox, cursor: Cursor, publisher: FakePublisher, **settings: Any
) -> IncomingPoller:
    return IncomingPoller(
        inbox,
        cursor,
        publisher,
        topic=TOPIC,
        settings=PollerSettings(**({"incoming_batch": 3} | settings)),
        utc_offset_hours=3.0,
        metrics=HttpApiMetrics(Metrics()),
        wall_clock=lambda: NOW,
    )


async def test_pages_are_published_in_id_order_and_the_cursor_follows() -> None:
    inbox, cursor, publisher = (
        Inbox([11, 12, 13, 14, 15], newest_first=True),
        Cursor(),
        FakePublisher(),
    )
    polling = poller(inbox, cursor, publisher, incoming_to_phone="79309990000", incoming_hours=5)
    polling.after_id = await cursor.load()
    assert await polling.poll_once() is True  # a full page: more may wait
    assert await polling.poll_once() is False
    assert [e["incoming_id"] for e in publisher.on(TOPIC)] == ["11", "12", "13", "14", "15"]
    assert cursor.saved == [13, 15]
    assert inbox.requests[1] == {"after_id": 13, "cnt": 3, "hour": 5, "to": "79309990000"}
    keys = {p.key for p in publisher.published}
    assert keys == {b"79001234567"}


async def test_the_cursor_moves_only_once_kafka_has_the_whole_page() -> None:
    inbox, cursor, publisher = Inbox([1, 2, 3]), Cursor(), FakePublisher()
    polling = poller(inbox, cursor, publisher)
    publisher.failing = True
    with pytest.raises(KafkaUnavailableError):
        await polling.poll_once()
    assert (cursor.saved, polling.after_id) == ([], None)
    publisher.failing = False
    cursor.failing = True  # published, but the cursor is not saved: as a crash would leave it
    with pytest.raises(KafkaUnavailableError):
        await polling.poll_once()
    first = [e["event_id"] for e in publisher.on(TOPIC)]
    cursor.failing = False
    await polling.poll_once()
    again = [e["event_id"] for e in publisher.on(TOPIC)][len(first) :]
    assert first == again, "a page published again carries the same event_ids"
    assert (cursor.saved, polling.after_id) == ([3], 3)


async def test_a_restart_resumes_after_the_saved_cursor() -> None:
    inbox, publisher, cursor = Inbox([4, 5, 6, 7]), FakePublisher(), Cursor(5)
    polling = poller(inbox, cursor, publisher)
    stop = asyncio.Event()
    task = asyncio.create_task(polling.run(stop))
    await asyncio.wait_for(cursor.moved.wait(), 5)
    stop.set()
    await task
    assert inbox.requests[0]["after_id"] == 5
    assert [e["incoming_id"] for e in publisher.on(TOPIC)] == ["6", "7"]


async def test_an_api_error_waits_its_hint_before_asking_again() -> None:
    inbox, publisher = Inbox([1]), FakePublisher()
    inbox.failures.append(TooManyRequestsError(9, "wait", script="get", retry_after_seconds=0.3))
    cursor = Cursor()
    polling = poller(inbox, cursor, publisher, incoming_interval_seconds=0.01)
    stop = asyncio.Event()
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(polling.run(stop))
    await asyncio.wait_for(cursor.moved.wait(), 5)
    stop.set()
    await task
    assert asyncio.get_running_loop().time() - started >= 0.3


def test_a_polled_message_reads_the_providers_time_in_the_accounts_zone() -> None:
    (item,) = parse_answers(
        [
            {
                "id": "17",
                "received": "01.01.2030 03:00:05",
                "phone": "+79001234567",
                "message": "Да",
                "to_phone": "79309990000",
                "sent": "01.01.2030 03:00:01",
            }
        ]
    )
    message = poll_incoming(item, timezone(timedelta(hours=3)), NOW)
    assert (message.source, message.incoming_id, message.phone) == ("poll", "17", "79001234567")
    assert rfc3339(message.received_at) == "2030-01-01T00:00:05.000Z"
    unreadable = poll_incoming(IncomingAnswer(1, "7", "", "", "yesterday", None), UTC, NOW)
    assert unreadable.received_at == NOW
    assert provider_time("31.02.2030 00:00:00", UTC) is None
