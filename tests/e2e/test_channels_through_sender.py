"""Every channel and every kind of invalid request, through the sender to the simulator.

The sender runs in-process against the real broker and the SMSC simulator; each request's
result is read back from Kafka and compared with what the simulator actually received.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.roles.sender import run_sender
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.textcoding import decode_text
from tests.e2e.support import results_by_request, sender_settings

pytestmark = pytest.mark.kafka

LONG_TEXT = "Доставка заказа №1042 перенесена на завтра. " * 4  # UCS2, three parts

# (name, request fields, the text the provider must receive)
VALID: list[tuple[str, dict[str, Any], str]] = [
    ("sms", {"text": "Hello {world} €"}, "Hello {world} €"),
    ("flash", {"channel": "flash", "text": "Flash!"}, "Flash!"),
    ("viber", {"channel": "viber", "text": "Hi"}, "__VIBER__: Hi"),
    ("social", {"channel": "social", "text": "Hi"}, "__SOC__: Hi"),
    (
        "mail",
        {"channel": "mail", "text": "Body", "provider_options": {"subject": "Subj"}},
        "__MAIL__: Body\nsubj:Subj",
    ),
    (
        "call",
        {"channel": "call", "text": "Your code 1234", "provider_options": {"voice": "w,en"}},
        "__CALL__: Your code 1234\nvoice:w,en",
    ),
    ("telegram_code", {"channel": "telegram_code", "text": "482913"}, "__TGM__: 482913"),
    (
        "telegram_bot",
        {"channel": "telegram_bot", "text": "Hi", "provider_options": {"bot": "@shop_bot"}},
        "__BOT__: Hi\nbot:@shop_bot",
    ),
    ("hlr", {"channel": "hlr", "text": "x"}, "__HLR__"),
    ("ping", {"channel": "ping", "text": "x"}, "__PING__"),
    ("comment", {"text": "Hi", "comment": "order 1042"}, "Hi\n~~~\norder 1042"),
]

# (name, request fields, reason code)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("short tgm code", {"channel": "telegram_code", "text": "12"}, "invalid_telegram_code"),
    ("mail without subject", {"channel": "mail", "text": "Body"}, "missing_subject"),
    (
        "bad voice",
        {"channel": "call", "text": "x", "provider_options": {"voice": "robot"}},
        "invalid_voice",
    ),
    ("bot without name", {"channel": "telegram_bot", "text": "Hi"}, "missing_bot"),
    (
        "unknown option",
        {"text": "Hi", "provider_options": {"colour": "red"}},
        "unknown_provider_option",
    ),
    (
        "gsm only but Cyrillic",
        {"text": "Привет", "provider_options": {"encoding": "gsm7"}},
        "text_not_encodable",
    ),
    ("comment on a call", {"channel": "call", "text": "x", "comment": "c"}, "comment_not_allowed"),
    ("prefix in an sms", {"text": "__VIBER__: sneaky"}, "reserved_prefix"),
    ("bad phone", {"recipients": ["12ab"]}, "invalid_phone"),
    ("bad sender id", {"sender_id": "A sender name that is far too long"}, "invalid_sender_id"),
]


def request(run: str, index: int, fields: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema": "smsc.send-request/1",
        "request_id": f"{run}-{index}",
        "recipients": [f"+7907{index:07d}"],
        "text": "placeholder",
    }
    return base | fields


async def test_every_channel_and_invalid_request_through_the_sender(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    run = uuid.uuid4().hex[:6]
    cases = [(name, fields) for name, fields, _ in VALID + INVALID]
    cases.append(("long", {"text": LONG_TEXT}))
    requests = [request(run, i, fields) for i, (_, fields) in enumerate(cases)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    for item in requests:
        await producer.send(topics.send, orjson.dumps(item), key=item["request_id"].encode())
    await producer.stop()

    config = SimulatorSettings(accounts={"gateway": "pw"}, rate_limit_per_second=None)
    async with SmppSimulator(config) as simulator:
        settings = sender_settings(kafka, topics, simulator.port, f"channels-{run}", "pw")
        stop = asyncio.Event()
        sender = asyncio.create_task(run_sender(settings, Metrics(), stop))
        results = await results_by_request(kafka, topics.send_results, len(requests))
        stop.set()
        await asyncio.wait_for(sender, 60)
        received: dict[str, list[Any]] = {}
        for record in simulator.submits:
            received.setdefault(record.destination_addr, []).append(record)

    assert len(results) == len(requests)
    for index, (name, _, expected_text) in enumerate(VALID):
        result = results[f"{run}-{index}"]
        phone = f"7907{index:07d}"
        assert result["outcome"] == "accepted", (name, result)
        (record,) = received[phone]
        assert decode_text(record.short_message, record.data_coding) == expected_text, name
    flash = received[f"7907{1:07d}"][0]
    assert flash.data_coding & 0x10, "flash SMS carry message class 0"
    for offset, (name, _, code) in enumerate(INVALID):
        index = len(VALID) + offset
        result = results[f"{run}-{index}"]
        assert result["outcome"] == "rejected", (name, result)
        assert result["error"]["code"] == code, name
        assert f"7907{index:07d}" not in received, f"{name}: nothing may be sent"
    long_index = len(cases) - 1
    long_result = results[f"{run}-{long_index}"]
    parts = received[f"7907{long_index:07d}"]
    assert long_result["outcome"] == "accepted"
    assert len(parts) == 3
    assert long_result["recipients"][0]["parts"] == 3
    assert all(part.short_message[:1] == b"\x05" for part in parts), "UDH on every part"
