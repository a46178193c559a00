"""The adaptive rate and its token bucket, on a fake clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sender.ratelimit import AcceptedRate, AdaptiveRate, TokenBucket
from gateway.settings.sender import RateSettings


def drive(bucket: TokenBucket, rate: float, seconds: float, parts: int = 1) -> list[float]:
    """Grant permits as fast as the bucket allows; returns the grant times."""
    now, grants = 0.0, []
    while now < seconds:
        delay = bucket.delay(parts, rate, now)
        now += delay
        if now >= seconds:
            break
        bucket.take(parts, rate, now)
        grants.append(now)
    return grants


@pytest.mark.parametrize("rate", [1.0, 30.0, 1000.0])
def test_bucket_paces_at_the_rate(rate: float) -> None:
    grants = drive(TokenBucket(0.05, 0.0), rate, 10.0)
    assert len(grants) == pytest.approx(rate * 10, rel=0.01, abs=2)


def test_bucket_spaces_submits_evenly_at_low_rates() -> None:
    grants = drive(TokenBucket(0.05, 0.0), 30.0, 2.0)
    gaps = [b - a for a, b in itertools.pairwise(grants[1:])]
    assert min(gaps) == pytest.approx(1 / 30, rel=1e-6)


def test_parts_of_one_message_go_together_and_the_next_waits_for_the_debt() -> None:
    bucket = TokenBucket(0.05, 0.0)
    # A full bucket holds 1.5 permits at 30/s; 5 parts wait for no more than that.
    assert bucket.delay(5, 30.0, 1.0) == 0.0
    bucket.take(5, 30.0, 1.0)
    # The debt of 3.5 permits, plus the one the next message needs, is paid at 30/s.
    assert bucket.delay(1, 30.0, 1.0) == pytest.approx(4.5 / 30)


@given(st.lists(st.tuples(st.integers(1, 6), st.floats(0.0, 0.5)), max_size=60))
@settings(max_examples=60, deadline=None)
def test_bucket_never_lets_more_through_than_the_rate_allows(
    steps: list[tuple[int, float]],
) -> None:
    bucket, rate, now, sent = TokenBucket(0.05, 0.0), 30.0, 0.0, 0
    for parts, pause in steps:
        now += pause + bucket.delay(parts, rate, now + pause)
        bucket.take(parts, rate, now)
        sent += parts
    # Over any run: at most the initial token, the burst, plus the rate, plus the last message.
    assert sent <= 1 + 1.5 + rate * now + 6


def test_accepted_rate_over_a_sliding_second() -> None:
    accepted = AcceptedRate()
    for i in range(300):
        accepted.add(1, i / 100)  # 100 per second for 3 s
    assert accepted.per_second(2.99) == pytest.approx(100, rel=0.1)
    assert accepted.per_second(5.0) == 0


def test_a_throttle_cuts_a_little_at_once_then_to_the_measured_limit() -> None:
    settings = RateSettings(per_second=1000.0)
    rate = AdaptiveRate(settings, 0.0)
    for i in range(500):
        rate.on_accepted(1, 1.0 + i / 500)  # the provider took 500/s
    assert rate.on_throttled(2.0)
    assert rate.rate(2.0) == pytest.approx(1000 * 0.9 * settings.cut_factor)  # max_cut
    assert not rate.on_throttled(2.1), "one burst of throttling answers is one cut"
    step, now = 0, 2.0
    while not rate.on_throttled(now):
        for i in range(25):
            rate.on_accepted(1, now + i / 500)
        step += 1
        now = 2.0 + step / 20
    assert step == 10, "measured once throttling has gone on for 0.5 s"
    assert rate.rate(now) == pytest.approx(500 * settings.drain_factor, rel=0.02)
    assert rate.rate(now + settings.drain_seconds) == pytest.approx(
        500 * settings.cut_factor, rel=0.02
    )


def test_rate_holds_then_probes_up_to_the_ceiling() -> None:
    settings = RateSettings(per_second=30.0, max_per_second=60.0, hold_seconds=4.0)
    rate = AdaptiveRate(settings, 0.0)
    assert rate.rate(3.9) == 30.0
    assert rate.rate(5.0) == pytest.approx(60.0)  # doubled one second after the hold
    assert rate.rate(100.0) == 60.0


def test_without_a_ceiling_above_the_rate_it_never_goes_above_it() -> None:
    rate = AdaptiveRate(RateSettings(per_second=30.0), 0.0)
    assert rate.rate(1000.0) == 30.0
    rate.on_throttled(10.0)
    assert rate.rate(10.0) == pytest.approx(30 * rate.settings.cut_factor)
    assert rate.rate(15.0) == 30.0  # recovered after the hold


def test_a_raised_limit_is_found_within_five_seconds_of_the_last_cut() -> None:
    rate = AdaptiveRate(RateSettings(per_second=500.0, max_per_second=2000.0), 0.0)
    rate.on_throttled(10.0)
    assert rate.rate(15.0) >= 2 * 500 * 0.985


def test_settings_problems_are_reported() -> None:
    assert RateSettings(per_second=0).problems()
    assert RateSettings(per_second=30, max_per_second=10).problems()
    assert RateSettings(cut_factor=1.2).problems()
    assert not RateSettings().problems()


def test_a_throttle_right_after_start_does_not_trust_a_partial_second() -> None:
    rate = AdaptiveRate(RateSettings(per_second=30.0), 0.0)
    for i in range(5):
        rate.on_accepted(1, 0.1 + i / 30)  # only 0.15 s of sending so far
    rate.on_throttled(0.3)
    assert rate.rate(0.3) == pytest.approx(30 * rate.settings.cut_factor)


@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.floats(0.5, 5000.0), st.floats(0.0, 0.05)),
        max_size=60,
    )
)
def test_try_take_is_delay_then_take(steps: list[tuple[int, float, float]]) -> None:
    tried, reference = TokenBucket(0.05, 0.0), TokenBucket(0.05, 0.0)
    now = 0.0
    for parts, rate, elapsed in steps:
        now += elapsed
        expected = reference.delay(parts, rate, now) == 0
        if expected:
            reference.take(parts, rate, now)
        assert tried.try_take(parts, rate, now) == expected
        assert tried.delay(parts, rate, now) == reference.delay(parts, rate, now)
