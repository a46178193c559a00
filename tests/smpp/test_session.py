"""The sans-I/O session: an ESME and an SMSC talking to each other in memory, on a fake clock."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest

from gateway.smpp.codec import FrameDecoder, decode, encode
from gateway.smpp.constants import MAX_SEQUENCE, CommandId, CommandStatus, TlvTag
from gateway.smpp.errors import SessionStateError, WindowFullError
from gateway.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    tlv_cstr,
    tlv_u8,
)
from gateway.smpp.session import (
    HOUSEKEEPING,
    TRANSITIONS,
    Event,
    ProtocolViolation,
    RequestAbandoned,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    Role,
    Session,
    SessionClosed,
    SessionSettings,
    State,
    Trigger,
)

QUIET = SessionSettings(enquire_link_interval_seconds=None)
SUBMIT = SubmitSm(destination_addr="79231234567", source_addr="SMSC", short_message=b"hello")
RECEIPT = DeliverSm(
    source_addr="79231234567",
    destination_addr="SMSC",
    esm_class=0x04,
    short_message=b"id:854019 sub:001 dlvrd:001 submit date:1108202241 "
    b"done date:1108202241 stat:DELIVRD err:000",
    tlvs=(tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, "854019"), tlv_u8(TlvTag.MESSAGE_STATE, 2)),
)


@dataclass
class Link:
    """Two sessions wired back to back, and the time both see."""

    esme: Session
    smsc: Session
    now: float = 1000.0
    to_smsc: list[bytes] = field(default_factory=list)
    to_esme: list[bytes] = field(default_factory=list)

    def pump(self) -> tuple[list[Event], list[Event]]:
        """Deliver queued bytes both ways until both sides are quiet."""
        esme_events: list[Event] = []
        smsc_events: list[Event] = []
        while True:
            up, down = self.esme.data_to_send(), self.smsc.data_to_send()
            if not up and not down:
                return esme_events, smsc_events
            if up:
                self.to_smsc.append(up)
                smsc_events += self.smsc.receive_data(up, self.now)
            if down:
                self.to_esme.append(down)
                esme_events += self.esme.receive_data(down, self.now)

    def advance(self, seconds: float) -> tuple[list[Event], list[Event]]:
        """Move the clock, fire both sides' timers, then deliver what they sent."""
        self.now += seconds
        esme_events = self.esme.handle_timer(self.now)
        smsc_events = self.smsc.handle_timer(self.now)
        more_esme, more_smsc = self.pump()
        return esme_events + more_esme, smsc_events + more_smsc


def make_link(esme: SessionSettings = QUIET, smsc: SessionSettings = QUIET) -> Link:
    return Link(Session(Role.ESME, esme, 1000.0), Session(Role.SMSC, smsc, 1000.0))


def sent_pdus(chunks: list[bytes]) -> list[Pdu]:
    decoder = FrameDecoder()
    return [decode(frame) for chunk in chunks for frame in decoder.feed(chunk)]


def requests(events: list[Event]) -> list[Pdu]:
    return [event.pdu for event in events if isinstance(event, RequestReceived)]


def bound_link(esme: SessionSettings = QUIET, smsc: SessionSettings = QUIET) -> Link:
    link = make_link(esme, smsc)
    bind = link.esme.send(BindTransceiver(system_id="login", password="secret"), link.now)
    _, smsc_events = link.pump()
    assert requests(smsc_events) == [bind]
    link.smsc.respond(bind, BindTransceiverResp(system_id="SMSC"), link.now)
    esme_events, _ = link.pump()
    assert esme_events == [
        ResponseReceived(bind, BindTransceiverResp(sequence_number=1, system_id="SMSC"))
    ]
    return link


def test_bind_transceiver() -> None:
    link = bound_link()
    assert link.esme.state is State.BOUND_TRX
    assert link.smsc.state is State.BOUND_TRX
    assert link.esme.outstanding == 0
    assert link.esme.window_free == QUIET.window
    assert link.smsc.unanswered == 0


def test_bind_rejected_leaves_both_open() -> None:
    link = make_link()
    bind = link.esme.send(BindTransceiver(system_id="login", password="wrong"), link.now)
    link.pump()
    rejection = BindTransceiverResp(command_status=CommandStatus.ESME_RINVPASWD)
    link.smsc.respond(bind, rejection, link.now)
    esme_events, _ = link.pump()
    assert esme_events == [
        ResponseReceived(bind, BindTransceiverResp(sequence_number=1, command_status=0x0E))
    ]
    assert link.esme.state is State.OPEN
    assert link.smsc.state is State.OPEN
    assert len(link.to_esme[-1]) == 16  # error bind_resp carries no body


def test_submit_sm_and_response() -> None:
    link = bound_link()
    sent = link.esme.send(SUBMIT, link.now)
    assert sent.sequence_number == 2
    assert link.esme.window_free == QUIET.window - 1
    _, smsc_events = link.pump()
    assert requests(smsc_events) == [sent]
    link.smsc.respond(sent, SubmitSmResp(message_id="854019"), link.now)
    esme_events, _ = link.pump()
    assert esme_events == [
        ResponseReceived(sent, SubmitSmResp(sequence_number=2, message_id="854019"))
    ]
    assert link.esme.window_free == QUIET.window


def test_deliver_sm_answered_only_when_the_application_responds() -> None:
    link = bound_link()
    delivered = link.smsc.send(RECEIPT, link.now)
    esme_events, smsc_events = link.pump()
    assert requests(esme_events) == [delivered]
    assert smsc_events == []
    uplink_before = len(link.to_smsc)
    # Time passes, timers fire; still nothing goes back until respond().
    esme_events, smsc_events = link.advance(5.0)
    assert (esme_events, smsc_events) == ([], [])
    assert len(link.to_smsc) == uplink_before
    assert link.esme.unanswered == 1
    assert link.smsc.outstanding == 1

    link.esme.respond(delivered, DeliverSmResp(), link.now)
    _, smsc_events = link.pump()
    assert smsc_events == [
        ResponseReceived(delivered, DeliverSmResp(sequence_number=delivered.sequence_number))
    ]
    assert link.esme.unanswered == 0
    with pytest.raises(SessionStateError):
        link.esme.respond(delivered, DeliverSmResp(), link.now)


def test_window_full() -> None:
    link = bound_link(esme=SessionSettings(window=2, enquire_link_interval_seconds=None))
    first = link.esme.send(SUBMIT, link.now)
    link.esme.send(SUBMIT, link.now)
    assert link.esme.window_free == 0
    with pytest.raises(WindowFullError) as caught:
        link.esme.send(SUBMIT, link.now)
    assert caught.value.retriable
    link.esme.send(EnquireLink(), link.now)  # housekeeping is outside the window
    link.pump()
    link.smsc.respond(first, SubmitSmResp(message_id="1"), link.now)
    link.pump()
    assert link.esme.window_free == 1
    assert link.esme.send(SUBMIT, link.now).sequence_number == 5


def test_response_timeout() -> None:
    link = bound_link(
        esme=SessionSettings(response_timeout_seconds=10.0, enquire_link_interval_seconds=None)
    )
    sent = link.esme.send(SUBMIT, link.now)
    link.pump()
    assert link.esme.next_deadline() == link.now + 10.0
    assert link.advance(9.999) == ([], [])
    esme_events, _ = link.advance(0.001)
    assert esme_events == [ResponseTimedOut(sent)]
    assert link.esme.state is State.BOUND_TRX
    assert link.esme.window_free == QUIET.window
    # The late answer is a protocol violation, not a second outcome.
    link.smsc.respond(sent, SubmitSmResp(message_id="1"), link.now)
    esme_events, _ = link.pump()
    assert [type(event) for event in esme_events] == [ProtocolViolation]


def test_enquire_link_when_idle_answered_automatically() -> None:
    link = bound_link(esme=SessionSettings(enquire_link_interval_seconds=30.0))
    bound_at = link.now
    assert link.esme.next_deadline() == bound_at + 30.0
    assert link.advance(29.9) == ([], [])
    assert link.esme.outstanding == 0
    esme_events, smsc_events = link.advance(0.1)
    assert (esme_events, smsc_events) == ([], [])  # neither side's application sees it
    enquire, answer = sent_pdus(link.to_smsc[-1:]) + sent_pdus(link.to_esme[-1:])
    assert enquire.command_id == CommandId.ENQUIRE_LINK
    assert answer.command_id == CommandId.ENQUIRE_LINK_RESP
    assert answer.sequence_number == enquire.sequence_number
    assert link.esme.outstanding == 0
    assert link.esme.next_deadline() == link.now + 30.0


def test_traffic_postpones_enquire_link() -> None:
    link = bound_link(esme=SessionSettings(enquire_link_interval_seconds=30.0))
    link.advance(20.0)
    sent = link.esme.send(SUBMIT, link.now)
    link.pump()
    link.smsc.respond(sent, SubmitSmResp(message_id="1"), link.now)
    link.pump()
    link.advance(29.0)
    assert CommandId.ENQUIRE_LINK not in [pdu.command_id for pdu in sent_pdus(link.to_smsc)]


def test_unanswered_enquire_link_closes() -> None:
    link = bound_link(
        esme=SessionSettings(enquire_link_interval_seconds=30.0, response_timeout_seconds=10.0)
    )
    link.now += 30.0
    assert link.esme.handle_timer(link.now) == []
    assert link.esme.data_to_send()  # the enquire_link, which the peer never gets
    link.now += 10.0
    events = link.esme.handle_timer(link.now)
    assert events == [SessionClosed("EnquireLink unanswered")]
    assert link.esme.state is State.CLOSED
    assert link.esme.next_deadline() is None


def test_inactivity_cut_on_the_smsc_side() -> None:
    smsc = SessionSettings(inactivity_timeout_seconds=120.0, enquire_link_interval_seconds=None)
    link = bound_link(smsc=smsc)
    last_traffic = link.now
    assert link.smsc.next_deadline() == last_traffic + 120.0
    assert link.advance(119.9) == ([], [])
    # Both sides at once: an identity check on link.smsc.state alone would stay narrowed
    # for the type checker past the advance below.
    assert (link.esme.state, link.smsc.state) == (State.BOUND_TRX, State.BOUND_TRX)
    _, smsc_events = link.advance(0.1)
    assert link.now == last_traffic + 120.0
    assert smsc_events == [SessionClosed("nothing received for 120 s")]
    assert link.smsc.state is State.CLOSED


def test_enquire_links_keep_the_smsc_side_alive() -> None:
    # The provider's own example: enquire-link-interval = 60 against its 2-minute cut.
    esme = SessionSettings(enquire_link_interval_seconds=60.0)
    smsc = SessionSettings(inactivity_timeout_seconds=120.0, enquire_link_interval_seconds=None)
    link = bound_link(esme, smsc)
    end = link.now + 900.0
    while link.now < end:
        deadlines = [d for d in (link.esme.next_deadline(), link.smsc.next_deadline()) if d]
        esme_events, smsc_events = link.advance(min(deadlines) - link.now)
        assert not any(isinstance(e, SessionClosed) for e in esme_events + smsc_events)
    assert link.smsc.state is State.BOUND_TRX
    enquiries = [p for p in sent_pdus(link.to_smsc) if p.command_id == CommandId.ENQUIRE_LINK]
    assert len(enquiries) == 15


def test_esme_unbind_closes_both() -> None:
    link = bound_link()
    link.esme.unbind(link.now)
    assert link.esme.state is State.UNBINDING
    with pytest.raises(SessionStateError):
        link.esme.send(SUBMIT, link.now)
    esme_events, smsc_events = link.pump()
    assert smsc_events == [SessionClosed("peer unbound", by_peer=True)]
    assert esme_events == [SessionClosed("unbound")]
    assert (link.esme.state, link.smsc.state) == (State.CLOSED, State.CLOSED)
    assert link.esme.next_deadline() is None
    assert link.smsc.next_deadline() is None


def test_smsc_unbind_closes_both() -> None:
    link = bound_link()
    link.smsc.unbind(link.now)
    esme_events, smsc_events = link.pump()
    assert esme_events == [SessionClosed("peer unbound", by_peer=True)]
    assert smsc_events == [SessionClosed("unbound")]


def test_unbind_unanswered_closes() -> None:
    link = bound_link(
        esme=SessionSettings(response_timeout_seconds=5.0, enquire_link_interval_seconds=None)
    )
    link.esme.unbind(link.now)
    link.esme.data_to_send()  # lost on the way
    assert link.esme.handle_timer(link.now + 5.0) == [SessionClosed("Unbind unanswered")]


def _raw(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


def test_unknown_command_id_gets_generic_nack_with_its_sequence() -> None:
    link = bound_link()
    events = link.esme.receive_data(_raw(0x00000099, 77), link.now)
    assert events == [
        ProtocolViolation("unknown command_id 0x00000099", CommandStatus.ESME_RINVCMDID)
    ]
    answer = link.esme.data_to_send()
    assert decode(answer) == GenericNack(
        sequence_number=77, command_status=CommandStatus.ESME_RINVCMDID
    )
    assert link.esme.state is State.BOUND_TRX


def test_malformed_body_gets_generic_nack_and_session_survives() -> None:
    link = bound_link()
    link.esme.receive_data(_raw(CommandId.DELIVER_SM, 12, b"\x00\x01"), link.now)
    assert decode(link.esme.data_to_send()) == GenericNack(
        sequence_number=12, command_status=CommandStatus.ESME_RINVCMDLEN
    )
    assert link.esme.state is State.BOUND_TRX


@pytest.mark.parametrize(
    "garbage", [b"\x00\x00\x00\x05", b"\xff\xff\xff\xff", b"GET / HTTP/1.1\r\n"]
)
def test_framing_garbage_nacks_and_closes(garbage: bytes) -> None:
    link = bound_link()
    sent = link.esme.send(SUBMIT, link.now)
    link.esme.data_to_send()
    events = link.esme.receive_data(garbage, link.now)
    assert isinstance(events[0], ProtocolViolation)
    reason = events[0].message
    assert events[1:] == [RequestAbandoned(sent, reason), SessionClosed(reason)]
    assert decode(link.esme.data_to_send()) == GenericNack(
        command_status=CommandStatus.ESME_RINVCMDLEN
    )
    assert link.esme.receive_data(encode(SubmitSmResp(sequence_number=2)), link.now) == []


def test_unreadable_response_fails_its_request() -> None:
    link = bound_link()
    sent = link.esme.send(SUBMIT, link.now)
    link.pump()
    bad = _raw(CommandId.SUBMIT_SM_RESP, sent.sequence_number, b"no-terminator")
    events = link.esme.receive_data(bad, link.now)
    nack = GenericNack(
        sequence_number=sent.sequence_number, command_status=CommandStatus.ESME_RINVCMDLEN
    )
    assert events[1:] == [ResponseReceived(sent, nack)]
    assert link.esme.window_free == QUIET.window
    assert link.esme.data_to_send() == b""  # a response is never answered


def test_submit_sm_before_bind_refused() -> None:
    smsc = Session(Role.SMSC, QUIET, 0.0)
    events = smsc.receive_data(encode(SubmitSm(sequence_number=5, destination_addr="1")), 0.0)
    assert [type(event) for event in events] == [ProtocolViolation]
    answer = smsc.data_to_send()
    assert answer == encode(
        SubmitSmResp(sequence_number=5, command_status=CommandStatus.ESME_RINVBNDSTS)
    )
    assert len(answer) == 16
    assert smsc.state is State.OPEN


def test_second_bind_refused_as_already_bound() -> None:
    link = bound_link()
    with pytest.raises(SessionStateError):
        link.esme.send(BindTransmitter(), link.now)
    link.smsc.receive_data(encode(BindTransceiver(sequence_number=9, system_id="again")), link.now)
    answer = decode(link.smsc.data_to_send())
    assert answer == BindTransceiverResp(
        sequence_number=9, command_status=CommandStatus.ESME_RALYBND
    )
    assert link.smsc.state is State.BOUND_TRX


@pytest.mark.parametrize(
    ("role", "pdu"),
    [
        (Role.ESME, DeliverSm()),
        (Role.SMSC, SubmitSm()),
        (Role.SMSC, QuerySm()),
        (Role.ESME, SubmitSmResp()),
    ],
)
def test_role_cannot_originate(role: Role, pdu: Pdu) -> None:
    link = bound_link()
    session = link.esme if role is Role.ESME else link.smsc
    with pytest.raises(SessionStateError):
        session.send(pdu, link.now)


def test_request_from_the_wrong_role_is_an_invalid_command() -> None:
    link = bound_link()
    link.smsc.send(RECEIPT, link.now)
    link.esme.receive_data(link.smsc.data_to_send(), link.now)
    link.smsc.receive_data(encode(DeliverSm(sequence_number=3)), link.now)
    assert decode(link.smsc.data_to_send()) == GenericNack(
        sequence_number=3, command_status=CommandStatus.ESME_RINVCMDID
    )


def test_sequence_numbers_wrap_at_0x7fffffff() -> None:
    link = bound_link()
    # Sending 2**31 requests is not an option; start the counter near the top instead.
    link.esme._next_sequence = MAX_SEQUENCE - 1
    assert link.esme.send(SUBMIT, link.now).sequence_number == MAX_SEQUENCE - 1
    assert link.esme.send(SUBMIT, link.now).sequence_number == MAX_SEQUENCE
    after_wrap = link.esme.send(SUBMIT, link.now)
    assert after_wrap.sequence_number == 1
    # When the counter comes round again, numbers still outstanding are skipped.
    link.esme._next_sequence = MAX_SEQUENCE - 1
    assert link.esme.send(SUBMIT, link.now).sequence_number == 2
    link.pump()
    seen = [pdu.sequence_number for pdu in sent_pdus(link.to_smsc)[1:]]
    assert seen == [MAX_SEQUENCE - 1, MAX_SEQUENCE, 1, 2]


def test_close_reports_every_outstanding_request() -> None:
    link = bound_link()
    sent = [link.esme.send(SUBMIT, link.now) for _ in range(3)]
    enquiry = link.esme.send(EnquireLink(), link.now)
    events = link.esme.close()
    assert events == [
        *(RequestAbandoned(pdu, "connection lost") for pdu in sent),
        RequestAbandoned(enquiry, "connection lost"),
        SessionClosed("connection lost"),
    ]
    assert link.esme.outstanding == 0
    assert link.esme.state is State.CLOSED
    assert link.esme.close() == []
    assert link.esme.receive_data(encode(SubmitSmResp(sequence_number=2)), link.now) == []
    assert link.esme.handle_timer(link.now + 1000) == []


def test_close_forgets_unanswered_requests() -> None:
    link = bound_link()
    delivered = link.smsc.send(RECEIPT, link.now)
    link.pump()
    link.esme.close()
    with pytest.raises(SessionStateError):
        link.esme.respond(delivered, DeliverSmResp(), link.now)


def test_a_response_of_the_wrong_type_fails_its_request_without_binding() -> None:
    esme = Session(Role.ESME, SessionSettings(), 0.0)
    bind = esme.send(BindTransceiver(system_id="gw", password="pw"), 0.0)
    wrong = encode(SubmitSmResp(sequence_number=bind.sequence_number, message_id="1"))
    events = esme.receive_data(wrong, 0.1)
    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    responses = [e for e in events if isinstance(e, ResponseReceived)]
    assert len(violations) == 1
    assert len(responses) == 1
    assert isinstance(responses[0].response, GenericNack)
    assert responses[0].response.command_status == CommandStatus.ESME_RINVCMDID
    assert esme.state is State.OPEN


def test_unbind_while_the_bind_is_outstanding_ends_the_session() -> None:
    # Nothing to unbind yet (SMPP 3.4 allows unbind only when bound): the session ends at
    # once, says so, and gives the bind up, so no request is left without an outcome.
    esme = Session(Role.ESME, QUIET, 0.0)
    bind = esme.send(BindTransceiver(system_id="gw", password="pw"), 0.0)
    events = esme.unbind(0.5)
    assert esme.state is State.CLOSED
    assert esme.outstanding == 0
    reason = "unbound before bind"
    assert events == [RequestAbandoned(bind, reason), SessionClosed(reason)]
    assert esme.next_deadline() is None
    assert esme.unbind(0.6) == []


def test_requests_due_with_an_unanswered_enquire_link_time_out_before_the_session_ends() -> None:
    link = bound_link(
        esme=SessionSettings(response_timeout_seconds=5.0, enquire_link_interval_seconds=None)
    )
    enquiry = link.esme.send(EnquireLink(), link.now)
    due = link.esme.send(SUBMIT, link.now)  # sent with the enquiry: due at the same moment
    link.esme.send(SUBMIT, link.now + 1.0)
    later = link.esme.send(SUBMIT, link.now + 1.0)
    link.esme.data_to_send()  # lost on the way
    events = link.esme.handle_timer(link.now + 5.0)
    assert enquiry.command_id in HOUSEKEEPING
    assert events[0] == ResponseTimedOut(due)
    assert events[-2:] == [
        RequestAbandoned(later, "EnquireLink unanswered"),
        SessionClosed("EnquireLink unanswered"),
    ]
    assert len(events) == 4


# Each bind, and its acceptance, by the state and by the trigger they stand for.
_TX_BIND = (BindTransmitter(system_id="login"), BindTransmitterResp(system_id="SMSC"))
_RX_BIND = (BindReceiver(system_id="login"), BindReceiverResp(system_id="SMSC"))
_TRX_BIND = (BindTransceiver(system_id="login"), BindTransceiverResp(system_id="SMSC"))
_BIND_INTO = {State.BOUND_TX: _TX_BIND, State.BOUND_RX: _RX_BIND, State.BOUND_TRX: _TRX_BIND}
_BIND_BY = {
    Trigger.TX_ACCEPTED: _TX_BIND,
    Trigger.RX_ACCEPTED: _RX_BIND,
    Trigger.TRX_ACCEPTED: _TRX_BIND,
}


def _bind(link: Link, exchange: tuple[Pdu, Pdu]) -> None:
    request = link.esme.send(exchange[0], link.now)
    link.pump()
    link.smsc.respond(request, exchange[1], link.now)
    link.pump()


def _esme_in(state: State) -> Link:
    """A link whose ESME is in ``state``, reached through the public API."""
    link = make_link()
    if state in _BIND_INTO:
        _bind(link, _BIND_INTO[state])
    elif state is State.UNBINDING:
        _bind(link, _TRX_BIND)
        link.esme.unbind(link.now)
    assert link.esme.state is state
    return link


def _fire(link: Link, trigger: Trigger) -> None:
    """Make ``trigger`` happen to the ESME of ``link``."""
    if trigger in _BIND_BY:
        _bind(link, _BIND_BY[trigger])
    elif trigger is Trigger.UNBIND_SENT:
        link.esme.unbind(link.now)
    elif trigger is Trigger.UNBIND_ANSWERED:
        link.pump()
    elif trigger is Trigger.PEER_UNBOUND:
        link.smsc.unbind(link.now)
        link.pump()
    else:
        link.esme.close()


@pytest.mark.parametrize(
    ("state", "trigger"),
    [(state, trigger) for state, moves in TRANSITIONS.items() for trigger in moves],
    ids=lambda value: value.name,
)
def test_every_transition_in_the_table_is_taken(state: State, trigger: Trigger) -> None:
    link = _esme_in(state)
    _fire(link, trigger)
    assert link.esme.state is TRANSITIONS[state][trigger]


def test_every_state_but_closed_can_end_and_closed_is_final() -> None:
    assert all(
        TRANSITIONS[state][Trigger.END] is State.CLOSED for state in set(State) - {State.CLOSED}
    )
    assert TRANSITIONS[State.CLOSED] == {}


def test_a_second_bind_accepted_keeps_the_first_binds_state() -> None:
    # Not in the table: a bind accepted while bound changes nothing, on either side.
    link = make_link()
    first = link.esme.send(BindTransmitter(system_id="login", password="secret"), link.now)
    second = link.esme.send(BindReceiver(system_id="login", password="secret"), link.now)
    link.pump()
    link.smsc.respond(first, BindTransmitterResp(system_id="SMSC"), link.now)
    link.smsc.respond(second, BindReceiverResp(system_id="SMSC"), link.now)
    esme_events, _ = link.pump()
    assert [type(event) for event in esme_events] == [ResponseReceived, ResponseReceived]
    assert (link.esme.state, link.smsc.state) == (State.BOUND_TX, State.BOUND_TX)
