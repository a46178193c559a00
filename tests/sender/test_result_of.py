"""The result the sender publishes for what each recipient came to: byte for byte as
consumers have read it so far, and the one-recipient case equal to the general rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events.envelope import dumps
from gateway.events.send_request import SendRequest
from gateway.events.send_result import (
    ErrorInfo,
    RecipientOutcome,
    overall_outcome,
    send_result_event,
)
from gateway.sender.decision import result_of

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
T1 = T0 + timedelta(seconds=2)


def test_an_accepted_single_recipient_result_byte_for_byte() -> None:
    request = SendRequest("req-1", ("79991234567",), "hi", tags=MappingProxyType({"order": "17"}))
    accepted = RecipientOutcome("79991234567", "accepted", ("1001",))
    outcome, event = result_of(request, [(accepted, 1)], "smpp", received_at=T0, occurred_at=T1)
    assert outcome == "accepted"
    assert dumps(event) == (
        b'{"schema":"smsc.send-result/1","event_id":"3c2c122d-eee8-5624-b3df-32d25067933e",'
        b'"occurred_at":"2030-01-02T03:04:07.678Z","request_id":"req-1","outcome":"accepted",'
        b'"transport":"smpp","received_at":"2030-01-02T03:04:05.678Z","attempts":1,'
        b'"recipients":[{"phone":"79991234567","status":"accepted","message_ids":["1001"],'
        b'"parts":1}],"tags":{"order":"17"}}'
    )


def test_a_two_recipient_result_byte_for_byte() -> None:
    request = SendRequest("req-2", ("79991234567", "79990000001"), "hi")
    failed = RecipientOutcome("79991234567", "failed", error=ErrorInfo("esme_rthrottled", "x", 88))
    rejected = RecipientOutcome(
        "79990000001", "rejected", error=ErrorInfo("esme_rinvdstadr", "y", 11)
    )
    outcome, event = result_of(
        request, [(failed, 3), (rejected, 1)], "smpp", received_at=T0, occurred_at=T0
    )
    assert outcome == "failed"
    assert dumps(event) == (
        b'{"schema":"smsc.send-result/1","event_id":"937d8d9f-9019-5d7d-a12b-dc1dedfa4bf2",'
        b'"occurred_at":"2030-01-02T03:04:05.678Z","request_id":"req-2","outcome":"failed",'
        b'"transport":"smpp","received_at":"2030-01-02T03:04:05.678Z","attempts":4,'
        b'"recipients":[{"phone":"79991234567","status":"failed","message_ids":[],"parts":0,'
        b'"error":{"code":"esme_rthrottled","message":"x","command_status":88}},'
        b'{"phone":"79990000001","status":"rejected","message_ids":[],"parts":0,'
        b'"error":{"code":"esme_rinvdstadr","message":"y","command_status":11}}],"tags":{}}'
    )


_OUTCOMES = st.builds(
    RecipientOutcome,
    st.from_regex(r"[0-9]{5,20}", fullmatch=True),
    st.sampled_from(["accepted", "rejected", "failed", "duplicate"]),
    st.lists(st.text("0123456789abcdef", min_size=1, max_size=8), max_size=3).map(tuple),
    st.none() | st.builds(ErrorInfo, st.text(max_size=8), st.text(max_size=20)),
)


@settings(deadline=None)
@given(
    st.lists(st.tuples(_OUTCOMES, st.integers(0, 5)), min_size=1, max_size=4),
    st.sampled_from(["smpp", "http"]),
    st.dictionaries(st.sampled_from(["a", "b"]), st.text(max_size=5)),
)
def test_the_result_follows_the_general_rule_for_any_number_of_recipients(
    outcomes: list[tuple[RecipientOutcome, int]], transport: str, tags: dict[str, str]
) -> None:
    phones = tuple(recipient.phone for recipient, _ in outcomes)
    request = SendRequest("req-3", phones, "hi", tags=MappingProxyType(tags))
    recipients = [recipient for recipient, _ in outcomes]
    expected = overall_outcome(recipients)
    outcome, event = result_of(request, outcomes, transport, received_at=T0, occurred_at=T1)
    assert outcome == expected
    assert event == send_result_event(
        request_id="req-3",
        outcome=expected,
        occurred_at=T1,
        received_at=T0,
        transport=transport,
        recipients=recipients,
        tags=tags,
        attempts=sum(attempts for _, attempts in outcomes),
    )
