"""The receiver's configuration: its own section, the SMPP credentials, checked at start."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings, role_problems


def test_defaults_let_the_receiver_and_the_sender_share_a_host() -> None:
    settings = Settings()
    assert settings.receiver.bind_mode == "receiver"
    assert settings.receiver.probe_port != settings.http.port


def test_receiver_role_needs_credentials_and_a_known_bind_mode() -> None:
    environ = {"GATEWAY_RECEIVER_BIND_MODE": "transmitter", "GATEWAY_RECEIVER_BINDS": "0"}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, roles=frozenset({"receiver"}))
    message = str(caught.value)
    assert "GATEWAY_SMPP: system_id is required" in message
    assert "GATEWAY_RECEIVER: bind_mode must be receiver or transceiver" in message
    assert "GATEWAY_RECEIVER: binds must be 1..9" in message


def test_other_roles_do_not_check_the_receiver_section() -> None:
    environ = {"GATEWAY_RECEIVER_BIND_MODE": "transmitter", "GATEWAY_INGRESS_SECRET": "s3cret"}
    settings = load_settings(environ, roles=frozenset({"ingress"}))
    assert settings.receiver.bind_mode == "transmitter"


def test_several_receiver_binds_need_an_mcon_login() -> None:
    base = Settings()
    smpp = dataclasses.replace(base.smpp, system_id="login")
    several = dataclasses.replace(
        base, smpp=smpp, receiver=dataclasses.replace(base.receiver, binds=3)
    )
    assert any("MCONn" in problem for problem in role_problems(several, {"receiver"}))
    mcon = dataclasses.replace(several, smpp=dataclasses.replace(smpp, system_type="MCON3"))
    assert role_problems(mcon, {"receiver"}) == []
