"""The SMPP session state machine, without I/O.

A :class:`Session` is one side of one SMPP connection: the ESME (the gateway) or the SMSC
(the simulator). It is fed what arrives (:meth:`Session.receive_data`) and the time
(:meth:`Session.handle_timer`), and it gives back events, the bytes to write
(:meth:`Session.data_to_send`) and when it next needs the clock (:meth:`Session.next_deadline`).
It never reads a clock, sleeps or touches a socket; ``now`` is any monotonic float.

States follow SMPP 3.4 section 2.3::

    OPEN --bind ok--> BOUND_TX | BOUND_RX | BOUND_TRX --unbind--> UNBINDING --> CLOSED
      \\______________________ any fatal error, timeout or peer unbind ______/

What the session owns:

- sequence numbers of the requests it sends, and the in-flight window: a request beyond
  ``window`` outstanding requests is refused with :class:`WindowFullError`;
- one response deadline per outstanding request, the enquire_link timer (an enquire_link goes
  out when this side has sent nothing for ``enquire_link_interval_seconds``) and the
  inactivity cut (the session closes when nothing arrived for
  ``inactivity_timeout_seconds``);
- protocol hygiene: enquire_link and unbind are answered here; requests that are invalid in
  the current state are refused with the standard status; bytes that are not SMPP get a
  generic_nack, and framing errors, after which the stream cannot be trusted, close it.

Every other request from the peer - deliver_sm above all - is handed to the application as
:class:`RequestReceived` and answered only when the application calls :meth:`Session.respond`:
the session never acknowledges a message on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from . import codec
from .constants import MAX_SEQUENCE, RESPONSE_BIT, CommandId, CommandStatus
from .errors import ProtocolError, SessionStateError, WindowFullError
from .pdu import (
    RESPONSE_FOR,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
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


BOUND_STATES = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_TX = frozenset({State.BOUND_TX, State.BOUND_TRX})
_RX = frozenset({State.BOUND_RX, State.BOUND_TRX})

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

_BOUND_BY: dict[int, State] = {
    BindTransmitter.command_id: State.BOUND_TX,
    BindReceiver.command_id: State.BOUND_RX,
    BindTransceiver.command_id: State.BOUND_TRX,
}


@dataclass(frozen=True, slots=True)
class SessionConfig:
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
    """No response to ``request`` within the response timeout; its outcome is unknown."""

    request: Pdu


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


Event = RequestReceived | ResponseReceived | ResponseTimedOut | ProtocolViolation | SessionClosed


@dataclass(slots=True)
class _Outstanding:
    request: Pdu
    deadline: float


class Session:
    """One side of an SMPP connection; see the module docstring."""

    def __init__(self, role: Role, config: SessionConfig, now: float) -> None:
        self.role = role
        self.config = config
        self.state = State.OPEN
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
        originator, states = _RULES.get(pdu.command_id, (None, frozenset()))
        if originator not in (None, self.role) or self.state not in states:
            raise SessionStateError(f"{type(pdu).__name__} not allowed in {self.state.value}")
        counts = pdu.command_id not in (CommandId.ENQUIRE_LINK, CommandId.UNBIND)
        if counts and self._in_window >= self.config.window:
            raise WindowFullError(f"window of {self.config.window} is full")
        pdu = replace(pdu, sequence_number=self._allocate_sequence())
        self._outstanding[pdu.sequence_number] = _Outstanding(
            pdu, now + self.config.response_timeout_seconds
        )
        self._in_window += counts
        if pdu.command_id == CommandId.UNBIND:
            self.state = State.UNBINDING
        self._write(pdu, now)
        return pdu

    def respond(self, request: Pdu, response: Pdu, now: float) -> None:
        """Answer a :class:`RequestReceived`; the response takes the request's sequence."""
        if self._unanswered.pop(request.sequence_number, None) is None:
            raise SessionStateError(f"no unanswered request {request.sequence_number}")
        if self.state is State.CLOSED:
            return
        if response.command_status == CommandStatus.ESME_ROK and request.command_id in _BOUND_BY:
            self.state = _BOUND_BY[request.command_id]
        self._write(replace(response, sequence_number=request.sequence_number), now)

    def unbind(self, now: float) -> None:
        """Start a clean unbind; the session closes when the peer answers or times out."""
        if self.state in BOUND_STATES:
            self.send(Unbind(), now)
        elif self.state is State.OPEN:
            self.state = State.CLOSED

    def close(self) -> list[Event]:
        """The transport is gone: forget outstanding requests and report them timed out."""
        if self.state is State.CLOSED and not self._outstanding:
            return []
        return self._close("connection lost")

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer since the last call."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or ``None`` if never."""
        if self.state is State.CLOSED:
            return None
        deadlines: list[float] = []
        if self._outstanding:
            deadlines.append(next(iter(self._outstanding.values())).deadline)
        interval = self.config.enquire_link_interval_seconds
        if interval is not None and self.state in BOUND_STATES:
            deadlines.append(self._last_sent + interval)
        idle = self.config.inactivity_timeout_seconds
        if idle is not None:
            deadlines.append(self._last_received + idle)
        return min(deadlines) if deadlines else None

    # -- what happens to the session ---------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the peer; returns what they mean, in order."""
        if self.state is State.CLOSED:
            return []
        self._last_received = now
        events: list[Event] = []
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._nack(exc, now, events)
            return events + self._close(str(exc))
        for frame in frames:
            self._handle_frame(frame, now, events)
            if self._closed:
                break
        return events

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``."""
        events: list[Event] = []
        if self.state is State.CLOSED:
            return events
        idle = self.config.inactivity_timeout_seconds
        if idle is not None and now >= self._last_received + idle:
            return self._close(f"nothing received for {idle:g} s")
        while self._outstanding:
            sequence, entry = next(iter(self._outstanding.items()))
            if entry.deadline > now:
                break
            self._forget(sequence)
            if entry.request.command_id in (CommandId.ENQUIRE_LINK, CommandId.UNBIND):
                name = type(entry.request).__name__
                return events + self._close(f"{name} unanswered")
            events.append(ResponseTimedOut(entry.request))
        interval = self.config.enquire_link_interval_seconds
        if (
            interval is not None
            and self.state in BOUND_STATES
            and now >= self._last_sent + interval
        ):
            self.send(EnquireLink(), now)
        return events

    # -- internals ---------------------------------------------------------------------

    @property
    def _closed(self) -> bool:
        # A property so type narrowing of ``state`` does not survive calls that change it.
        return self.state is State.CLOSED

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
            events.extend(self._close(str(exc)))
            return
        command_id = exc.command_id or 0
        if command_id & 0x80000000 and exc.sequence_number in self._outstanding:
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
        expected = request.command_id | RESPONSE_BIT
        if pdu.command_id not in (expected, CommandId.GENERIC_NACK):
            # The right sequence number on the wrong response: the request failed, and the
            # peer is told nothing more (a response is never answered).
            name = type(pdu).__name__
            message = f"{name} answers {type(request).__name__} {pdu.sequence_number}"
            events.append(ProtocolViolation(message, CommandStatus.ESME_RINVCMDID))
            pdu = GenericNack(
                sequence_number=pdu.sequence_number, command_status=CommandStatus.ESME_RINVCMDID
            )
        bound = request.command_id in _BOUND_BY and pdu.command_status == CommandStatus.ESME_ROK
        if bound and pdu.command_id == expected:
            self.state = _BOUND_BY[request.command_id]
        if request.command_id == CommandId.UNBIND:
            events.extend(self._close("unbound"))
            return
        if request.command_id != CommandId.ENQUIRE_LINK:
            events.append(ResponseReceived(request, pdu))

    def _on_request(self, pdu: Pdu, now: float, events: list[Event]) -> None:
        peer = Role.SMSC if self.role is Role.ESME else Role.ESME
        originator, states = _RULES.get(pdu.command_id, (None, frozenset()))
        if pdu.command_id not in _RULES or originator not in (None, peer):
            self._reject(pdu, CommandStatus.ESME_RINVCMDID, now, events)
        elif self.state not in states:
            status = (
                CommandStatus.ESME_RALYBND
                if pdu.command_id in _BOUND_BY
                else CommandStatus.ESME_RINVBNDSTS
            )
            self._reject(pdu, status, now, events)
        elif pdu.command_id == CommandId.ENQUIRE_LINK:
            self._write(EnquireLinkResp(sequence_number=pdu.sequence_number), now)
        elif pdu.command_id == CommandId.UNBIND:
            self._write(UnbindResp(sequence_number=pdu.sequence_number), now)
            events.extend(self._close("peer unbound", by_peer=True))
        else:
            self._unanswered[pdu.sequence_number] = pdu
            events.append(RequestReceived(pdu))

    def _reject(self, pdu: Pdu, status: int, now: float, events: list[Event]) -> None:
        name = type(pdu).__name__
        events.append(ProtocolViolation(f"{name} refused in {self.state.value}", status))
        if status == CommandStatus.ESME_RINVCMDID:
            response: Pdu = GenericNack(command_status=status)
        else:
            response = RESPONSE_FOR[type(pdu)](command_status=status)
        self._write(replace(response, sequence_number=pdu.sequence_number), now)

    def _nack(self, exc: ProtocolError, now: float, events: list[Event]) -> None:
        events.append(ProtocolViolation(str(exc), exc.command_status))
        sequence = exc.sequence_number or 0
        self._write(GenericNack(sequence_number=sequence, command_status=exc.command_status), now)

    def _close(self, reason: str, *, by_peer: bool = False) -> list[Event]:
        events: list[Event] = [ResponseTimedOut(e.request) for e in self._outstanding.values()]
        self._outstanding.clear()
        self._unanswered.clear()
        self._in_window = 0
        self.state = State.CLOSED
        events.append(SessionClosed(reason, by_peer))
        return events

    def _forget(self, sequence: int) -> _Outstanding | None:
        entry = self._outstanding.pop(sequence, None)
        if entry is not None and entry.request.command_id not in (
            CommandId.ENQUIRE_LINK,
            CommandId.UNBIND,
        ):
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
