"""The SMPP session state machine, without I/O.

A :class:`Session` is one side of one SMPP connection: the ESME (the gateway) or the SMSC
(the simulator). It is fed what arrives (:meth:`Session.receive_data`) and the time
(:meth:`Session.handle_timer`), and it gives back events, the bytes to write
(:meth:`Session.data_to_send`) and when it next needs the clock (:meth:`Session.next_deadline`).
It never reads a clock, sleeps or touches a socket; ``now`` is any monotonic float.

Theory of operation
-------------------

States follow SMPP 3.4 section 2.3; UNBINDING is the session's own (an unbind sent, its answer
awaited)::

    OPEN --bind accepted--> BOUND_TX | BOUND_RX | BOUND_TRX --unbind sent--> UNBINDING
      |                               |                                          |
      |                      peer's unbind answered                       unbind answered
      |                               v                                          |
      +-------------ended--------> CLOSED <--------------------------------------+
                                      ^-- ended, from every state but CLOSED

Two tables hold every rule about states; the code only looks them up:

- ``_RULES`` (SMPP 3.4 table 2-1): which side may originate which request, in which states. A
  request this side may not send is refused with :class:`SessionStateError`; one the peer may
  not send is answered with the standard status and never reaches the application. Sending or
  receiving a request changes no state by itself.
- ``TRANSITIONS``: for each state, the :class:`Trigger` values that move the session, and to
  where. ``Session._apply`` is the one place that looks it up and the only code that changes
  ``Session.state``. A trigger the table does not list for the current state changes nothing:
  a second bind accepted while bound keeps the first bind's state, and ending a closed session
  does nothing.

The triggers come from four places: a bind answered with ESME_ROK in its own response type
(the ESME receives that answer, the SMSC sends it through :meth:`Session.respond`); an unbind
sent, and its answer, whatever its status (the peer is leaving either way); the peer's unbind,
answered by the session; and ``END`` for every other way a session finishes -
:meth:`Session.close` (the transport is gone), :meth:`Session.unbind` before any bind, a
framing error, an unanswered :data:`HOUSEKEEPING` request, the inactivity cut.

Entering CLOSED does the same whatever the trigger: every request still outstanding is
reported as :class:`RequestAbandoned` (its answer can no longer come, and whether the peer
acted on it is unknown), the peer's unanswered requests are forgotten, and
:class:`SessionClosed` is the last event. A closed session owes nothing and needs no timer.

What the session owns besides its state:

- sequence numbers of the requests it sends, and the in-flight window: a request beyond
  ``window`` outstanding requests is refused with :class:`WindowFullError`
  (:data:`HOUSEKEEPING` requests are outside the window);
- one response deadline per outstanding request (:class:`ResponseTimedOut` when it passes), the
  enquire_link timer (an enquire_link goes out when this side has sent nothing for
  ``enquire_link_interval_seconds``) and the inactivity cut (the session ends when nothing
  arrived for ``inactivity_timeout_seconds``);
- protocol hygiene: enquire_link and unbind are answered here; requests that are invalid in
  the current state are refused with the standard status; bytes that are not SMPP get a
  generic_nack, and framing errors, after which the stream cannot be trusted, end it.

Every other request from the peer - deliver_sm above all - is handed to the application as
:class:`RequestReceived` and answered only when the application calls :meth:`Session.respond`:
the session never acknowledges a message on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from enum import Enum
from operator import attrgetter
from typing import TypeVar

from gateway.slots import SlotSetter, slot_setters

from . import codec
from .constants import MAX_SEQUENCE, RESPONSE_BIT, CommandId, CommandStatus
from .errors import ProtocolError, SessionStateError, WindowFullError
from .pdu import (
    PDU_CLASSES,
    RESPONSE_FOR,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
)


class Role(Enum):
    ESME = "esme"
    SMSC = "smsc"


class State(Enum):
    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"
    CLOSED = "closed"


class Trigger(Enum):
    """What moves a session from one state to another (see ``TRANSITIONS``)."""

    TX_ACCEPTED = "bind_transmitter accepted"
    RX_ACCEPTED = "bind_receiver accepted"
    TRX_ACCEPTED = "bind_transceiver accepted"
    UNBIND_SENT = "unbind sent"
    UNBIND_ANSWERED = "unbind answered"
    PEER_UNBOUND = "peer's unbind answered"
    END = "ended without an unbind exchange"


BOUND_STATES = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_TX = frozenset({State.BOUND_TX, State.BOUND_TRX})
_RX = frozenset({State.BOUND_RX, State.BOUND_TRX})

# Requests about the link itself rather than a message: outside the window, sent and settled
# by the session, never reported to the application; one left unanswered ends the session.
HOUSEKEEPING = frozenset({CommandId.ENQUIRE_LINK, CommandId.UNBIND})

# Which side may originate a request, and in which states (SMPP 3.4 table 2-1).
_RULES: dict[int, tuple[Role | None, frozenset[State]]] = {
    CommandId.BIND_TRANSMITTER: (Role.ESME, frozenset({State.OPEN})),
    CommandId.BIND_RECEIVER: (Role.ESME, frozenset({State.OPEN})),
    CommandId.BIND_TRANSCEIVER: (Role.ESME, frozenset({State.OPEN})),
    CommandId.SUBMIT_SM: (Role.ESME, _TX),
    CommandId.QUERY_SM: (Role.ESME, _TX),
    CommandId.DELIVER_SM: (Role.SMSC, _RX),
    CommandId.ENQUIRE_LINK: (None, BOUND_STATES),
    CommandId.UNBIND: (None, BOUND_STATES),
}

# The state machine: for each state, the triggers that leave it and where each one leads.
TRANSITIONS: dict[State, dict[Trigger, State]] = {
    State.OPEN: {
        Trigger.TX_ACCEPTED: State.BOUND_TX,
        Trigger.RX_ACCEPTED: State.BOUND_RX,
        Trigger.TRX_ACCEPTED: State.BOUND_TRX,
        Trigger.END: State.CLOSED,
    },
    State.BOUND_TX: {
        Trigger.UNBIND_SENT: State.UNBINDING,
        Trigger.PEER_UNBOUND: State.CLOSED,
        Trigger.END: State.CLOSED,
    },
    State.BOUND_RX: {
        Trigger.UNBIND_SENT: State.UNBINDING,
        Trigger.PEER_UNBOUND: State.CLOSED,
        Trigger.END: State.CLOSED,
    },
    State.BOUND_TRX: {
        Trigger.UNBIND_SENT: State.UNBINDING,
        Trigger.PEER_UNBOUND: State.CLOSED,
        Trigger.END: State.CLOSED,
    },
    State.UNBINDING: {Trigger.UNBIND_ANSWERED: State.CLOSED, Trigger.END: State.CLOSED},
    State.CLOSED: {},
}

# The trigger of each bind request when it is accepted.
_ACCEPTED: dict[int, Trigger] = {
    CommandId.BIND_TRANSMITTER: Trigger.TX_ACCEPTED,
    CommandId.BIND_RECEIVER: Trigger.RX_ACCEPTED,
    CommandId.BIND_TRANSCEIVER: Trigger.TRX_ACCEPTED,
}

# Which requests each side may send in each state: _RULES read once for the send path.
_SENDABLE: dict[Role, dict[State, frozenset[int]]] = {
    role: {
        state: frozenset(
            command_id
            for command_id, (originator, states) in _RULES.items()
            if originator in (None, role) and state in states
        )
        for state in State
    }
    for role in Role
}


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Limits and timers of one session; durations in seconds, ``None`` switches a timer off."""

    window: int = 64
    response_timeout_seconds: float = 10.0
    enquire_link_interval_seconds: float | None = 30.0
    inactivity_timeout_seconds: float | None = None
    max_frame_size: int = codec.DEFAULT_MAX_FRAME_SIZE


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request the application must answer with :meth:`Session.respond`."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response (possibly a generic_nack) to a request this side sent."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class ResponseTimedOut:
    """No response to ``request`` within the response timeout; its outcome is unknown.

    The session goes on: the peer is still there, only this answer did not come in time.
    """

    request: Pdu


@dataclass(frozen=True, slots=True)
class RequestAbandoned:
    """The session ended (``reason``) before ``request`` was answered; its outcome is unknown.

    Always followed, in the same batch, by :class:`SessionClosed`.
    """

    request: Pdu
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer sent something that is not valid here; the session answered it."""

    message: str
    command_status: int


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session is over; flush :meth:`Session.data_to_send`, then close the transport."""

    reason: str
    by_peer: bool = False


Event = (
    RequestReceived
    | ResponseReceived
    | ResponseTimedOut
    | RequestAbandoned
    | ProtocolViolation
    | SessionClosed
)


@dataclass(slots=True)
class _Outstanding:
    request: Pdu
    deadline: float


class Session:
    """One side of an SMPP connection; see the module docstring."""

    def __init__(self, role: Role, config: SessionSettings, now: float) -> None:
        self.role = role
        self.config = config
        self._state = State.OPEN
        self._sendable = _SENDABLE[role]
        self._decoder = codec.FrameDecoder(config.max_frame_size)
        self._out = bytearray()
        self._next_sequence = 1
        # Insertion order is send order, and every deadline is send time plus the same
        # timeout, so the first entry always holds the earliest deadline.
        self._outstanding: dict[int, _Outstanding] = {}
        self._in_window = 0
        self._unanswered: dict[int, Pdu] = {}
        self._last_sent = now
        self._last_received = now

    # -- what the application asks -------------------------------------------------

    @property
    def state(self) -> State:
        """Where the session is; it changes only along ``TRANSITIONS``."""
        return self._state

    @property
    def window_free(self) -> int:
        """How many more requests may be sent before the window is full."""
        return self.config.window - self._in_window

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._outstanding)

    @property
    def unanswered(self) -> int:
        """Requests from the peer the application has not answered yet."""
        return len(self._unanswered)

    def send(self, pdu: Pdu, now: float) -> Pdu:
        """Queue a request; returns it with the sequence number the session gave it.

        Raises :class:`SessionStateError` when this side may not send it in the current
        state, and :class:`WindowFullError` when the window is full.
        """
        command_id = pdu.command_id
        if command_id not in self._sendable[self._state]:
            raise SessionStateError(f"{type(pdu).__name__} not allowed in {self._state.value}")
        in_window = command_id not in HOUSEKEEPING
        if in_window and self._in_window >= self.config.window:
            raise WindowFullError(f"window of {self.config.window} is full")
        sequence = self._allocate_sequence()
        pdu = _numbered(pdu, sequence)
        self._outstanding[sequence] = _Outstanding(pdu, now + self.config.response_timeout_seconds)
        self._in_window += in_window
        self._write(pdu, now)
        if command_id == CommandId.UNBIND:
            self._apply(Trigger.UNBIND_SENT)
        return pdu

    def respond(self, request: Pdu, response: Pdu, now: float) -> None:
        """Answer a :class:`RequestReceived`; the response takes the request's sequence."""
        if self._unanswered.pop(request.sequence_number, None) is None:
            raise SessionStateError(f"no unanswered request {request.sequence_number}")
        self._write(_numbered(response, request.sequence_number), now)
        accepted = _bind_accepted(request, response)
        if accepted is not None:
            self._apply(accepted)

    def unbind(self, now: float) -> list[Event]:
        """Start a clean unbind: the session ends when the peer answers or the answer is late.

        Before any bind there is nothing to unbind (SMPP 3.4 allows it only when bound): the
        session ends at once, and the returned events say so. Unbinding or closed, nothing
        happens.
        """
        if self._state in BOUND_STATES:
            self.send(Unbind(), now)
        elif self._state is State.OPEN:
            return self._apply(Trigger.END, "unbound before bind")
        return []

    def close(self, reason: str = "connection lost") -> list[Event]:
        """The transport is gone: the session ends, and every outstanding request with it."""
        return self._apply(Trigger.END, reason)

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer since the last call."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or ``None`` if never."""
        if self._closed:
            return None
        deadlines: list[float] = []
        if self._outstanding:
            deadlines.append(next(iter(self._outstanding.values())).deadline)
        interval = self.config.enquire_link_interval_seconds
        if interval is not None and self._state in BOUND_STATES:
            deadlines.append(self._last_sent + interval)
        idle = self.config.inactivity_timeout_seconds
        if idle is not None:
            deadlines.append(self._last_received + idle)
        return min(deadlines) if deadlines else None

    # -- what happens to the session ---------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the peer; returns what they mean, in order."""
        if self._closed:
            return []
        self._last_received = now
        events: list[Event] = []
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._nack(exc, now, events)
            return events + self._apply(Trigger.END, str(exc))
        for frame in frames:
            self._handle_frame(frame, now, events)
            if self._closed:
                break
        return events

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``."""
        if self._closed:
            return []
        idle = self.config.inactivity_timeout_seconds
        if idle is not None and now >= self._last_received + idle:
            return self._apply(Trigger.END, f"nothing received for {idle:g} s")
        events: list[Event] = []
        unanswered = self._expire(now, events)
        if unanswered is not None:
            return events + self._apply(Trigger.END, f"{type(unanswered).__name__} unanswered")
        interval = self.config.enquire_link_interval_seconds
        if (
            interval is not None
            and self._state in BOUND_STATES
            and now >= self._last_sent + interval
        ):
            self.send(EnquireLink(), now)
        return events

    # -- internals ---------------------------------------------------------------------

    @property
    def _closed(self) -> bool:
        # A property so type narrowing of ``_state`` does not survive calls that change it.
        return self._state is State.CLOSED

    def _apply(self, trigger: Trigger, reason: str = "") -> list[Event]:
        """Take the transition ``trigger`` has in ``TRANSITIONS`` from the current state.

        A trigger the table does not list for the current state changes nothing. Entering
        CLOSED ends the session, and the events that say so are returned.
        """
        target = TRANSITIONS[self._state].get(trigger)
        if target is None:
            return []
        self._state = target
        if target is not State.CLOSED:
            return []
        events: list[Event] = [
            RequestAbandoned(entry.request, reason) for entry in self._outstanding.values()
        ]
        self._outstanding.clear()
        self._unanswered.clear()
        self._in_window = 0
        events.append(SessionClosed(reason, by_peer=trigger is Trigger.PEER_UNBOUND))
        return events

    def _expire(self, now: float, events: list[Event]) -> Pdu | None:
        """Time out every request due at ``now``; returns a due housekeeping request, if any."""
        unanswered: Pdu | None = None
        while self._outstanding:
            sequence, entry = next(iter(self._outstanding.items()))
            if entry.deadline > now:
                break
            self._forget(sequence)
            if entry.request.command_id in HOUSEKEEPING:
                unanswered = unanswered or entry.request
            else:
                events.append(ResponseTimedOut(entry.request))
        return unanswered

    def _handle_frame(self, frame: bytes, now: float, events: list[Event]) -> None:
        try:
            pdu = codec.decode(frame)
        except ProtocolError as exc:
            self._on_bad_frame(exc, now, events)
            return
        if pdu.is_response:
            self._on_response(pdu, events)
        else:
            self._on_request(pdu, now, events)

    def _on_bad_frame(self, exc: ProtocolError, now: float, events: list[Event]) -> None:
        if exc.fatal:
            self._nack(exc, now, events)
            events.extend(self._apply(Trigger.END, str(exc)))
            return
        command_id = exc.command_id or 0
        if command_id & RESPONSE_BIT and exc.sequence_number in self._outstanding:
            # A response we cannot read still ends its request, as a failure.
            events.append(ProtocolViolation(str(exc), exc.command_status))
            nack = GenericNack(
                sequence_number=exc.sequence_number, command_status=exc.command_status
            )
            self._on_response(nack, events)
            return
        self._nack(exc, now, events)

    def _on_response(self, pdu: Pdu, events: list[Event]) -> None:
        entry = self._forget(pdu.sequence_number)
        if entry is None:
            events.append(
                ProtocolViolation(
                    f"{type(pdu).__name__} for unknown sequence {pdu.sequence_number}",
                    CommandStatus.ESME_RINVCMDID,
                )
            )
            return
        request = entry.request
        if pdu.command_id not in (request.command_id | RESPONSE_BIT, CommandId.GENERIC_NACK):
            # The right sequence number on the wrong response: the request failed, and the
            # peer is told nothing more (a response is never answered).
            name = type(pdu).__name__
            message = f"{name} answers {type(request).__name__} {pdu.sequence_number}"
            events.append(ProtocolViolation(message, CommandStatus.ESME_RINVCMDID))
            pdu = GenericNack(
                sequence_number=pdu.sequence_number, command_status=CommandStatus.ESME_RINVCMDID
            )
        if request.command_id == CommandId.UNBIND:
            events.extend(self._apply(Trigger.UNBIND_ANSWERED, "unbound"))
        elif request.command_id != CommandId.ENQUIRE_LINK:
            accepted = _bind_accepted(request, pdu)
            if accepted is not None:
                self._apply(accepted)
            events.append(ResponseReceived(request, pdu))

    def _on_request(self, pdu: Pdu, now: float, events: list[Event]) -> None:
        peer = Role.SMSC if self.role is Role.ESME else Role.ESME
        originator, states = _RULES.get(pdu.command_id, (None, frozenset()))
        if pdu.command_id not in _RULES or originator not in (None, peer):
            self._reject(pdu, CommandStatus.ESME_RINVCMDID, now, events)
        elif self._state not in states:
            status = (
                CommandStatus.ESME_RALYBND
                if pdu.command_id in _ACCEPTED
                else CommandStatus.ESME_RINVBNDSTS
            )
            self._reject(pdu, status, now, events)
        elif pdu.command_id == CommandId.ENQUIRE_LINK:
            self._write(EnquireLinkResp(sequence_number=pdu.sequence_number), now)
        elif pdu.command_id == CommandId.UNBIND:
            self._write(UnbindResp(sequence_number=pdu.sequence_number), now)
            events.extend(self._apply(Trigger.PEER_UNBOUND, "peer unbound"))
        else:
            self._unanswered[pdu.sequence_number] = pdu
            events.append(RequestReceived(pdu))

    def _reject(self, pdu: Pdu, status: int, now: float, events: list[Event]) -> None:
        name = type(pdu).__name__
        events.append(ProtocolViolation(f"{name} refused in {self._state.value}", status))
        sequence = pdu.sequence_number
        if status == CommandStatus.ESME_RINVCMDID:
            response: Pdu = GenericNack(sequence_number=sequence, command_status=status)
        else:
            response = RESPONSE_FOR[type(pdu)](sequence_number=sequence, command_status=status)
        self._write(response, now)

    def _nack(self, exc: ProtocolError, now: float, events: list[Event]) -> None:
        events.append(ProtocolViolation(str(exc), exc.command_status))
        sequence = exc.sequence_number or 0
        self._write(GenericNack(sequence_number=sequence, command_status=exc.command_status), now)

    def _forget(self, sequence: int) -> _Outstanding | None:
        entry = self._outstanding.pop(sequence, None)
        if entry is not None and entry.request.command_id not in HOUSEKEEPING:
            self._in_window -= 1
        return entry

    def _allocate_sequence(self) -> int:
        while True:
            sequence = self._next_sequence
            self._next_sequence = 1 if sequence >= MAX_SEQUENCE else sequence + 1
            if sequence not in self._outstanding:
                return sequence

    def _write(self, pdu: Pdu, now: float) -> None:
        self._out += codec.encode(pdu)
        self._last_sent = now


def _bind_accepted(request: Pdu, response: Pdu) -> Trigger | None:
    """The trigger of a bind answered with ESME_ROK in its own response type, else ``None``."""
    if (
        response.command_status != CommandStatus.ESME_ROK
        or response.command_id != request.command_id | RESPONSE_BIT
    ):
        return None
    return _ACCEPTED.get(request.command_id)


P = TypeVar("P", bound=Pdu)


# dataclasses.replace looks the fields up and builds the PDU again through __init__ on every
# call; numbering is on the path of every PDU sent, so a copy is made instead: every field but
# the sequence number read at once, then set through the slots' own descriptors, as the frozen
# dataclass's __init__ would set them.
def _copier(cls: type[Pdu]) -> tuple[Callable[[Pdu], tuple[object, ...]], tuple[SlotSetter, ...]]:
    names = tuple(f.name for f in fields(cls) if f.name != "sequence_number")
    return attrgetter(*names), slot_setters(cls, names)


_COPIERS = {cls: _copier(cls) for cls in PDU_CLASSES.values()}
(_set_sequence,) = slot_setters(Pdu, ("sequence_number",))


def _numbered(pdu: P, sequence_number: int) -> P:
    """A copy of ``pdu`` carrying ``sequence_number``."""
    cls = type(pdu)
    copier = _COPIERS.get(cls)
    if copier is None:  # not a PDU of the wire: the general way
        return replace(pdu, sequence_number=sequence_number)
    values, setters = copier
    copy = object.__new__(cls)
    for set_slot, value in zip(setters, values(pdu), strict=True):
        set_slot(copy, value)
    _set_sequence(copy, sequence_number)
    return copy
