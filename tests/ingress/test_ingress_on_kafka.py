"""The ingress on the real broker, called by the simulator the way the provider calls it:
every parameter lands in its event in every format and charset; forged and unsigned
callbacks get 403 and publish nothing; authentic but malformed ones reach the dead-letter
topic and get 400; path token, allowlist, size limit, probes and metrics; no secret logged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.ingress.service import Ingress
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import TopicSettings
from gateway.simulator.webhook import WebhookCaller
from gateway.simulator.webhook_request import (
    Notice,
    incoming_notice,
    status_notice,
    waitcall_notice,
)
from tests.eventcheck import validate_event
from tests.ingress.ingress_support import (
    HLR_PARAMS,
    INCOMING_PARAMS,
    SECRET,
    STATUS_PARAMS,
    VOICE_PARAMS,
    WAITCALL_PARAMS,
    form,
    read_topic,
    running_ingress,
    settle,
)

pytestmark = pytest.mark.kafka

TOKEN = "tok-3141"


def every_kind() -> list[Notice]:
    everything = {**STATUS_PARAMS, **HLR_PARAMS, **VOICE_PARAMS}
    status = {k: v for k, v in everything.items() if k not in {"id", "phone", "status"}}
    incoming = {k: v for k, v in INCOMING_PARAMS.items() if k not in {"phone", "mes", "to"}}
    return [
        status_notice(STATUS_PARAMS["id"], STATUS_PARAMS["phone"], 1, **status),
        incoming_notice(
            INCOMING_PARAMS["phone"], INCOMING_PARAMS["mes"], INCOMING_PARAMS["to"], **incoming
        ),
        waitcall_notice(WAITCALL_PARAMS["phone"], int(WAITCALL_PARAMS["ts"]), **VOICE_PARAMS),
    ]


def only(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(events) == 1, events
    validate_event(events[0])
    return events[0]


async def call(ingress: Ingress, query: str, notices: list[Notice], path: str = "") -> list[str]:
    url = f"http://127.0.0.1:{ingress.port}/smsc/callback{path}{query}"
    async with WebhookCaller(url, max_attempts=1) as caller:
        results = [await caller.deliver(notice) for notice in notices]
    return [r.outcome for r in results]


@pytest.mark.parametrize("fmt", ["", "&fmt=2", "&fmt=3"])
@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "utf-8"])
async def test_every_parameter_lands_in_its_event(
    kafka: LocalKafka, topics: TopicSettings, fmt: str, charset: str
) -> None:
    notices = every_kind()
    async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
        # The handler URL as the client enters it: a GET extra after "!", a POST extra after "?".
        query = f"!tenant=Север?charset={charset}{fmt}&sha1={SECRET}&region=Юг"
        assert await call(ingress, query, notices) == ["delivered"] * 3
    extras = {"tenant": "Север", "region": "Юг", "charset": charset}
    if fmt:
        extras["fmt"] = fmt[-1]
    dlr = only(await read_topic(kafka.bootstrap_servers, topics.dlr, 1))
    assert dlr["raw"] == {**dict(notices[0].fields), **extras}
    assert dlr["hlr"] == HLR_PARAMS
    assert dlr["raw"]["cmt"] == STATUS_PARAMS["cmt"]
    assert (dlr["source"], dlr["status"], dlr["err_name"]) == (
        "webhook",
        "delivered",
        "Status is not received",
    )
    incoming = only(await read_topic(kafka.bootstrap_servers, topics.incoming, 1))
    assert incoming["text"] == INCOMING_PARAMS["mes"]
    assert incoming["raw"] == {**dict(notices[1].fields), **extras}
    call_event = only(await read_topic(kafka.bootstrap_servers, topics.waitcall, 1))
    assert call_event["raw"] == {**dict(notices[2].fields), **extras}
    assert (call_event["callmenu"], call_event["ringtime"]) == ("1#2", "4")


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "crc32"])
async def test_each_signature_verifies_and_a_wrong_one_is_refused(
    kafka: LocalKafka, topics: TopicSettings, algorithm: str
) -> None:
    metrics = Metrics()
    async with running_ingress(kafka.bootstrap_servers, topics, metrics) as ingress:
        good = await call(ingress, f"?{algorithm}={SECRET}", every_kind())
        forged = await call(ingress, f"?{algorithm}=not-the-secret", every_kind())
    assert good == ["delivered"] * 3
    assert forged == ["gave_up"] * 3  # 403 each time
    # One event per kind: the forged copies were refused before anything was published.
    kinds = [topics.dlr, topics.incoming, topics.waitcall]
    events = await read_topic(kafka.bootstrap_servers, kinds, 4, wait_seconds=3)
    assert sorted(e["schema"] for e in events) == [
        "smsc.dlr/1",
        "smsc.incoming/1",
        "smsc.waitcall/1",
    ]
    assert await read_topic(kafka.bootstrap_servers, topics.dead_letter, 1, wait_seconds=1) == []
    failures = metrics.registry.get_sample_value(
        "smsc_ingress_signature_failures_total", {"algorithm": algorithm, "reason": "mismatch"}
    )
    assert failures == 3


async def post(ingress: Ingress, body: bytes, path: str = "/smsc/callback") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{ingress.port}{path}", data=body) as response,
    ):
        return response.status, await response.text()


async def test_unsigned_callbacks_follow_the_policy(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    body = form({"id": "1", "phone": "7999", "status": "1"})
    async with running_ingress(kafka.bootstrap_servers, topics) as strict:
        assert (await post(strict, body))[0] == 403
    await settle()
    assert await read_topic(kafka.bootstrap_servers, topics.dlr, 1, wait_seconds=1) == []
    metrics = Metrics()
    async with running_ingress(
        kafka.bootstrap_servers, topics, metrics, secret="", unsigned_policy="accept"
    ) as lenient:
        assert (await post(lenient, body))[0] == 200
    only(await read_topic(kafka.bootstrap_servers, topics.dlr, 1))
    sample = {"kind": "status"}
    assert metrics.registry.get_sample_value("smsc_ingress_unsigned_accepted_total", sample) == 1


async def test_authentic_but_malformed_goes_to_the_dead_letter_topic(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    bad_status = status_notice("4711", "79991234567", "delivered")
    async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
        url = f"http://127.0.0.1:{ingress.port}/smsc/callback?sha1={SECRET}"
        async with WebhookCaller(url, max_attempts=2, retry_interval_seconds=0.01) as caller:
            result = await caller.deliver(bad_status)
        forged_bad = form({"id": "1", "phone": "7", "status": "x", "sha1": "0" * 40})
        assert (await post(ingress, forged_bad))[0] == 403
        unreadable = await post(ingress, b'{"phone": "7", "mes": ')
    assert result.answers == (400, 400)  # the provider repeats it; each copy has one id
    assert unreadable[0] == 400
    assert "invalid_json" in unreadable[1]
    letters = await read_topic(kafka.bootstrap_servers, topics.dead_letter, 3)
    for letter in letters:
        validate_event(letter)
    by_code: dict[str, set[str]] = {}
    for letter in letters:  # keyless records spread over partitions: no order to rely on
        by_code.setdefault(letter["reason"]["code"], set()).add(letter["event_id"])
        assert (letter["origin"]["kind"], letter["role"]) == ("http", "ingress")
    assert len(letters) == 3
    assert set(by_code) == {"invalid_field", "invalid_json"}
    assert len(by_code["invalid_field"]) == 1  # the provider's two copies share one id
    assert await read_topic(kafka.bootstrap_servers, topics.dlr, 1, wait_seconds=1) == []


@pytest.fixture
async def guarded(kafka: LocalKafka, topics: TopicSettings) -> AsyncIterator[Ingress]:
    async with running_ingress(
        kafka.bootstrap_servers,
        topics,
        path_token=TOKEN,
        allowed_networks=("127.0.0.0/8", "::1/128"),
        max_body_bytes=1024,
    ) as ingress:
        yield ingress


async def test_path_token_size_limit_and_routes(
    guarded: Ingress, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (
        await call(guarded, f"?sha1={SECRET}", every_kind(), path=f"/{TOKEN}") == ["delivered"] * 3
    )
    signed = f"?sha1={SECRET}"
    assert await call(guarded, signed, every_kind()[:1], path="/wrong") == ["gave_up"]
    assert await call(guarded, signed, every_kind()[:1]) == ["gave_up"]  # the token left out
    statuses = [
        (await post(guarded, b"x" * 2048, f"/smsc/callback/{TOKEN}"))[0],
        (await post(guarded, b"", "/smsc/callback/wrong"))[0],
        (await post(guarded, b"", "/smsc/callback"))[0],
        (await post(guarded, b"", "/elsewhere"))[0],
    ]
    assert statuses == [413, 403, 403, 404]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "wrong path token" in logged
    assert SECRET not in logged
    assert TOKEN not in logged


async def test_peers_outside_the_allowlist_are_refused(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    async with running_ingress(
        kafka.bootstrap_servers, topics, allowed_networks=("10.0.0.0/8",)
    ) as ingress:
        assert await call(ingress, f"?sha1={SECRET}", every_kind()[:1]) == ["gave_up"]
    await settle()
    assert await read_topic(kafka.bootstrap_servers, topics.dlr, 1, wait_seconds=1) == []


async def test_probes_and_metrics(kafka: LocalKafka, topics: TopicSettings) -> None:
    async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
        await call(ingress, f"?md5={SECRET}", every_kind())
        await call(ingress, "?md5=forged", every_kind()[:1])
        base = f"http://127.0.0.1:{ingress.port}"
        async with aiohttp.ClientSession() as session:
            answers = {}
            for path in ("/healthz", "/readyz", "/metrics"):
                async with session.get(base + path) as response:
                    answers[path] = (response.status, await response.text())
            async with session.put(base + "/smsc/callback", data=b"") as response:
                put_status = response.status
    assert answers["/healthz"][0] == 200
    assert answers["/readyz"] == (200, "kafka writable\n")
    assert put_status == 405
    text = answers["/metrics"][1]
    for line in (
        'smsc_ingress_callbacks_total{kind="status",outcome="published"} 1.0',
        'smsc_ingress_callbacks_total{kind="incoming",outcome="published"} 1.0',
        'smsc_ingress_callbacks_total{kind="waitcall",outcome="published"} 1.0',
        'smsc_ingress_callbacks_total{kind="status",outcome="refused_signature"} 1.0',
        'smsc_ingress_signature_failures_total{algorithm="md5",reason="mismatch"} 1.0',
        'smsc_ingress_publish_latency_seconds_count{kind="status"} 1.0',
        "smsc_ingress_kafka_writable 1.0",
    ):
        assert line in text
