"""The logging setup: JSON lines, and no secret in any of them whoever logs it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest

from gateway.config import load_settings
from gateway.logsetup import REDACTED, configure_logging, secret_values

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
