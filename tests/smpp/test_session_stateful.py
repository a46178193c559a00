"""Random sequences of operations on an ESME and an SMSC session talking to each other.

Whatever happens (timeouts, garbage, unbinds, lost transports), the sessions raise nothing but
their documented errors, keep their window within bounds, and give every request they sent
exactly one outcome: a response, or a time-out when the response cannot come any more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import hypothesis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

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
    Unbind,
)
from gateway.smpp.session import (
    Event,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    Role,
    Session,
    SessionClosed,
    SessionConfig,
    State,
)

T = TypeVar("T")
ESME_CONFIG = SessionConfig(
    window=3, response_timeout_seconds=5.0, enquire_link_interval_seconds=7.0
)
SMSC_CONFIG = SessionConfig(
    window=2,
    response_timeout_seconds=4.0,
    enquire_link_interval_seconds=None,
    inactivity_timeout_seconds=60.0,
)
HOUSEKEEPING = (EnquireLink, Unbind)


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
        self.unbound_while_open = {Role.ESME: False, Role.SMSC: False}

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
            elif isinstance(event, ResponseTimedOut):
                self.settle(role, event.request)
            elif isinstance(event, SessionClosed):
                self.closed_events[role] += 1
                self.to_answer[role].clear()

    def settle(self, role: Role, request: Pdu) -> None:
        # enquire_link and unbind end in the session itself (an answer, or a closed session).
        if not isinstance(request, HOUSEKEEPING):
            assert self.awaiting[role].pop(request.sequence_number) == request

    def send(self, role: Role, pdu: Pdu) -> None:
        sent = attempt(lambda: self.sessions[role].send(pdu, self.now))
        if sent is not None and not isinstance(sent, HOUSEKEEPING):
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

    @initialize(bound=st.sampled_from([True, True, True, False]))
    def start(self, bound: bool) -> None:
        if bound:
            self.send(Role.ESME, BindTransceiver(system_id="login", password="pw"))
            self.deliver()
            self.answer(Role.SMSC, status=0, flush=True)
            assert self.sessions[Role.ESME].state is State.BOUND_TRX

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
            attempt(lambda: self.sessions[role].respond(request, response, self.now))
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
        how=st.sampled_from(["garbage", "stray-nack", "unbind", "lose-transport"]),
        garbage=st.binary(max_size=40),
    )
    def disrupt(self, role: Role, how: str, garbage: bytes) -> None:
        session = self.sessions[role]
        if how == "garbage":
            self.absorb(role, session.receive_data(garbage, self.now))
        elif how == "stray-nack":
            nack = GenericNack(sequence_number=len(garbage) + 1, command_status=3)
            self.absorb(role, session.receive_data(encode(nack), self.now))
        elif how == "lose-transport":
            self.absorb(role, session.close())
        else:
            self.unbind(role)

    def unbind(self, role: Role) -> None:
        session = self.sessions[role]
        session.unbind(self.now)
        if session.state is State.CLOSED and not self.closed_events[role]:
            # Not bound: nothing to unbind, the session is over at once and, as the adapter
            # does, its owner closes the transport, which reports what was still in flight.
            had_outstanding = session.outstanding > 0
            events = session.close()
            assert (events[-1:] == [SessionClosed("connection lost")]) == had_outstanding
            self.absorb(role, events)
            self.unbound_while_open[role] = True

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
                assert session.outstanding == 0
                # unbind() before any bind closes without an event and keeps the count of the
                # peer's unanswered requests (answering them is a no-op).
                assert session.unanswered == 0 or self.unbound_while_open[role]
                assert session.next_deadline() is None
                assert self.awaiting[role] == {}

    @invariant()
    def owed_requests_are_outstanding(self) -> None:
        for role, session in self.sessions.items():
            assert len(self.awaiting[role]) <= session.outstanding


SessionPair.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestSessionPair = SessionPair.TestCase
