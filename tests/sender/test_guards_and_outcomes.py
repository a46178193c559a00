"""The duplicate and flood guards and the known-outcomes index, on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sender.guards import ProviderGuards
from gateway.sender.outcomes import KEPT_WHOLE_BYTES, KnownOutcomes
from gateway.settings.sender import GuardSettings


def test_an_identical_message_within_a_minute_is_a_duplicate() -> None:
    guards = ProviderGuards(GuardSettings())
    assert guards.check("79001234567", "hi", 0.0).action == "go"
    verdict = guards.check("79001234567", "hi", 59.0)
    assert (verdict.action, verdict.rule) == ("reject", "duplicate")
    assert guards.check("79001234567", "other text", 59.0).action == "go"
    assert guards.check("79001234568", "hi", 59.0).action == "go"
    assert guards.check("79001234567", "hi", 60.0).action == "go"


def test_duplicate_delay_policy_waits_out_the_minute() -> None:
    guards = ProviderGuards(GuardSettings(duplicate_policy="delay"))
    guards.check("7900", "hi", 10.0)
    verdict = guards.check("7900", "hi", 40.0)
    assert verdict.action == "delay"
    assert verdict.wait_seconds == 30.0


def test_a_message_the_provider_did_not_take_is_no_duplicate() -> None:
    guards = ProviderGuards(GuardSettings())
    guards.check("7900", "hi", 0.0)
    guards.forget("7900", "hi")
    assert guards.check("7900", "hi", 1.0).action == "go"


def test_the_51st_message_of_a_close_run_waits_for_a_30_second_gap() -> None:
    guards = ProviderGuards(GuardSettings())
    for i in range(50):
        assert guards.check("7900", f"m{i}", i * 10.0).action == "go"
    verdict = guards.check("7900", "m50", 500.0)
    assert (verdict.action, verdict.rule) == ("delay", "flood")
    assert verdict.wait_seconds == 20.0  # the 50th went at 490 s; 30 s after it
    assert guards.check("7900", "m50", 520.0).action == "go", "a 30 s gap starts a new run"


def test_a_run_broken_by_a_30_second_gap_starts_again() -> None:
    guards = ProviderGuards(GuardSettings(flood_limit=3))
    for t in (0.0, 1.0, 2.0):
        assert guards.check("7900", f"m{t}", t).action == "go"
    assert guards.check("7900", "x", 3.0).action == "delay"
    assert guards.check("7900", "y", 32.0).action == "go"


def test_flood_reject_policy() -> None:
    guards = ProviderGuards(GuardSettings(flood_limit=1, flood_policy="reject"))
    guards.check("7900", "a", 0.0)
    assert guards.check("7900", "b", 1.0).action == "reject"


def test_guard_settings_problems() -> None:
    assert GuardSettings(duplicate_policy="drop").problems()
    assert GuardSettings(flood_limit=0).problems()
    assert not GuardSettings().problems()


def test_known_outcomes_remember_for_the_window() -> None:
    known = KnownOutcomes(window_seconds=60.0)
    known.add(b"r1", 100.0)
    known.add(b"r2", 130.0)
    assert b"r1" in known
    known.expire(161.0)
    assert b"r1" not in known
    assert b"r2" in known
    assert len(known) == 1


def test_known_outcomes_refreshed_by_a_later_result() -> None:
    known = KnownOutcomes(window_seconds=60.0)
    known.add(b"r1", 0.0)
    known.add(b"r1", 50.0)
    known.expire(100.0)
    assert b"r1" in known


def test_known_outcomes_keep_the_latest_time_when_an_earlier_one_is_read_back() -> None:
    # The sender remembers its result when Kafka acknowledges it; the follower reads the
    # same result back later with the record's (earlier) timestamp.
    known = KnownOutcomes(window_seconds=60.0)
    known.add(b"r1", 50.0)
    known.add(b"r2", 60.0)
    known.add(b"r1", 49.0)
    known.expire(109.5)
    assert b"r1" in known
    known.expire(110.5)
    assert b"r1" not in known
    assert b"r2" in known


def test_a_result_read_back_is_known_by_its_key_from_its_kafka_timestamp() -> None:
    known = KnownOutcomes(window_seconds=60.0)
    known.read(b"r1", 100_000)
    known.read(None, 100_000)  # a record without a key names no request
    known.read(b"", 100_000)
    assert b"r1" in known
    assert len(known) == 1
    known.expire(160.5)
    assert b"r1" not in known


# Ids on both sides of the length kept whole (longer ones are kept as digests).
_IDS = st.binary(min_size=1, max_size=2 * KEPT_WHOLE_BYTES + 8)


@given(st.lists(_IDS, max_size=20), st.lists(_IDS, max_size=20))
def test_known_outcomes_know_exactly_the_ids_added_whatever_their_length(
    added: list[bytes], others: list[bytes]
) -> None:
    known = KnownOutcomes(window_seconds=60.0)
    for at, request_id in enumerate(added):
        known.add(request_id, float(at))
    for request_id in added:
        known.read(request_id, 0)  # read back earlier than remembered: nothing moves
        assert request_id in known
    for request_id in others:
        assert (request_id in known) == (request_id in added)
    assert len(known) == len(set(added))


@given(st.lists(st.tuples(_IDS, st.integers(0, 100_000)), max_size=20), st.floats(0, 200))
def test_a_result_read_back_is_remembered_as_if_added_at_its_timestamp(
    results: list[tuple[bytes, int]], now: float
) -> None:
    read, added = KnownOutcomes(window_seconds=60.0), KnownOutcomes(window_seconds=60.0)
    for request_id, timestamp_ms in results:
        read.read(request_id, timestamp_ms)
        added.add(request_id, timestamp_ms / 1000)
    read.expire(now)
    added.expire(now)
    assert len(read) == len(added)
    assert all((r in read) == (r in added) for r, _ in results)
