"""The common request's one-step composition (``gateway/compose/common.py``) against the
general path it must agree with: ``prepare_message`` then ``for_recipient`` per phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway.compose import CompositionError, CompositionSettings
from gateway.compose.channels import COMMENT_MARKER, PREFIXES
from gateway.compose.common import Composer
from gateway.compose.submit import (
    ComposedMessage,
    for_recipient,
    message_reference,
    prepare_message,
)
from gateway.events.send_request import SendRequest
from gateway.settings.composition import BindProfile

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
PROFILE = BindProfile(default_source="SMSC.RU")
ISO = BindProfile(iso=True, default_source="SMSC.RU")
EXAMPLES = settings(max_examples=600, deadline=None)

GSM = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡AZÄÖÑÜ§¿azäöñüà\n\r"
EXTENDED = "^{}\\[~]|€\f"
OTHER = "ЖжЁ中😀ÿ\u00a0\t"
texts = st.one_of(
    st.text(alphabet=GSM, min_size=1, max_size=170),
    st.text(alphabet=GSM + EXTENDED, min_size=1, max_size=170),
    st.text(alphabet=GSM + EXTENDED + OTHER, min_size=1, max_size=170),
    # Around the one-SMS limit, with extension characters counting twice.
    st.builds(lambda n, tail: "a" * n + tail, st.integers(150, 162), st.text(EXTENDED, max_size=6)),
    # What channels.render refuses in an SMS.
    st.builds(
        lambda lead, prefix, rest: lead + prefix + rest,
        st.sampled_from(["", " ", "\n"]),
        st.sampled_from(sorted(PREFIXES.values())),
        st.text(GSM, max_size=20),
    ),
    st.builds(
        lambda a, marker, b: a + marker + b,
        st.text(GSM, max_size=20),
        st.sampled_from([COMMENT_MARKER, "\n~~~", "~~~\n"]),
        st.text(GSM, max_size=20),
    ),
)
phones = st.one_of(
    st.from_regex(r"[0-9]{5,20}", fullmatch=True),
    st.sampled_from(["1234", "7" * 21, "٧٩٩٩١٢٣٤٥٦٧", "7999123456²", "+79991234567"]),
)
senders = st.one_of(
    st.none(),
    st.sampled_from(["Shop", "+79991234567", "79991234567", "1234", "12345678", "Bad+Name"]),
    st.sampled_from(["TooLongSenderName", "ümlaut", ""]),
)


def often(draw: st.DrawFn, usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    """A value from ``usual`` three times in four, else from ``other``."""
    return draw(usual if draw(st.integers(0, 3)) else other)


@st.composite
def requests(draw: st.DrawFn) -> SendRequest:
    """Requests near the usual one: each field usual most of the time, anything else too."""
    valid_phone = st.from_regex(r"[0-9]{5,20}", fullmatch=True)
    fields: dict[str, Any] = {
        "request_id": draw(st.text(min_size=1, max_size=20)),
        "recipients": often(
            draw,
            st.tuples(st.one_of(valid_phone, valid_phone, valid_phone, phones)),
            st.lists(phones, min_size=2, max_size=3).map(tuple),
        ),
        "text": often(draw, st.text(alphabet=GSM, min_size=1, max_size=60), texts),
        "sender_id": often(draw, st.sampled_from([None, "Shop"]), senders),
        "registered_delivery": draw(st.booleans()),
    }
    if draw(st.integers(0, 7)) == 0:
        fields["channel"] = draw(st.sampled_from(["flash", "viber", "hlr", "ping", "mail"]))
    if draw(st.integers(0, 7)) == 0:
        fields["provider_options"] = draw(
            st.sampled_from([{"encoding": "gsm7"}, {"encoding": "ucs2"}, {"subject": "x"}])
        )
    if draw(st.integers(0, 7)) == 0:
        fields["comment"] = draw(st.text(GSM, max_size=10))
    if draw(st.integers(0, 5)) == 0:
        fields["validity_seconds"] = draw(st.integers(-10, 86400 * 40))
    if draw(st.integers(0, 7)) == 0:
        fields["schedule_at"] = NOW + timedelta(minutes=draw(st.integers(-5, 5)))
    return SendRequest(**fields)


def general(
    request: SendRequest, profile: BindProfile, priority: bool
) -> tuple[ComposedMessage, ...] | str:
    """What the general path composes for ``request``, or the code it refuses it with."""
    try:
        prepared = prepare_message(
            request, CompositionSettings(), profile, priority=priority, now=NOW
        )
        return tuple(
            for_recipient(prepared, phone, reference=message_reference(request.request_id, phone))
            for phone in request.recipients
        )
    except CompositionError as exc:
        return exc.code


@EXAMPLES
@given(requests(), st.sampled_from([PROFILE, ISO]), st.booleans())
def test_the_usual_path_agrees_with_the_general_one(
    request: SendRequest, profile: BindProfile, priority: bool
) -> None:
    composer = Composer(CompositionSettings(), profile)
    usual = composer.usual(request, priority=priority)
    expected = general(request, profile, priority)
    event("usual path" if usual is not None else "general path")
    if usual is not None:
        assert (usual,) == expected
    # The composer as a whole gives what the general path gives, or refuses alike.
    try:
        composed: tuple[ComposedMessage, ...] | str = composer.compose(
            request, priority=priority, now=NOW
        )
    except CompositionError as exc:
        composed = exc.code
    assert composed == expected


@EXAMPLES
@given(
    text=st.text(alphabet=GSM + EXTENDED, min_size=1, max_size=80),
    phone=st.from_regex(r"[0-9]{5,20}", fullmatch=True),
    sender=st.sampled_from([None, "Shop", "+79991234567", "1234"]),
    validity=st.one_of(st.none(), st.integers(60, 86400 * 7)),
    priority=st.booleans(),
)
def test_every_usual_request_takes_the_usual_path(
    text: str, phone: str, sender: str | None, validity: int | None, priority: bool
) -> None:
    request = SendRequest(
        request_id="r1",
        recipients=(phone,),
        text=text,
        sender_id=sender,
        validity_seconds=validity,
    )
    if text.lstrip().startswith(tuple(PREFIXES.values())) or "\n~~~" in text + "\n":
        return  # refused by the general path; the usual path leaves it there
    usual = Composer(CompositionSettings(), PROFILE).usual(request, priority=priority)
    assert usual is not None
    assert (usual,) == general(request, PROFILE, priority)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipients", ("79991234567", "79991234568")),
        ("channel", "flash"),
        ("comment", "note"),
        ("provider_options", {"encoding": "gsm7"}),
        ("schedule_at", NOW + timedelta(hours=1)),
        ("text", "Привет"),
        ("text", "a" * 161),
    ],
)
def test_anything_else_goes_the_general_way(field: str, value: object) -> None:
    fields: dict[str, Any] = {"request_id": "r1", "recipients": ("79991234567",), "text": "Hi"}
    fields[field] = value
    request = SendRequest(**fields)
    assert Composer(CompositionSettings(), PROFILE).usual(request, priority=False) is None
