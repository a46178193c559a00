"""The sender role stops with an error when its reassembler of long incoming SMS fails on its
own, instead of binding on and storing parts that nothing joins until a restart."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.config import Settings, TopicSettings
from gateway.kafka.records import Publisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.roles import sender as app
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.support import sender_settings

pytestmark = pytest.mark.kafka

PASSWORD = "rsm-pw"


class FailingReassembler:
    def __init__(
        self, settings: Settings, metrics: Metrics, publisher: Publisher, **_: object
    ) -> None:
        self.settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(1.0)
        raise RuntimeError("parts topic unreadable")


async def test_a_failed_reassembler_stops_the_sender_role_with_its_error(
    kafka: LocalKafka, topics: TopicSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "Reassembler", FailingReassembler)
    config = SimulatorSettings(accounts={"gateway": PASSWORD})
    async with SmppSimulator(config) as simulator:
        run = uuid.uuid4().hex[:6]
        settings = sender_settings(kafka, topics, simulator.port, f"reasm-{run}", PASSWORD)
        with pytest.raises(app.ReassemblyFailedError, match="parts topic unreadable"):
            await asyncio.wait_for(app.run_sender(settings, Metrics(), asyncio.Event()), 60)
        assert simulator.bound("gateway") == 0
