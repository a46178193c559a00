"""OffsetTracker: the commit point never passes a record that is still running."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sender.offsets import OffsetTracker

# Per partition: the offsets consumed, increasing, with gaps (compaction, transaction markers).
consumed = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.lists(st.integers(0, 200), min_size=1, max_size=25, unique=True).map(sorted),
    min_size=1,
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, list[int]], list[tuple[str, int]], list[bool]]:
    """Consumed offsets, a random subset completed in random order, and when to commit."""
    offsets = draw(consumed)
    every = [(p, o) for p, offs in offsets.items() for o in offs]
    done = draw(st.lists(st.sampled_from(every), unique=True)) if every else []
    commit_after = draw(st.lists(st.booleans(), min_size=len(done), max_size=len(done)))
    return offsets, done, commit_after


def expected_commit(offsets: list[int], finished: set[int]) -> int | None:
    """1 + the highest offset such that every consumed offset up to it is complete."""
    point = None
    for offset in offsets:
        if offset not in finished:
            break
        point = offset + 1
    return point


def tracked(offsets: dict[str, list[int]]) -> OffsetTracker[str]:
    tracker: OffsetTracker[str] = OffsetTracker()
    for partition, offs in offsets.items():
        for offset in offs:
            tracker.track(partition, offset)
    return tracker


@given(scenarios())
def test_committable_is_the_end_of_the_completed_prefix(
    scenario: tuple[dict[str, list[int]], list[tuple[str, int]], list[bool]],
) -> None:
    offsets, done, _ = scenario
    tracker = tracked(offsets)
    finished: dict[str, set[int]] = {p: set() for p in offsets}
    for partition, offset in done:
        tracker.complete(partition, offset)
        finished[partition].add(offset)
        expected = {
            p: point
            for p in offsets
            if (point := expected_commit(offsets[p], finished[p])) is not None
        }
        assert tracker.committable() == expected
        # Pending: everything not yet behind the commit point (done or not).
        for p in offsets:
            behind = sum(1 for o in offsets[p] if o < expected.get(p, -1))
            assert tracker.pending(p) == len(offsets[p]) - behind
        assert tracker.pending() == sum(tracker.pending(p) for p in offsets)


@given(scenarios())
def test_committed_offsets_are_not_offered_again(
    scenario: tuple[dict[str, list[int]], list[tuple[str, int]], list[bool]],
) -> None:
    offsets, done, commit_after = scenario
    tracker = tracked(offsets)
    finished: dict[str, set[int]] = {p: set() for p in offsets}
    last_commit: dict[str, int] = {}
    for (partition, offset), commit in zip(done, commit_after, strict=True):
        tracker.complete(partition, offset)
        finished[partition].add(offset)
        points = {p: expected_commit(offsets[p], finished[p]) for p in offsets}
        expected = {
            p: point
            for p, point in points.items()
            if point is not None and point != last_commit.get(p)
        }
        assert tracker.committable() == expected
        if commit:
            offered = tracker.committable()
            tracker.committed(offered)
            last_commit.update(offered)
            assert tracker.committable() == {}
    # A commit point never moves backwards, and never past an unfinished offset.
    for p, point in last_commit.items():
        assert all(o in finished[p] for o in offsets[p] if o < point)


def test_pending_counts_started_records() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    assert tracker.pending() == 0
    for offset in (10, 11, 12):
        tracker.track("a", offset)
    tracker.track("b", 0)
    assert tracker.pending("a") == 3
    assert tracker.pending() == 4
    tracker.complete("a", 12)
    assert tracker.pending("a") == 3  # 12 waits behind 10 and 11 for the commit point
    tracker.complete("a", 10)
    assert tracker.pending("a") == 2
    assert tracker.committable() == {"a": 11}
    tracker.complete("a", 11)
    assert tracker.pending("a") == 0
    assert tracker.committable() == {"a": 13}
    assert tracker.pending("missing") == 0


def test_out_of_order_completion_waits_for_the_head() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in range(5):
        tracker.track("a", offset)
    for offset in (4, 3, 2, 1):
        tracker.complete("a", offset)
        assert tracker.committable() == {}
    tracker.complete("a", 0)
    assert tracker.committable() == {"a": 5}


def test_committed_suppresses_recommit_until_the_point_moves() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in range(3):
        tracker.track("a", offset)
    tracker.complete("a", 0)
    assert tracker.committable() == {"a": 1}
    tracker.committed({"a": 1})
    assert tracker.committable() == {}
    tracker.complete("a", 1)
    assert tracker.committable() == {"a": 2}
    tracker.committed({"a": 2, "gone": 7})  # unknown partitions are ignored
    assert tracker.committable() == {}


def test_forget_drops_partitions() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for partition in ("a", "b"):
        tracker.track(partition, 0)
        tracker.track(partition, 1)
        tracker.complete(partition, 0)
    assert tracker.committable() == {"a": 1, "b": 1}
    tracker.forget({"a", "never-seen"})
    assert tracker.committable() == {"b": 1}
    assert tracker.pending("a") == 0
    assert tracker.pending() == 1
    tracker.complete("a", 1)  # a late completion of a revoked partition is ignored
    assert tracker.committable() == {"b": 1}
    tracker.track("a", 7)  # the partition comes back: tracked afresh
    tracker.complete("a", 7)
    assert tracker.committable() == {"a": 8, "b": 1}
