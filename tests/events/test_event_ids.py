"""``stable_event_id`` computes UUIDv5 itself; its ids must stay those of ``uuid.uuid5``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.events.envelope import EVENT_NAMESPACE, rfc3339, stable_event_id, stable_event_ids

PARTS = st.lists(
    st.one_of(st.text(), st.integers(), st.none(), st.booleans(), st.floats()), max_size=8
)


@given(PARTS)
def test_ids_equal_uuid5_of_the_joined_parts(parts: list[object]) -> None:
    name = "\x1f".join(str(part) for part in parts)
    assert stable_event_id(*parts) == str(uuid.uuid5(EVENT_NAMESPACE, name))


def test_ids_already_published_do_not_change() -> None:
    # Computed by the earlier implementation (str(uuid.uuid5(...))) and stored on Kafka.
    dlr = ("smsc.dlr/1", "200000000", "79160000000", "1", 0, None, None)
    assert stable_event_id(*dlr) == "c27c1eee-5ed4-5975-bf82-a9e54d7fa960"
    assert stable_event_id("req-1") == "e43b7000-4d7d-5c3f-b764-f1fa2bce97d5"
    incoming = ("smsc.incoming/1", "webhook", "id", "ж", None)
    assert stable_event_id(*incoming) == "7b43080d-2787-54c8-b60b-e5d106e0de92"
    assert stable_event_id() == "0fb97eb9-f30d-5737-81e7-25ea42f415c5"


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)), None]),
    ),
)
def test_rfc3339_equals_the_general_conversion(moment: datetime) -> None:
    expected = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    assert rfc3339(moment) == expected.replace("+00:00", "Z")


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.lists(st.integers(-2_000_000, 2_000_000), min_size=2, max_size=20),
)
def test_rfc3339_is_exact_for_moments_in_one_second_and_its_neighbours(
    base: datetime, offsets: list[int]
) -> None:
    """The text of a second is cached: moments in the same second and in the next or the
    previous one, one after the other, each get their own exact text."""
    for offset in offsets:
        moment = base + timedelta(microseconds=offset)
        expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert rfc3339(moment) == expected


@given(PARTS, st.one_of(st.text(), st.integers(), st.none()))
def test_ids_under_leading_parts_equal_the_ids_of_all_the_parts(
    parts: list[object], last: object
) -> None:
    assert stable_event_ids(*parts)(last) == stable_event_id(*parts, last)


def test_rfc3339_of_the_first_and_last_representable_moments() -> None:
    for moment in (
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC, microsecond=0),
        datetime.min.replace(tzinfo=UTC, microsecond=999),
    ):
        expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert rfc3339(moment) == expected
