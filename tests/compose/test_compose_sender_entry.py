"""The sender's entry points: settings turned into a bind profile, every recipient composed,
and the result events built from composed messages valid against their schema."""

from __future__ import annotations

import pytest

from gateway.compose import (
    CompositionError,
    CompositionSettings,
    Encoding,
    compose_recipients,
    message_reference,
)
from gateway.events.send_result import ErrorInfo, RecipientOutcome, send_result_event
from gateway.roles.sender import bind_profile
from gateway.settings import SmppSettings
from tests.compose.composecheck import NOW, reassemble, request
from tests.eventcheck import validate_event

PROFILE = bind_profile(SmppSettings(system_id="login", source_addr="SMSC.RU"))
PHONES = ("79991234567", "79997654321", "447700900123")


@pytest.mark.parametrize(
    ("system_type", "iso"),
    [("", False), ("ISO", True), ("iso, single", True), ("SINGLE", False), ("MCON2,ISO", True)],
)
def test_bind_profile_reads_the_iso_flag(system_type: str, iso: bool) -> None:
    smpp = SmppSettings(system_type=system_type, source_addr="Brand", source_addr_npi=0)
    profile = bind_profile(smpp)
    assert profile.iso is iso
    assert (profile.default_source, profile.alphanumeric_ton, profile.alphanumeric_npi) == (
        "Brand",
        5,
        0,
    )
    assert (profile.destination_ton, profile.destination_npi) == (1, 1)


def test_every_recipient_gets_its_own_parts_and_reference() -> None:
    sent = request(recipients=PHONES, text="Привет! " * 20)
    messages = compose_recipients(sent, PROFILE, CompositionSettings(), priority=True, now=NOW)
    assert [m.phone for m in messages] == list(PHONES)
    for message in messages:
        assert message.encoding is Encoding.UCS2
        assert message.part_count == 3
        assert {pdu.destination_addr for pdu in message.parts} == {message.phone}
        assert {pdu.priority_flag for pdu in message.parts} == {1}
        assert message.reference == message_reference("req-1", message.phone) & 0xFF
        assert reassemble(message.parts).decode("utf-16-be") == "Привет! " * 20


def test_references_can_come_from_the_caller() -> None:
    sent = request(recipients=PHONES[:2], text="a" * 200)
    counter = iter(range(7, 100))
    messages = compose_recipients(
        sent,
        PROFILE,
        CompositionSettings(split="sar"),
        priority=False,
        now=NOW,
        reference=lambda request_id, phone: next(counter),
    )
    assert [m.reference for m in messages] == [7, 8]


def test_iso_bind_from_the_smpp_settings() -> None:
    smpp = SmppSettings(system_id="login", system_type="ISO,SINGLE")
    (message,) = compose_recipients(
        request(text="Ça"), bind_profile(smpp), CompositionSettings(), priority=False, now=NOW
    )
    assert message.encoding is Encoding.LATIN1
    assert message.parts[0].short_message == b"\xc7a"


def test_a_bad_recipient_fails_the_whole_request() -> None:
    sent = request(recipients=("79991234567", "123"))
    with pytest.raises(CompositionError) as caught:
        compose_recipients(sent, PROFILE, CompositionSettings(), priority=False, now=NOW)
    assert caught.value.code == "invalid_phone"


def test_result_events_from_composed_messages_are_valid() -> None:
    sent = request(recipients=PHONES[:2], text="a" * 400, tags={"team": "growth"})
    messages = compose_recipients(sent, PROFILE, CompositionSettings(), priority=False, now=NOW)
    # One provider id per part, as the sender records them (SINGLE mode: all different).
    outcomes = [
        RecipientOutcome(m.phone, "accepted", tuple(f"{n}{i}" for i in range(m.part_count)))
        for n, m in enumerate(messages, start=1)
    ]
    accepted = send_result_event(
        request_id=sent.request_id,
        outcome="accepted",
        occurred_at=NOW,
        received_at=NOW,
        transport="smpp",
        recipients=outcomes,
        tags=sent.tags,
        attempts=sum(m.part_count for m in messages),
    )
    validate_event(accepted)
    assert [r["parts"] for r in accepted["recipients"]] == [3, 3]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"channel": "telegram_code", "text": "12"}, "invalid_telegram_code"),
        ({"text": "a" * 5000}, "too_many_parts"),
        ({"channel": "mail"}, "missing_subject"),
    ],
)
def test_rejected_events_carry_the_reason_code(fields: dict[str, str], code: str) -> None:
    sent = request(**fields)
    with pytest.raises(CompositionError) as caught:
        compose_recipients(sent, PROFILE, CompositionSettings(), priority=False, now=NOW)
    rejected = send_result_event(
        request_id=sent.request_id,
        outcome="rejected",
        occurred_at=NOW,
        received_at=NOW,
        transport="none",
        error=ErrorInfo(caught.value.code, str(caught.value)),
    )
    validate_event(rejected)
    assert rejected["error"]["code"] == code
