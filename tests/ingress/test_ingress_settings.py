"""GATEWAY_INGRESS_*: parsed from the environment, checked, secrets never shown."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.metrics import Metrics
from gateway.roles.ingress import run_ingress
from gateway.settings import Settings, load_settings
from gateway.settings.ingress import IngressSettings

SECRET = "ingress-secret-77"
TOKEN = "path-token-99"


def test_every_ingress_setting_is_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "GATEWAY_INGRESS_HOST": "127.0.0.1",
            "GATEWAY_INGRESS_PORT": "8443",
            "GATEWAY_INGRESS_PATH": "/hooks/smsc",
            "GATEWAY_INGRESS_PATH_TOKEN": TOKEN,
            "GATEWAY_INGRESS_SECRET": SECRET,
            "GATEWAY_INGRESS_UNSIGNED_POLICY": "accept",
            "GATEWAY_INGRESS_ALLOWED_NETWORKS": "212.24.32.0/24, 2001:db8::/32",
            "GATEWAY_INGRESS_MAX_BODY_BYTES": "8192",
            "GATEWAY_INGRESS_DEFAULT_CHARSET": "utf-8",
            "GATEWAY_INGRESS_PUBLISH_TIMEOUT_SECONDS": "2.5",
            "GATEWAY_INGRESS_PUBLISH_LINGER_SECONDS": "0.002",
            "GATEWAY_INGRESS_READINESS_INTERVAL_SECONDS": "1",
            "GATEWAY_INGRESS_DRAIN_TIMEOUT_SECONDS": "3",
            "GATEWAY_INGRESS_EVENT_LOOP": "asyncio",
        }
    ).ingress
    assert settings == IngressSettings(
        host="127.0.0.1",
        port=8443,
        path="/hooks/smsc",
        path_token=TOKEN,
        secret=SECRET,
        unsigned_policy="accept",
        allowed_networks=("212.24.32.0/24", "2001:db8::/32"),
        max_body_bytes=8192,
        default_charset="utf-8",
        publish_timeout_seconds=2.5,
        publish_linger_seconds=0.002,
        readiness_interval_seconds=1.0,
        drain_timeout_seconds=3.0,
        event_loop="asyncio",
    )
    assert settings.problems() == []
    assert SECRET not in repr(settings)
    assert TOKEN not in repr(settings)


def test_the_defaults_refuse_to_run_without_a_secret() -> None:
    assert IngressSettings().problems() == ["secret is required while unsigned_policy is reject"]
    assert IngressSettings(unsigned_policy="accept").problems() == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"unsigned_policy": "maybe"}, "unsigned_policy must be one of"),
        ({"secret": "has space"}, "secret may hold only"),
        ({"path_token": "a/b"}, "path_token may hold only"),
        ({"allowed_networks": ("10.0.0.0/33",)}, "is not a CIDR network"),
        ({"port": 70000}, "port must be"),
        ({"path": "callback"}, "path must start with"),
        ({"path": "/metrics"}, "path must not be"),
        ({"max_body_bytes": 10}, "max_body_bytes must be at least"),
        ({"default_charset": "latin-1"}, "default_charset must be"),
        ({"publish_timeout_seconds": 0.0}, "publish_timeout_seconds must be positive"),
        ({"publish_linger_seconds": 5.0}, "publish_linger_seconds must be 0..1"),
        ({"event_loop": "trio"}, "event_loop must be one of uvloop, asyncio"),
    ],
)
def test_problems_are_named(changes: dict[str, Any], problem: str) -> None:
    settings = dataclasses.replace(IngressSettings(secret="ok"), **changes)
    assert any(problem in p for p in settings.problems()), settings.problems()


async def test_the_role_refuses_to_start_with_problems_and_keeps_the_secret_out() -> None:
    bad = dataclasses.replace(
        Settings(),
        ingress=IngressSettings(secret=f"{SECRET} bad", allowed_networks=("nope",)),
    )
    with pytest.raises(ConfigError) as caught:
        await run_ingress(bad, Metrics(), asyncio.Event())
    message = str(caught.value)
    assert "GATEWAY_INGRESS: secret may hold only" in message
    assert "allowed_networks entry 'nope'" in message
    assert SECRET not in message
