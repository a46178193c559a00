"""The logging setup: JSON lines, no secret in any of them whoever logs it, and repeated
warnings and errors summarised instead of written each."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest

from gateway.logsetup import (
    REDACTED,
    JsonFormatter,
    RepeatSummarizer,
    configure_logging,
    secret_values,
)
from gateway.settings import load_settings

SECRET = 'pa ss/wo"rd&1'


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, secrets=[SECRET, "abc"])
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def test_a_secret_is_masked_as_is_url_encoded_and_json_escaped(captured: io.StringIO) -> None:
    log = logging.getLogger("gateway.test")
    log.warning("plain %s", SECRET)
    log.warning("in an address: https://h/x.php?psw=pa+ss%2Fwo%22rd%261&login=me")
    log.warning("as a field", extra={"detail": {"password": SECRET}})
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["message"] for line in lines] == [
        f"plain {REDACTED}",
        f"in an address: https://h/x.php?psw={REDACTED}&login=me",
        "as a field",
    ]
    assert lines[2]["detail"] == {"password": REDACTED}
    assert "pa ss" not in captured.getvalue()


def test_short_values_are_not_searched_for(captured: io.StringIO) -> None:
    logging.getLogger("gateway.test").warning("abc is not masked: too short to be searched")
    assert "abc is not masked" in captured.getvalue()


def test_the_http_client_does_not_log_request_addresses(captured: io.StringIO) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="ok")

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        client.get("https://smsc.ru/sys/balance.php", params={"login": "me", "psw": "other-pw"})
    assert "balance.php" not in captured.getvalue()
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() >= logging.WARNING


def test_secret_values_are_every_secret_setting_not_left_at_its_default() -> None:
    environ = {
        "GATEWAY_SMPP_PASSWORD": "smpp-pw",
        "GATEWAY_HTTP_API_PASSWORD": "api-pw",
        "GATEWAY_HTTP_API_APIKEY": "api-key",
        "GATEWAY_INGRESS_SECRET": "hook-secret",
        "GATEWAY_INGRESS_PATH_TOKEN": "path-token",
        "GATEWAY_KAFKA_SASL_PASSWORD": "sasl-pw",
        "GATEWAY_SIMULATOR_ACCOUNTS": "a:sim-pw-a,b:sim-pw-b",
        "GATEWAY_SMPP_SYSTEM_ID": "not-a-secret",
    }
    found = secret_values(load_settings(environ, roles=frozenset({"simulate"})))
    expected = {"smpp-pw", "api-pw", "api-key", "hook-secret", "path-token", "sasl-pw"}
    assert sorted(found) == sorted(expected | {"sim-pw-a", "sim-pw-b"})
    assert secret_values(load_settings({}, roles=frozenset({"simulate"}))) == []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Written:
    """A logger writing JSON lines through a summarizer (burst 3, period 10 s)."""

    def __init__(self, clock: Clock) -> None:
        self._stream = io.StringIO()
        target = logging.StreamHandler(self._stream)
        target.setFormatter(JsonFormatter())
        self.summarizer = RepeatSummarizer(target, burst=3, period_seconds=10.0, clock=clock)
        self.logger = logging.getLogger("test.summarizer")
        self.logger.handlers[:] = [self.summarizer]
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)

    def lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self._stream.getvalue().splitlines()]

    def messages(self) -> list[str]:
        return [str(line["message"]) for line in self.lines()]


@pytest.fixture
def written(clock: Clock) -> Iterator[Written]:
    found = Written(clock)
    yield found
    found.logger.handlers.clear()
    found.logger.propagate = True


def test_a_storm_of_one_error_becomes_a_few_lines_and_a_count(
    clock: Clock, written: Written
) -> None:
    logger = written.logger
    for i in range(1000):
        logger.error("Unable connect to node with id %s: attempt %d", 1, i)
        clock.now += 0.005  # 1,000 in 5 s: one period
    clock.now += 10
    logger.error("Unable connect to node with id %s: attempt %d", 1, 1000)
    lines, messages = written.lines(), written.messages()
    assert messages[:3] == [f"Unable connect to node with id 1: attempt {i}" for i in range(3)]
    assert messages[3] == (
        "997 more like this left out in 10 s: Unable connect to node with id %s: attempt %d"
    )
    assert lines[3]["left_out"] == 997
    assert lines[3]["level"] == "ERROR"
    assert messages[4:] == ["Unable connect to node with id 1: attempt 1000"]


def test_kinds_are_counted_apart_and_info_is_never_summarised(written: Written) -> None:
    logger = written.logger
    for _ in range(10):
        logger.warning("publishing to %s failed, retrying", "smsc.dlr.v1")
        logger.error("publishing to %s failed, retrying", "smsc.dlr.v1")
        logger.info("partitions assigned")
    written.summarizer.close()  # the summaries of periods still open are written at close
    by_level: dict[str, list[str]] = {}
    for line in written.lines():
        by_level.setdefault(str(line["level"]), []).append(str(line["message"]))
    assert by_level["INFO"] == ["partitions assigned"] * 10
    for level in ("WARNING", "ERROR"):
        assert by_level[level][:3] == ["publishing to smsc.dlr.v1 failed, retrying"] * 3
        assert by_level[level][3].startswith("7 more like this left out in 10 s")
        assert len(by_level[level]) == 4


def test_a_kind_that_stops_is_summarised_once_its_period_ends(
    clock: Clock, written: Written
) -> None:
    for _ in range(5):
        written.logger.error("Unable to update metadata from %s", [1])
    clock.now += 11
    written.logger.warning("something else")  # any record ends the periods that are over
    messages = written.messages()
    assert messages[3].startswith("2 more like this left out in 10 s: Unable to update")
    assert messages[4] == "something else"
