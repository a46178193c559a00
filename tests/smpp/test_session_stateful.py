"""Random sequences of operations on an ESME and an SMSC session talking to each other.

Whatever happens (timeouts, garbage, unbinds, lost transports), the sessions raise nothing but
their documented errors, keep their window within bounds, and give every request they sent
exactly one outcome: a response, a time-out, or abandonment when the session ended first.

Their states follow the transition table: the test reads each trigger from what it did and
what the sessions reported (a bind accepted, an unbind sent, how a session closed), moves its
own copy of each state through ``TRANSITIONS``, and checks that the session agrees after every
step, so no state change happens outside the table (``test_session.py`` takes each of its
transitions on purpose).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import hypothesis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from gateway.smpp.codec import encode
from gateway.smpp.errors import SessionStateError, WindowFullError
from gateway.smpp.pdu import (
    RESPONSE_FOR,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Pdu,
    QuerySm,
    SubmitSm,
)
from gateway.smpp.session import (
    BOUND_STATES,
    HOUSEKEEPING,
    TRANSITIONS,
    Event,
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

T = TypeVar("T")
ESME_CONFIG = SessionSettings(
    window=3, response_timeout_seconds=5.0, enquire_link_interval_seconds=7.0
)
SMSC_CONFIG = SessionSettings(
    window=2,
    response_timeout_seconds=4.0,
    enquire_link_interval_seconds=None,
    inactivity_timeout_seconds=60.0,
)
ACCEPTED = {
    BindTransmitter: Trigger.TX_ACCEPTED,
    BindReceiver: Trigger.RX_ACCEPTED,
    BindTransceiver: Trigger.TRX_ACCEPTED,
}


def attempt(operation: Callable[[], T]) -> T | None:
    """Run an operation the caller may legitimately be refused."""
    try:
        return operation()
    except (SessionStateError, WindowFullError):
        return None


class SessionPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.sessions = {
            Role.ESME: Session(Role.ESME, ESME_CONFIG, self.now),
            Role.SMSC: Session(Role.SMSC, SMSC_CONFIG, self.now),
        }
        # Requests each side sent and still owes an outcome for, by sequence number.
        self.awaiting: dict[Role, dict[int, Pdu]] = {Role.ESME: {}, Role.SMSC: {}}
        self.to_answer: dict[Role, list[Pdu]] = {Role.ESME: [], Role.SMSC: []}
        self.closed_events = {Role.ESME: 0, Role.SMSC: 0}
        # Where each session must be, moved by the triggers this test sees.
        self.expected = {Role.ESME: State.OPEN, Role.SMSC: State.OPEN}

    # -- bookkeeping ------------------------------------------------------------------

    def absorb(self, role: Role, events: list[Event]) -> None:
        for event in events:
            hypothesis.event(f"{role.value}: {type(event).__name__}")
            if isinstance(event, RequestReceived):
                self.to_answer[role].append(event.pdu)
            elif isinstance(event, ResponseReceived):
                assert event.response.is_response
                assert event.response.sequence_number == event.request.sequence_number
                self.settle(role, event.request)
                self.bind_answered(role, event.request, event.response)
            elif isinstance(event, ResponseTimedOut | RequestAbandoned):
                self.settle(role, event.request)
            elif isinstance(event, SessionClosed):
                self.closed_events[role] += 1
                self.to_answer[role].clear()
                self.trigger(role, closed_by(event))

    def settle(self, role: Role, request: Pdu) -> None:
        # enquire_link and unbind end in the session itself (an answer, or a closed session).
        if request.command_id not in HOUSEKEEPING:
            assert self.awaiting[role].pop(request.sequence_number) == request

    def trigger(self, role: Role, trigger: Trigger) -> None:
        state = self.expected[role]
        target = TRANSITIONS[state].get(trigger)
        if target is not None:
            self.expected[role] = target
        hypothesis.event(f"{trigger.name} in {state.name}")

    def bind_answered(self, role: Role, request: Pdu, response: Pdu) -> None:
        kind = type(request)
        if (
            kind in ACCEPTED
            and response.command_status == 0
            and type(response) is RESPONSE_FOR[kind]
        ):
            self.trigger(role, ACCEPTED[kind])

    def send(self, role: Role, pdu: Pdu) -> None:
        sent = attempt(lambda: self.sessions[role].send(pdu, self.now))
        if sent is not None and sent.command_id not in HOUSEKEEPING:
            assert sent.sequence_number not in self.awaiting[role]
            self.awaiting[role][sent.sequence_number] = sent

    def deliver(self) -> None:
        for _ in range(20):
            up = self.sessions[Role.ESME].data_to_send()
            down = self.sessions[Role.SMSC].data_to_send()
            if not up and not down:
                return
            self.absorb(Role.SMSC, self.sessions[Role.SMSC].receive_data(up, self.now))
            self.absorb(Role.ESME, self.sessions[Role.ESME].receive_data(down, self.now))
        raise AssertionError("the sessions keep talking to each other forever")

    # -- rules -------------------------------------------------------------------------

    @initialize(kind=st.sampled_from([BindTransceiver, BindTransmitter, BindReceiver, None]))
    def start(self, kind: type[BindTransceiver | BindTransmitter | BindReceiver] | None) -> None:
        if kind is not None:
            self.send(Role.ESME, kind(system_id="login", password="pw"))
            self.deliver()
            self.answer(Role.SMSC, status=0, flush=True)
            assert self.sessions[Role.ESME].state in BOUND_STATES

    @rule(kind=st.sampled_from([BindTransceiver, BindTransmitter, BindReceiver]))
    def bind(self, kind: type[BindTransceiver | BindTransmitter | BindReceiver]) -> None:
        self.send(Role.ESME, kind(system_id="login", password="pw"))

    @rule(text=st.binary(max_size=10), flush=st.booleans())
    def submit(self, text: bytes, flush: bool) -> None:
        self.send(Role.ESME, SubmitSm(destination_addr="79231234567", short_message=text))
        if flush:
            self.deliver()

    @rule()
    def query(self) -> None:
        self.send(Role.ESME, QuerySm(message_id="854019"))

    @rule(flush=st.booleans())
    def deliver_sm(self, flush: bool) -> None:
        self.send(Role.SMSC, DeliverSm(source_addr="79231234567", short_message=b"id:1 stat:X"))
        if flush:
            self.deliver()

    @rule(role=st.sampled_from(Role))
    def enquire_link(self, role: Role) -> None:
        self.send(role, EnquireLink())

    @rule(
        role=st.sampled_from(Role),
        status=st.sampled_from([0, 0, 0, 0x0E, 0x58, 0x45]),
        flush=st.booleans(),
    )
    def answer(self, role: Role, status: int, flush: bool) -> None:
        if self.to_answer[role]:
            request = self.to_answer[role].pop(0)
            response = RESPONSE_FOR[type(request)](command_status=status)
            self.sessions[role].respond(request, response, self.now)
            self.bind_answered(role, request, response)
        if flush:
            self.deliver()

    @rule(seconds=st.floats(0.0, 25.0))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        for role, session in self.sessions.items():
            self.absorb(role, session.handle_timer(self.now))

    @rule()
    def pump(self) -> None:
        self.deliver()

    @rule(
        role=st.sampled_from(Role),
        how=st.sampled_from(["garbage", "stray-nack", "lose-transport"]),
        garbage=st.binary(max_size=40),
    )
    def disrupt(self, role: Role, how: str, garbage: bytes) -> None:
        session = self.sessions[role]
        if how == "garbage":
            self.absorb(role, session.receive_data(garbage, self.now))
        elif how == "stray-nack":
            nack = GenericNack(sequence_number=len(garbage) + 1, command_status=3)
            self.absorb(role, session.receive_data(encode(nack), self.now))
        else:
            self.absorb(role, session.close())

    @rule(role=st.sampled_from(Role))
    def unbind(self, role: Role) -> None:
        session = self.sessions[role]
        bound = session.state in BOUND_STATES
        self.absorb(role, session.unbind(self.now))
        if bound:
            self.trigger(role, Trigger.UNBIND_SENT)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def window_in_bounds(self) -> None:
        for session in self.sessions.values():
            assert 0 <= session.window_free <= session.config.window

    @invariant()
    def closed_means_nothing_owed(self) -> None:
        for role, session in self.sessions.items():
            assert self.closed_events[role] <= 1
            if session.state is State.CLOSED:
                assert self.closed_events[role] == 1
                assert session.outstanding == 0
                assert session.unanswered == 0
                assert session.next_deadline() is None
                assert self.awaiting[role] == {}

    @invariant()
    def states_follow_the_table(self) -> None:
        for role, session in self.sessions.items():
            assert session.state is self.expected[role]

    @invariant()
    def owed_requests_are_outstanding(self) -> None:
        for role, session in self.sessions.items():
            assert len(self.awaiting[role]) <= session.outstanding


def closed_by(event: SessionClosed) -> Trigger:
    if event.by_peer:
        return Trigger.PEER_UNBOUND
    return Trigger.UNBIND_ANSWERED if event.reason == "unbound" else Trigger.END


SessionPair.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestSessionPair = SessionPair.TestCase
