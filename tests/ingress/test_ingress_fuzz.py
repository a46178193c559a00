"""Fuzzing the running ingress on the real broker with hypothesis.

Random bodies, query strings, methods, content types and charsets never get a 500 (nor any
other 5xx: Kafka is up), and never stop the server. Valid callbacks with random content, in
a random charset, format, signature algorithm, with random extra URL parameters and random
headers, each get 200 and each lands on Kafka: none is lost.
"""

from __future__ import annotations

import asyncio
import string
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingress.callback import parse_callback
from gateway.ingress.mapping import callback_event
from gateway.ingress.params import CallbackRequest, Rejection
from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator.webhook_request import (
    HandlerUrl,
    Notice,
    build_request,
    incoming_notice,
    status_notice,
    waitcall_notice,
)
from tests.eventcheck import validate_event
from tests.ingress.ingress_support import SECRET, IngressThread, read_topic

pytestmark = pytest.mark.kafka

Category = Literal["Cs", "Cc"]  # Unicode categories left out of generated text
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " ;=/-_.,", max_size=60).map(
    str.strip
)
digits = st.text(alphabet=string.digits, min_size=1, max_size=15)


def text_in(charset: str, fmt: int) -> st.SearchStrategy[str]:
    # XML 1.0 cannot carry most control characters, so the provider could not send them.
    excluded: tuple[Category, ...] = ("Cs", "Cc") if fmt == 2 else ("Cs",)
    chars = st.characters(codec=charset, exclude_categories=excluded)
    return st.text(alphabet=st.one_of(chars, st.sampled_from("\n\t")), max_size=80)


@st.composite
def valid_callbacks(draw: st.DrawFn) -> tuple[HandlerUrl, Notice, dict[str, str]]:
    charset = draw(st.sampled_from(["windows-1251", "koi8-r", "utf-8", ""]))
    fmt = draw(st.sampled_from([0, 2, 3]))
    algorithm = draw(st.sampled_from(["md5", "sha1", "crc32"]))
    query = f"?{algorithm}={SECRET}" + (f"&charset={charset}" if charset else "")
    query += f"&fmt={fmt}" if fmt else ""
    extra = draw(st.sampled_from(["", "!x_get=1", "!x_get=a&x_other"]))
    handler = HandlerUrl.parse(f"http://placeholder/smsc/callback{extra}{query}&x_tail=t")
    text = text_in(handler.charset, fmt)
    kind = draw(st.sampled_from(["status", "incoming", "waitcall"]))
    phone = draw(digits)
    if kind == "status":
        status = draw(st.sampled_from([-3, -1, 0, 1, 2, 3, 4, 20, 25]))
        notice = status_notice(draw(digits), phone, status, cmt=draw(text), err=draw(digits))
    elif kind == "incoming":
        notice = incoming_notice(phone, draw(text), draw(digits), id=draw(digits))
    else:
        notice = waitcall_notice(phone, draw(st.integers(0, 2**40)), callmenu=draw(text))
    headers = {"Content-Type": draw(HEADER_TEXT), "X-Junk": draw(HEADER_TEXT)}
    return handler, notice, headers


def event_id_of(handler: HandlerUrl, notice: Notice) -> tuple[str, str]:
    request = build_request(handler, notice)
    query = request.url.partition("?")[2].encode()
    callback = parse_callback(CallbackRequest("POST", query, request.body), "windows-1251")
    assert not isinstance(callback, Rejection), callback
    routed = callback_event(callback, datetime.now(UTC))
    return routed.kind.value, str(routed.event["event_id"])


def test_random_requests_never_get_a_5xx_and_valid_callbacks_all_land(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    expected: dict[str, set[str]] = {"status": set(), "incoming": set(), "waitcall": set()}
    with (
        IngressThread(kafka.bootstrap_servers, topics, max_body_bytes=4096) as ingress,
        httpx.Client(base_url=f"http://127.0.0.1:{ingress.port}", timeout=30) as client,
    ):

        @FUZZ
        @given(
            method=st.sampled_from(["POST", "GET"]),
            query=st.binary(max_size=120),
            body=st.one_of(
                st.binary(max_size=600),
                st.sampled_from([b"{", b"<", b"<data>", b'{"mes":', b"mes=", b"waitcall="]).flatmap(
                    lambda head: st.binary(max_size=200).map(lambda tail: head + tail)
                ),
                st.binary(min_size=4097, max_size=5000),
            ),
            content_type=HEADER_TEXT,
            charset=st.sampled_from(["", "utf-8", "koi8-r", "windows-1251", "x-junk"]),
        )
        def garbage(
            method: str, query: bytes, body: bytes, content_type: str, charset: str
        ) -> None:
            path = "/smsc/callback?" + quote_from_bytes(query)
            path += f"&charset={charset}" if charset else ""
            headers = {"Content-Type": content_type}
            content = body if method == "POST" else None
            answer = client.request(method, path, content=content, headers=headers)
            assert answer.status_code in {400, 403, 413}, (answer.status_code, answer.text)

        @FUZZ
        @given(valid_callbacks())
        def valid(case: tuple[HandlerUrl, Notice, dict[str, str]]) -> None:
            handler, notice, headers = case
            request = build_request(handler, notice)
            path = request.url.removeprefix("http://placeholder")
            answer = client.post(path, content=request.body, headers=headers)
            assert answer.status_code == 200, (answer.status_code, answer.text)
            kind, event_id = event_id_of(handler, notice)
            expected[kind].add(event_id)

        garbage()
        valid()
        assert client.get("/healthz").status_code == 200  # still serving

    for kind, topic in (("status", topics.dlr), ("incoming", topics.incoming)):
        assert_landed(kafka, topic, expected[kind])
    assert_landed(kafka, topics.waitcall, expected["waitcall"])


def assert_landed(kafka: LocalKafka, topic: str, ids: set[str]) -> None:
    events = asyncio.run(read_topic(kafka.bootstrap_servers, topic, len(ids), wait_seconds=30))
    for event in events:
        validate_event(event)
    assert ids <= {e["event_id"] for e in events}
