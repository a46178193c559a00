"""The sender role stops with an error when its reassembler of long incoming SMS fails on its
own, instead of binding on and storing parts that nothing joins until a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from gateway.kafka.batching import BatchingPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.roles.sender import ReassemblyFailedError, build_sender, serve_sender
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.support import sender_settings

pytestmark = pytest.mark.kafka

PASSWORD = "rsm-pw"


class FailingReassembler:
    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(1.0)
        raise RuntimeError("parts topic unreadable")


async def test_a_failed_reassembler_stops_the_sender_role_with_its_error(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    config = SimulatorSettings(accounts={"gateway": PASSWORD})
    async with SmppSimulator(config) as simulator:
        run = uuid.uuid4().hex[:6]
        settings = sender_settings(kafka, topics, simulator.port, f"reasm-{run}", PASSWORD)
        metrics = Metrics()
        publisher = BatchingPublisher(settings.kafka, metrics)
        await publisher.start()
        parts = build_sender(settings, metrics, publisher)
        parts = dataclasses.replace(parts, reassembler=FailingReassembler())
        serving = serve_sender(settings, metrics, asyncio.Event(), publisher, parts)
        with pytest.raises(ReassemblyFailedError, match="parts topic unreadable"):
            await asyncio.wait_for(serving, 60)
        assert simulator.bound("gateway") == 0
