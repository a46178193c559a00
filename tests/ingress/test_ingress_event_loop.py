"""The ingress's event loop: uvloop by default, asyncio's on request, and the whole path (a
signed callback answered 200 once its event is on Kafka) on uvloop against the real broker."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import uvloop

from gateway.ingress.loop import loop_factory
from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.settings.ingress import IngressSettings
from gateway.simulator.webhook_request import HandlerUrl, build_request, status_notice
from tests.eventcheck import validate_event
from tests.ingress.ingress_support import SECRET, read_topic, running_ingress


def test_uvloop_is_the_default_and_asyncio_can_be_chosen() -> None:
    factory = loop_factory(IngressSettings().event_loop)
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    assert loop_factory("asyncio") is None  # asyncio.Runner's own loop


@pytest.mark.kafka
def test_a_callback_is_stored_and_answered_on_uvloop(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    async def scenario() -> tuple[int, type[asyncio.AbstractEventLoop]]:
        async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
            url = f"http://127.0.0.1:{ingress.port}/smsc/callback?sha1={SECRET}"
            request = build_request(
                HandlerUrl.parse(url), status_notice("8801", "79990001122", 1, ts=1_700_000_000)
            )
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    request.url, data=request.body, headers={"Content-Type": request.content_type}
                ) as response,
            ):
                status = response.status
        return status, type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
        status, loop_type = runner.run(scenario())
        events = runner.run(read_topic(kafka.bootstrap_servers, topics.dlr, 1))
    assert loop_type is uvloop.Loop
    assert status == 200
    assert [(e["message_id"], e["phone"], e["status"]) for e in events] == [
        ("8801", "79990001122", "delivered")
    ]
    validate_event(events[0])
