"""The backoff policy: growth, the cap, and where each jitter puts the wait."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.backoff import Backoff, Jitter


class FixedRandom(random.Random):
    """A ``random.Random`` whose every draw is ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_the_ceiling_grows_by_the_multiplier_up_to_the_cap() -> None:
    policy = Backoff(0.5, 30.0)
    assert [policy.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [Backoff(1.0, 100.0, multiplier=3.0).ceiling(n) for n in range(5)] == [
        1,
        3,
        9,
        27,
        81,
    ]


def test_a_very_late_attempt_waits_the_cap() -> None:
    assert Backoff(0.5, 30.0).ceiling(10_000) == 30.0
    assert Backoff(0.5, 30.0, multiplier=1.5).ceiling(10**6) == 30.0


@pytest.mark.parametrize(
    ("jitter", "draw", "wait"),
    [
        (Jitter.NONE, 0.25, 4.0),
        (Jitter.FULL, 0.0, 0.0),
        (Jitter.FULL, 0.25, 1.0),
        (Jitter.EQUAL, 0.0, 2.0),
        (Jitter.EQUAL, 0.5, 3.0),
    ],
)
def test_the_jitter_places_the_wait_below_the_ceiling(
    jitter: Jitter, draw: float, wait: float
) -> None:
    assert Backoff(1.0, 60.0, jitter=jitter).delay(2, FixedRandom(draw)) == wait


@given(
    base=st.floats(0.0, 10.0),
    extra=st.floats(0.0, 100.0),
    multiplier=st.floats(1.0, 4.0),
    attempt=st.integers(0, 2_000),
    jitter=st.sampled_from(Jitter),
    rng=st.randoms(use_true_random=False),
)
def test_every_wait_lies_in_its_jitters_range(
    base: float,
    extra: float,
    multiplier: float,
    attempt: int,
    *,
    jitter: Jitter,
    rng: random.Random,
) -> None:
    policy = Backoff(base, base + extra, multiplier=multiplier, jitter=jitter)
    ceiling = policy.ceiling(attempt)
    assert min(base, base + extra) <= ceiling <= base + extra
    wait = policy.delay(attempt, rng)
    low = {Jitter.NONE: ceiling, Jitter.FULL: 0.0, Jitter.EQUAL: ceiling / 2}[jitter]
    assert low <= wait <= ceiling


def test_the_same_seed_gives_the_same_waits() -> None:
    policy = Backoff(0.1, 5.0)
    first = [policy.delay(n, random.Random(7)) for n in range(6)]
    assert first == [policy.delay(n, random.Random(7)) for n in range(6)]


def test_a_cap_below_the_base_caps_every_wait() -> None:
    assert [Backoff(2.0, 1.0).ceiling(n) for n in range(3)] == [1.0, 1.0, 1.0]
    assert Backoff(-1.0, 5.0, jitter=Jitter.NONE).delay(0, random.Random(0)) == 0.0


def test_a_shrinking_multiplier_is_refused() -> None:
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(1.0, 2.0, multiplier=0.5)


def test_a_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        Backoff(1.0, 2.0).delay(-1, random.Random(0))
