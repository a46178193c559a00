"""Throttling episodes of the adaptive rate: the first cut, the measurement, the drain."""

from __future__ import annotations

import pytest

from gateway.sender.ratelimit import AcceptedRate, AdaptiveRate
from gateway.settings.sender import RateSettings

SETTINGS = RateSettings(per_second=1000.0)


def overrun(rate: AdaptiveRate, start: float, limit: float) -> float:
    """The provider takes ``limit``/s and throttles the rest, answers every 10 ms, until the
    rate makes its measured cut; returns when that was."""
    step = 0
    while True:
        now = start + step / 100
        for i in range(round(limit / 100)):
            rate.on_accepted(1, now + i / limit)
        if rate.on_throttled(now + 0.01) and step > 0:
            return now + 0.01
        step += 1


def test_the_first_cut_of_an_episode_is_small_and_the_measured_one_drains() -> None:
    rate = AdaptiveRate(SETTINGS, 0.0)
    cut_at = overrun(rate, 10.0, 400.0)
    assert cut_at - 10.01 == pytest.approx(0.5)
    assert rate.cuts == 2
    assert rate.rate(cut_at) == pytest.approx(400 * SETTINGS.drain_factor, rel=0.02)
    settled = rate.rate(cut_at + SETTINGS.drain_seconds)
    assert settled == pytest.approx(400 * SETTINGS.cut_factor, rel=0.02)


def test_throttling_answers_during_the_drain_change_nothing() -> None:
    rate = AdaptiveRate(SETTINGS, 0.0)
    cut_at = overrun(rate, 10.0, 400.0)
    draining = rate.rate(cut_at)
    for i in range(1, 10):
        assert not rate.on_throttled(cut_at + i * SETTINGS.drain_seconds / 10)
    assert rate.rate(cut_at + 0.4) == draining
    assert rate.cuts == 2


def test_a_throttle_after_the_drain_starts_a_new_episode_with_a_small_cut() -> None:
    rate = AdaptiveRate(SETTINGS, 0.0)
    cut_at = overrun(rate, 10.0, 400.0)
    after = cut_at + SETTINGS.drain_seconds + 0.1
    for i in range(400):
        rate.on_accepted(1, after - 1.0 + i / 400)
    settled = rate.rate(after)
    assert rate.on_throttled(after)
    # Not a measurement over the drain (which would read low), just the first cut.
    assert rate.rate(after) == pytest.approx(settled * SETTINGS.cut_factor, rel=0.02)


def test_a_throttle_while_probing_goes_back_to_where_the_probe_started() -> None:
    settings = RateSettings(per_second=30.0, max_per_second=60.0)
    rate = AdaptiveRate(settings, 0.0)
    rate.on_throttled(1.0)  # a lone throttle at the start: 30 -> 29.7
    base = rate.rate(1.0)
    probe_at = 1.0 + settings.hold_seconds + 0.5
    assert rate.rate(probe_at) > 1.4 * base
    assert rate.on_throttled(probe_at)
    assert rate.rate(probe_at) == pytest.approx(base)
    assert rate.rate(probe_at + settings.hold_seconds - 0.01) == pytest.approx(base)


def test_sparse_throttling_of_a_busy_sender_is_not_taken_for_a_lower_limit() -> None:
    rate = AdaptiveRate(SETTINGS, 0.0)
    for i in range(10_000):
        rate.on_accepted(1, i / 1000)  # 1,000/s for 10 s
    # Then the sender falls behind: 330/s get out, and now and then a burst is throttled.
    now, cuts = 10.0, []
    for step in range(40):
        now = 10.0 + step / 4
        for i in range(82):
            rate.on_accepted(1, now - 0.25 + i / 330)
        before = rate.rate(now)
        if rate.on_throttled(now):
            cuts.append((before, rate.rate(now)))
    assert cuts, "the bursts were throttled"
    for before, after in cuts:
        assert after >= 0.8 * before, "cut to what a busy sender managed, not to a limit"


@pytest.mark.parametrize("now", [2.0001, 2.05, 2.0999])
def test_the_accepted_rate_reads_right_anywhere_in_a_slot(now: float) -> None:
    accepted = AcceptedRate()
    for i in range(int(now * 1000)):
        accepted.add(1, i / 1000)  # 1,000 per second so far
    # Just past a boundary the window holds nine whole slots and a sliver of the tenth:
    # dividing by a whole second would read 10 % low.
    assert accepted.per_second(now) == pytest.approx(1000, rel=0.01)


@pytest.mark.parametrize(("drain_factor", "drain_seconds"), [(0.995, 0.5), (0.4, 0.5), (0.9, -1.0)])
def test_drain_settings_out_of_range_are_reported(
    drain_factor: float, drain_seconds: float
) -> None:
    settings = RateSettings(drain_factor=drain_factor, drain_seconds=drain_seconds)
    assert any("drain" in problem for problem in settings.problems())
