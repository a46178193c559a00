"""Settings from the environment: every type parsed, all problems at once, secrets hidden."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from decimal import Decimal
from types import MappingProxyType

import pytest

from gateway.errors import ConfigError
from gateway.localkafka.fetching import CACHE_DIR_ENV
from gateway.settings import (
    KafkaSettings,
    SenderSettings,
    Settings,
    SmppSettings,
    Transport,
    load_settings,
    setting_names,
)
from gateway.settings.simulator import DlrOutcome, SimulatorSettings

SMPP_SECRET = "pw-smpp-9x7"  # a marker to look for, not a credential
SASL_SECRET = "pw-sasl-4q2"
ACCOUNT_SECRET = "acct-pw1"


def problems_of(environ: dict[str, str], roles: frozenset[str] = frozenset()) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, roles=roles)
    return str(caught.value)


def test_empty_environment_gives_the_defaults() -> None:
    assert load_settings({}) == Settings()


def test_variables_without_the_prefix_are_ignored() -> None:
    assert load_settings({"PATH": "/bin", "HEALTHCHECK_PORT": "9108"}) == Settings()


def test_the_tooling_variables_are_known() -> None:
    environ = {CACHE_DIR_ENV: "/var/cache/kafka-jars"}
    assert load_settings(environ) == Settings()


def test_an_unknown_gateway_variable_is_refused_with_the_known_names() -> None:
    found = problems_of({"GATEWAY_SMPP_WINDOWS": "5", "GATEWAY_SMPP_SYSTEM_ID": "login"})
    assert "GATEWAY_SMPP_WINDOWS: unknown setting (did you mean GATEWAY_SMPP_WINDOW?)" in found
    # The section's known names follow, so the right spelling is on the screen.
    assert "GATEWAY_SMPP_ENQUIRE_LINK_INTERVAL_SECONDS" in found


def test_unknown_variables_are_reported_with_the_other_problems() -> None:
    found = problems_of({"GATEWAY_X": "y", "GATEWAY_SMPP_WINDOW": "0"}, frozenset({"sender"}))
    assert "GATEWAY_X: unknown setting; known sections: GATEWAY_KAFKA_*" in found
    assert "GATEWAY_SMPP: window must be 1..2000" in found


def test_the_longest_section_prefix_names_the_section() -> None:
    found = problems_of({"GATEWAY_HTTP_API_LOGN": "me"})
    assert "did you mean GATEWAY_HTTP_API_LOGIN?" in found
    assert "GATEWAY_HTTP_API_PASSWORD" in found
    assert "GATEWAY_HTTP_PORT" not in found


def test_every_field_of_every_section_is_a_known_name() -> None:
    # Derived from the classes: a section added to Settings is known without a list to edit.
    for section in dataclasses.fields(Settings):
        hint = typing.get_type_hints(Settings)[section.name]
        for item in dataclasses.fields(hint):
            key = f"GATEWAY_{section.name.upper()}_{item.name.upper()}"
            assert key in setting_names()[f"GATEWAY_{section.name.upper()}_"]


def test_a_role_started_with_an_unknown_variable_exits_naming_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_SMPP_SYSTEM_ID": "login", "GATEWAY_SMPP_WINDOWS": "5"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "sender"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "GATEWAY_SMPP_WINDOWS: unknown setting" in done.stderr
    assert "GATEWAY_SMPP_WINDOW," in done.stderr


@pytest.mark.parametrize(
    ("key", "raw", "section", "field", "value"),
    [
        (
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS",
            "k1:9092,k2:9092",
            "kafka",
            "bootstrap_servers",
            "k1:9092,k2:9092",
        ),
        ("GATEWAY_SMPP_SYSTEM_ID", "login", "smpp", "system_id", "login"),
        ("GATEWAY_TOPICS_DLR", "my.dlr", "topics", "dlr", "my.dlr"),
        ("GATEWAY_SMPP_WINDOW", "250", "smpp", "window", 250),
        ("GATEWAY_SMPP_WINDOW", " 7 ", "smpp", "window", 7),
        ("GATEWAY_HTTP_PORT", "8080", "http", "port", 8080),
        ("GATEWAY_SENDER_COMMIT_INTERVAL_SECONDS", "0.5", "sender", "commit_interval_seconds", 0.5),
        ("GATEWAY_SENDER_GIVE_UP_AFTER_SECONDS", "60", "sender", "give_up_after_seconds", 60.0),
        ("GATEWAY_KAFKA_SASL_MECHANISM", "PLAIN", "kafka", "sasl_mechanism", "PLAIN"),
        ("GATEWAY_KAFKA_SASL_MECHANISM", "", "kafka", "sasl_mechanism", None),
        ("GATEWAY_KAFKA_SASL_USERNAME", "   ", "kafka", "sasl_username", None),
        (
            "GATEWAY_SIMULATOR_INACTIVITY_TIMEOUT_SECONDS",
            "30",
            "simulator",
            "inactivity_timeout_seconds",
            30.0,
        ),
        (
            "GATEWAY_SIMULATOR_INACTIVITY_TIMEOUT_SECONDS",
            "",
            "simulator",
            "inactivity_timeout_seconds",
            None,
        ),
        ("GATEWAY_SIMULATOR_SEED", "", "simulator", "seed", None),
        ("GATEWAY_SIMULATOR_SEED", "42", "simulator", "seed", 42),
        ("GATEWAY_SMPP_HOSTS", "a.example:3700", "smpp", "hosts", ("a.example:3700",)),
        ("GATEWAY_SMPP_HOSTS", " a:1 , b:2 ,", "smpp", "hosts", ("a:1", "b:2")),
        ("GATEWAY_SIMULATOR_DLR_COST", "2.5", "simulator", "dlr_cost", Decimal("2.5")),
        ("GATEWAY_SIMULATOR_DLR_COST", "0", "simulator", "dlr_cost", Decimal("0")),
        ("GATEWAY_SIMULATOR_DLR_MCCMNC", "25002", "simulator", "dlr_mccmnc", "25002"),
        ("GATEWAY_SENDER_DEFAULT_TRANSPORT", "http", "sender", "default_transport", Transport.HTTP),
    ],
)
def test_values_are_parsed_by_type(
    key: str, raw: str, section: str, field: str, value: object
) -> None:
    settings = load_settings({key: raw})
    parsed = getattr(getattr(settings, section), field)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("On", True), (" true ", True),
        ("0", False), ("false", False), ("No", False), ("off", False),
    ],
)  # fmt: skip
def test_booleans(raw: str, value: bool) -> None:
    assert load_settings({"GATEWAY_SMPP_TLS": raw}).smpp.tls is value
    assert (
        load_settings({"GATEWAY_SIMULATOR_RECORD_SUBMITS": raw}).simulator.record_submits is value
    )


def test_mapping() -> None:
    settings = load_settings({"GATEWAY_SIMULATOR_ACCOUNTS": "alice:pw1, bob:p:w2,"})
    accounts = settings.simulator.accounts
    assert isinstance(accounts, MappingProxyType)
    assert dict(accounts) == {"alice": "pw1", "bob": "p:w2"}


def test_tuple_of_named_tuples() -> None:
    raw = "DELIVRD:0:0.9,UNDELIV:1:0.05, EXPIRED:245"
    outcomes = load_settings({"GATEWAY_SIMULATOR_DLR_OUTCOMES": raw}).simulator.dlr_outcomes
    assert outcomes == (
        DlrOutcome("DELIVRD", 0, 0.9),
        DlrOutcome("UNDELIV", 1, 0.05),
        DlrOutcome("EXPIRED", 245, 1.0),  # missing fields take their defaults
    )
    assert all(isinstance(o, DlrOutcome) for o in outcomes)
    assert isinstance(outcomes[0].err, int)
    assert isinstance(outcomes[0].weight, float)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("GATEWAY_SMPP_WINDOW", "many"),
        ("GATEWAY_SMPP_WINDOW", "1.5"),
        ("GATEWAY_HTTP_PORT", ""),
        ("GATEWAY_SENDER_RETRY_MAX_SECONDS", "soon"),
        ("GATEWAY_SMPP_TLS", "maybe"),
        ("GATEWAY_SMPP_TLS", ""),
        ("GATEWAY_SIMULATOR_SEED", "x"),
        ("GATEWAY_SIMULATOR_ACCOUNTS", "no-colon"),
        ("GATEWAY_SIMULATOR_DLR_OUTCOMES", "DELIVRD:0:1:extra"),
        ("GATEWAY_SIMULATOR_DLR_OUTCOMES", "DELIVRD:zero"),
        ("GATEWAY_SENDER_DEFAULT_TRANSPORT", "smtp"),
    ],
)
def test_unparsable_value_is_a_config_error_naming_the_variable(key: str, raw: str) -> None:
    assert key in problems_of({key: raw})


def test_a_default_transport_of_auto_is_refused_for_the_sender() -> None:
    environ = {"GATEWAY_SENDER_DEFAULT_TRANSPORT": "auto"}
    assert "default_transport must be smpp or http" in problems_of(environ, frozenset({"sender"}))


@pytest.mark.parametrize("raw", ["cheap", "", "NaN"])
def test_bad_decimal_is_a_config_error(raw: str) -> None:
    assert "GATEWAY_SIMULATOR_DLR_COST" in problems_of({"GATEWAY_SIMULATOR_DLR_COST": raw})


def test_every_problem_is_reported_together() -> None:
    message = problems_of(
        {
            "GATEWAY_SMPP_WINDOW": "lots",
            "GATEWAY_SMPP_TLS": "perhaps",
            "GATEWAY_SENDER_RETRY_INITIAL_SECONDS": "fast",
            "GATEWAY_SENDER_MAX_IN_FLIGHT": "0",
            "GATEWAY_SMPP_HOSTS": "nohost,also-bad:99999",
            "GATEWAY_SMPP_ENQUIRE_LINK_INTERVAL_SECONDS": "300",
            "GATEWAY_KAFKA_SECURITY_PROTOCOL": "TLS",
            "GATEWAY_LOG_LEVEL": "chatty",
            "GATEWAY_SIMULATOR_PORT": "70000",
            "GATEWAY_SIMULATOR_DLR_MCCMNC": "abc",
        },
        roles=frozenset({"sender"}),
    )
    for expected in (
        "GATEWAY_SMPP_WINDOW",
        "GATEWAY_SMPP_TLS",
        "GATEWAY_SENDER_RETRY_INITIAL_SECONDS",
        "max_in_flight must be at least 1",
        "'nohost'",
        "'also-bad:99999'",
        "system_id is required",
        "enquire_link_interval_seconds",
        "security_protocol",
        "level must be one of",
        "port 70000",
        "dlr_mccmnc",
    ):
        assert expected in message, expected
    assert message.startswith("invalid configuration:")
    assert len(message.splitlines()) >= 12


# -- secrets -----------------------------------------------------------------------------------


def secret_environ() -> dict[str, str]:
    return {
        "GATEWAY_SMPP_SYSTEM_ID": "login",
        "GATEWAY_SMPP_PASSWORD": SMPP_SECRET,
        "GATEWAY_KAFKA_SASL_USERNAME": "user",
        "GATEWAY_KAFKA_SASL_PASSWORD": SASL_SECRET,
        "GATEWAY_SIMULATOR_ACCOUNTS": f"gateway:{ACCOUNT_SECRET}",
    }


def test_secrets_are_loaded_but_never_in_repr() -> None:
    settings = load_settings(secret_environ(), roles=frozenset({"sender"}))
    assert settings.smpp.password == SMPP_SECRET
    assert settings.kafka.sasl_password == SASL_SECRET
    assert dict(settings.simulator.accounts) == {"gateway": ACCOUNT_SECRET}
    for text in (repr(settings), str(settings), repr(settings.smpp), repr(settings.kafka)):
        assert SMPP_SECRET not in text
        assert SASL_SECRET not in text
        assert ACCOUNT_SECRET not in text
    assert "sasl_username='user'" in repr(settings.kafka)
    assert "system_id='login'" in repr(settings.smpp)


def test_secrets_stay_out_of_error_messages() -> None:
    environ = secret_environ() | {
        "GATEWAY_SMPP_WINDOW": SMPP_SECRET,  # an unparsable non-secret is quoted
        "GATEWAY_KAFKA_SECURITY_PROTOCOL": "bogus",
        "GATEWAY_SIMULATOR_ACCOUNTS": f"gateway:{ACCOUNT_SECRET},{SASL_SECRET}",
    }
    message = problems_of(environ, roles=frozenset({"sender"}))
    assert "GATEWAY_SIMULATOR_ACCOUNTS=<redacted>" in message
    assert SASL_SECRET not in message
    assert ACCOUNT_SECRET not in message
    assert f"GATEWAY_SMPP_WINDOW='{SMPP_SECRET}'" in message


def test_invalid_account_password_is_not_quoted() -> None:
    long_secret = "far-too-long-password"
    message = problems_of({"GATEWAY_SIMULATOR_ACCOUNTS": f"gw:{long_secret}"})
    assert "password must be 0..8" in message
    assert long_secret not in message


def test_field_level_redaction_matches_the_dataclasses() -> None:
    redacted = {
        (cls.__name__, f.name)
        for cls in (SmppSettings, KafkaSettings, SimulatorSettings)
        for f in cls.__dataclass_fields__.values()
        if not f.repr
    }
    assert redacted == {
        ("SmppSettings", "password"),
        ("KafkaSettings", "sasl_password"),
        ("SimulatorSettings", "accounts"),
        ("SimulatorSettings", "http_api_webhook_url"),  # the handler URL carries its secret
    }


# -- checks by role ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["sender", "all"])
def test_sender_roles_require_smpp_credentials(role: str) -> None:
    message = problems_of({}, roles=frozenset({role}))
    assert "GATEWAY_SMPP: system_id is required" in message
    settings = load_settings({"GATEWAY_SMPP_SYSTEM_ID": "login"}, roles=frozenset({role}))
    assert settings.smpp.system_id == "login"


@pytest.mark.parametrize("roles", [frozenset(), frozenset({"ingress"}), frozenset({"simulate"})])
def test_other_roles_need_no_smpp_credentials(roles: frozenset[str]) -> None:
    environ = {"GATEWAY_SENDER_MAX_IN_FLIGHT": "0", "GATEWAY_INGRESS_SECRET": "s3cret"}
    assert load_settings(environ, roles=roles).smpp.system_id == ""


def test_sender_checks_apply_only_to_sender_roles() -> None:
    environ = {"GATEWAY_SMPP_SYSTEM_ID": "login", "GATEWAY_SENDER_MAX_IN_FLIGHT": "0"}
    assert load_settings(environ).sender == SenderSettings(max_in_flight=0)
    assert "max_in_flight" in problems_of(environ, roles=frozenset({"sender"}))


@pytest.mark.parametrize("roles", [frozenset(), frozenset({"ingress"}), frozenset({"sender"})])
def test_kafka_and_log_are_checked_for_every_role(roles: frozenset[str]) -> None:
    environ = {
        "GATEWAY_SMPP_SYSTEM_ID": "login",
        "GATEWAY_KAFKA_SECURITY_PROTOCOL": "PLAIN",
        "GATEWAY_LOG_LEVEL": "loud",
    }
    message = problems_of(environ, roles=roles)
    assert "GATEWAY_KAFKA: security_protocol" in message
    assert "GATEWAY_LOG: level" in message


def test_simulator_section_is_validated_whenever_set() -> None:
    message = problems_of({"GATEWAY_SIMULATOR_DLR_OUTCOMES": "NOPE:0:1"})
    assert "GATEWAY_SIMULATOR" in message
    assert "unknown stat 'NOPE'" in message
