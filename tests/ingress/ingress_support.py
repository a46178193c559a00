"""Shared by the ingress tests: the seed's callbacks with every parameter, form encoding, a
running ingress on a real broker, and a reader of its topics."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote_from_bytes

import orjson
from aiokafka import AIOKafkaConsumer

from gateway.ingress.service import Ingress
from gateway.kafka.batching import BatchingPublisher
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings, Settings, TopicSettings
from gateway.settings.ingress import IngressSettings

SECRET = "s3cr3t-Key_1"

# Every parameter the webhook seed lists, per kind, with a plausible value.
STATUS_PARAMS: Mapping[str, str] = {
    "id": "4711",
    "phone": "79991234567",
    "status": "1",
    "time": "01.02.24 10:11:12",
    "ts": "1706782272",
    "err": "245",
    "syserr": "op-17",
    "cnt": "2",
    "type": "1",
    "cost": "3.90",
    "flag": "1825",  # bits 0-3 = 1 flash, 5 second balance, 8 template, 10-9 = 11 advertising
    "sender": "Shop",
    "dtmf": "12*",
    "cmt": "Заказ 77\novertime: 01:02",
}
HLR_PARAMS: Mapping[str, str] = {
    "imsi": "250023012345678",
    "msc": "79232510066",
    "mcc": "250",
    "mnc": "02",
    "cn": "Россия",
    "net": "МегаФон",
    "rcn": "Казахстан",
    "rnet": "Beeline KZ",
}
VOICE_PARAMS: Mapping[str, str] = {"calltime": "00:17", "callmenu": "1#2", "ringtime": "4"}
INCOMING_PARAMS: Mapping[str, str] = {
    "id": "9001",
    "sms_id": "4711",
    "phone": "79991234567",
    "mes": "Привет! Ответ на заказ 77: да, ёлки",
    "to": "79000000001",
    "smsc": "79168999100",
    "sent": "1706782200",
    "time": "1706782210",
}
WAITCALL_PARAMS: Mapping[str, str] = {"waitcall": "1", "phone": "79991234567", "ts": "1706782300"}


def form(params: Mapping[str, str], charset: str = "windows-1251") -> bytes:
    """Form-encode ``params`` the way the provider does: values in ``charset``."""
    return "&".join(
        f"{quote_from_bytes(k.encode(charset))}={quote_from_bytes(v.encode(charset))}"
        for k, v in params.items()
    ).encode("ascii")


def settings_for(bootstrap: str, **ingress: Any) -> tuple[KafkaSettings, IngressSettings]:
    kafka = dataclasses.replace(
        Settings().kafka, bootstrap_servers=bootstrap, request_timeout_seconds=5.0
    )
    options = {"host": "127.0.0.1", "port": 0, "secret": SECRET, **ingress}
    return kafka, dataclasses.replace(IngressSettings(), **options)


@asynccontextmanager
async def running_ingress(
    bootstrap: str, topics: TopicSettings, metrics: Metrics | None = None, **ingress: Any
) -> AsyncIterator[Ingress]:
    """An ingress with a real producer, on a free port, stopped (and flushed) on exit."""
    kafka, settings = settings_for(bootstrap, **ingress)
    metrics = metrics or Metrics()
    publisher = BatchingPublisher(
        kafka, metrics, linger_ms=round(settings.publish_linger_seconds * 1000)
    )
    await publisher.start()
    try:
        async with Ingress(settings, topics, publisher, metrics) as running:
            yield running
    finally:
        await publisher.stop()


async def read_topic(
    bootstrap: str, topic: str | list[str], want: int, wait_seconds: float = 20.0
) -> list[dict[str, Any]]:
    """Events on ``topic`` (or topics) from the start, once ``want`` arrived or the time is
    up."""
    names = [topic] if isinstance(topic, str) else topic
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while len(events) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            events += [orjson.loads(m.value) for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()
    return events


async def settle() -> None:
    """Let a topic that should stay empty show it has stayed empty."""
    await asyncio.sleep(1.0)


class IngressThread:
    """An ingress on its own event loop in a thread, for synchronous tests (hypothesis)."""

    def __init__(self, bootstrap: str, topics: TopicSettings, **ingress: Any) -> None:
        self._args = (bootstrap, topics)
        self._options = ingress
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ingress-under-test")
        self.port = 0

    def __enter__(self) -> IngressThread:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the ingress did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the test thread
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_ingress(*self._args, **self._options) as ingress:
            self.port = ingress.port
            self._ready.set()
            await self._stop.wait()
