"""The provider's rules as plain objects with a fake clock: rate, duplicates, flood, logins."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.simulator import BindFlags, SimulatorSettings
from gateway.simulator.logins import Logins
from gateway.simulator.rules import (
    AccountRateLimits,
    DuplicateRule,
    FloodRule,
    RateLimit,
    submit_fingerprint,
)
from gateway.simulator.smsc import MessageCentre
from gateway.simulator.stats import AcceptedParts
from gateway.smpp.constants import CommandStatus, EsmClass, TlvTag
from gateway.smpp.pdu import SubmitSm, Tlv

NOW = datetime(2024, 3, 5, 14, 7, tzinfo=UTC)
ROK = CommandStatus.ESME_ROK
THROTTLED = CommandStatus.ESME_RTHROTTLED

# -- token bucket ----------------------------------------------------------------------


def test_bucket_paced_exactly_at_the_rate_never_refuses() -> None:
    bucket = RateLimit(10.0, 0.1, now=0.0)
    assert bucket.capacity == 1.0
    assert all(bucket.take(1, now=i / 10) for i in range(1, 1001))


def test_bucket_accepts_its_capacity_plus_the_rate_over_any_period() -> None:
    bucket = RateLimit(30.0, 0.1, now=0.0)
    accepted = sum(bucket.take(1, now=i / 1000) for i in range(10_001))  # 1,000/s for 10 s
    assert accepted == 3 + 30 * 10


def test_bucket_refuses_just_before_the_next_token() -> None:
    bucket = RateLimit(10.0, 0.1, now=0.0)
    assert bucket.take(1, now=0.0)
    assert not bucket.take(1, now=0.099)
    assert bucket.take(1, now=0.1)


def test_bucket_lets_a_long_message_through_when_full_and_then_owes() -> None:
    bucket = RateLimit(30.0, 0.1, now=0.0)  # capacity 3
    assert bucket.take(5, now=0.0)  # five parts: more than the capacity, so it borrows
    assert not bucket.take(1, now=0.099)  # -2 + 2.97 tokens
    assert bucket.take(1, now=0.1)


def test_bucket_rate_change_applies_at_once() -> None:
    bucket = RateLimit(1000.0, 0.1, now=0.0)  # capacity 100, full
    bucket.set_rate(5.0, now=0.0)
    assert bucket.capacity == 1.0
    assert bucket.take(1, now=0.0)
    assert not bucket.take(1, now=0.1)
    bucket.set_rate(100.0, now=0.1)  # 0.5 tokens so far; 0.5 more come in 5 ms now
    assert bucket.take(1, now=0.105)


def test_account_limits_are_separate_and_changeable() -> None:
    limits = AccountRateLimits(10.0, 0.1)
    assert limits.take("alpha", 1, 0.0)
    assert not limits.take("alpha", 1, 0.0)
    assert limits.take("beta", 1, 0.0)
    limits.set_rate(None, 0.0, "alpha")
    assert all(limits.take("alpha", 1, 0.0) for _ in range(100))
    assert (limits.rate("alpha"), limits.rate("beta")) == (None, 10.0)
    limits.set_rate(20.0, 0.0)  # every account, per-account settings dropped
    assert (limits.rate("alpha"), limits.rate("beta")) == (20.0, 20.0)
    assert limits.take("alpha", 1, 0.0)  # a new, full bucket
    assert not limits.take("beta", 1, 0.0)  # beta's bucket is still empty


def test_unlimited_accounts_never_refuse() -> None:
    limits = AccountRateLimits(None, 0.1)
    assert all(limits.take("gateway", 10, 0.0) for _ in range(1000))


# -- duplicates and floods -------------------------------------------------------------


def test_duplicate_is_refused_until_a_full_window_has_passed() -> None:
    rule = DuplicateRule(60.0)
    rule.record(b"x", 100.0)
    assert rule.refuses(b"x", 100.0)
    assert rule.refuses(b"x", 159.999)
    assert not rule.refuses(b"y", 159.999)
    assert not rule.refuses(b"x", 160.0)
    assert len(rule) == 0  # expired entries are forgotten


def test_refused_duplicate_does_not_restart_the_window() -> None:
    rule = DuplicateRule(60.0)
    rule.record(b"x", 0.0)
    assert rule.refuses(b"x", 50.0)  # refused: not recorded
    assert not rule.refuses(b"x", 60.0)


def test_fingerprint_covers_every_identifying_field() -> None:
    base = SubmitSm(destination_addr="7999", short_message=b"hi")
    payload = Tlv(TlvTag.MESSAGE_PAYLOAD, b"long")
    variants = [
        ("gateway", base),
        ("other", base),
        ("gateway", dataclasses.replace(base, destination_addr="7998")),
        ("gateway", dataclasses.replace(base, short_message=b"ho")),
        ("gateway", dataclasses.replace(base, data_coding=8)),
        ("gateway", dataclasses.replace(base, tlvs=(payload,))),
    ]
    prints = {submit_fingerprint(system_id, pdu) for system_id, pdu in variants}
    assert len(prints) == len(variants)
    same = dataclasses.replace(base, source_addr="OTHER", registered_delivery=1)
    assert submit_fingerprint("gateway", same) == submit_fingerprint("gateway", base)


def test_flood_refuses_the_51st_of_a_run() -> None:
    rule = FloodRule(50, 30.0)
    to = ("gateway", "79991234567")
    for i in range(50):
        now = i * 29.9
        assert not rule.refuses(to, now)
        rule.record(to, now)
    last = 49 * 29.9
    assert rule.refuses(to, last + 29.9)
    assert not rule.refuses(("gateway", "79990000000"), last)
    assert not rule.refuses(("other", to[1]), last)
    assert not rule.refuses(to, last + 30.0)  # a 30 s gap ends the run


def test_flood_run_restarts_after_a_gap() -> None:
    rule = FloodRule(50, 30.0)
    to = ("gateway", "7999")
    for i in range(49):
        rule.record(to, i)
    rule.record(to, 48 + 30.0)  # a new run of one
    for i in range(49):
        assert not rule.refuses(to, 79.0 + i)
        rule.record(to, 79.0 + i)
    assert rule.refuses(to, 128.0)


# -- logins ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system_type", "flags"),
    [
        ("", BindFlags()),
        ("MCON2", BindFlags(mcon=2)),
        ("ISO,SINGLE", BindFlags(iso=True, single=True)),
        (" mcon3 , iso ", BindFlags(mcon=3, iso=True)),
        ("MCON0,MCON10,FOO", BindFlags()),  # not flags the provider knows: ignored
        ("SINGLE,MCON9", BindFlags(mcon=9, single=True)),
    ],
)
def test_system_type_flags(system_type: str, flags: BindFlags) -> None:
    assert BindFlags.parse(system_type) == flags


def test_logins_kick_the_oldest_beyond_the_limit() -> None:
    logins: Logins[str] = Logins()
    assert logins.admit("gw", "a", 1) == []
    assert logins.admit("gw", "b", 1) == ["a"]
    assert logins.admit("gw", "c", 2) == []
    assert logins.admit("other", "x", 1) == []
    assert logins.admit("gw", "d", 2) == ["b"]
    assert logins.admit("gw", "e", 1) == ["c", "d"]
    logins.release("gw", "e")
    logins.release("gw", "a")  # already gone: nothing happens
    assert (logins.of("gw"), logins.of("other")) == ([], ["x"])


# -- accepted parts ------------------------------------------------------------------------


def test_accepted_parts_by_time_and_second() -> None:
    parts = AcceptedParts()
    for i in range(30):
        parts.add("gw", 1, 10.0 + i / 10)  # 10/s for 3 s
    parts.add("gw", 3, 12.95)
    parts.add("other", 1, 11.0)
    assert parts.between(10.0, 11.0, "gw") == 10
    assert parts.between(10.0, 13.0) == 34
    assert parts.per_second(10.0, 13.0, "gw") == [10, 10, 13]
    assert parts.per_second(10.0, 11.5) == [10, 6]


def test_accepted_parts_record_is_bounded() -> None:
    parts = AcceptedParts(limit=3)
    for i in range(100):
        parts.add("gw", 1, float(i))
    assert 3 <= parts.between(0.0, 100.0) <= 6
    assert parts.between(97.0, 100.0) == 3
    nothing = AcceptedParts(limit=0)
    nothing.add("gw", 1, 0.0)
    assert nothing.between(0.0, 1.0) == 0


# -- the message centre with every rule -------------------------------------------------


def _centre(**overrides: Any) -> tuple[MessageCentre, list[float]]:
    clock = [100.0]
    config = dataclasses.replace(SimulatorSettings(), **overrides)
    centre = MessageCentre(config, clock=lambda: clock[0], wall_clock=lambda: NOW)
    return centre, clock


def _submit(centre: MessageCentre, text: bytes = b"hi", **fields: Any) -> int:
    pdu = SubmitSm(destination_addr=fields.pop("to", "7999"), short_message=text, **fields)
    return centre.submit("gateway", pdu).command_status


def test_centre_throttles_parts_above_the_rate() -> None:
    centre, clock = _centre(rate_limit_per_second=30.0)
    statuses = [_submit(centre, b"%d" % i) for i in range(5)]
    assert statuses == [ROK, ROK, ROK, THROTTLED, THROTTLED]
    assert (centre.stats.throttled, len(centre.submits)) == (2, 3)
    clock[0] += 1 / 30
    assert _submit(centre, b"again") == ROK
    assert centre.stats.accepted_parts["gateway"] == 4
    assert centre.stats.accepted_between(100.0, 101.0) == 4


def test_centre_counts_the_parts_of_a_long_payload() -> None:
    centre, clock = _centre(rate_limit_per_second=30.0)
    long_payload = (Tlv(TlvTag.MESSAGE_PAYLOAD, b"a" * 400),)  # three GSM parts
    assert _submit(centre, b"", tlvs=long_payload) == ROK
    assert _submit(centre, b"next") == THROTTLED  # the bucket of 3 is empty
    assert centre.stats.accepted_parts["gateway"] == 3
    clock[0] += 1 / 30
    assert _submit(centre, b"next") == ROK


def test_centre_rate_change_applies_to_the_next_submit() -> None:
    centre, _ = _centre(rate_limit_per_second=None)
    assert all(_submit(centre, b"%d" % i) == ROK for i in range(10))
    centre.set_rate_limit(5.0)
    assert [_submit(centre, b"x%d" % i) for i in range(2)] == [ROK, THROTTLED]
    centre.set_rate_limit(None, "gateway")
    assert _submit(centre, b"free") == ROK


def test_centre_refuses_duplicates_with_the_configured_status() -> None:
    centre, clock = _centre(duplicate_status=CommandStatus.ESME_RSYSERR, rate_limit_per_second=None)
    assert _submit(centre, registered_delivery=1) == ROK
    assert _submit(centre, registered_delivery=1) == CommandStatus.ESME_RSYSERR
    assert _submit(centre, to="7998") == ROK
    clock[0] += 60.0
    assert _submit(centre) == ROK
    assert centre.stats.duplicates_refused == 1
    assert centre.stats.dlrs_scheduled == 1  # the refused one owes no report
    assert centre.stats.submit_statuses[CommandStatus.ESME_RSYSERR] == 1


def test_centre_refuses_floods_and_counts_a_long_message_once() -> None:
    centre, _ = _centre(flood_limit=3, rate_limit_per_second=None)
    for reference in (1, 2):  # two messages of two parts each
        for sequence in (1, 2):
            udh = bytes([5, 0x00, 3, reference, 2, sequence])
            assert _submit(centre, udh + b"x", esm_class=EsmClass.UDHI) == ROK
    assert _submit(centre, b"third") == ROK
    assert _submit(centre, b"fourth") == CommandStatus.ESME_RSUBMITFAIL
    assert _submit(centre, b"fourth", to="7998") == ROK
    assert centre.stats.floods_refused == 1
    assert centre.stats.accepted_parts["gateway"] == 6


def test_centre_rules_can_be_switched_off() -> None:
    centre, _ = _centre(duplicate_window_seconds=None, flood_limit=None, rate_limit_per_second=None)
    assert all(_submit(centre) == ROK for _ in range(200))


def test_config_checks_the_new_settings_together() -> None:
    with pytest.raises(ConfigError) as error:
        SimulatorSettings(
            rate_limit_per_second=0,
            rate_burst_seconds=-1,
            duplicate_window_seconds=0,
            duplicate_status=0,
            flood_limit=0,
            flood_gap_seconds=0,
            flood_status=2**32,
            tls_port=70000,
            max_recorded_parts=-1,
        )
    message = str(error.value)
    for fragment in (
        "rate_limit_per_second",
        "rate_burst_seconds",
        "duplicate_window_seconds",
        "duplicate_status",
        "flood_limit",
        "flood_gap_seconds",
        "flood_status",
        "tls_port 70000",
        "tls_port needs tls_cert_file and tls_key_file",
        "max_recorded_parts",
    ):
        assert fragment in message
