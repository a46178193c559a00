"""What the sender does with a send request, and the result it reports: plain functions.

:func:`decide` turns a valid request into either a :class:`Refusal` (nothing is sent: no
transport for it, or content the provider cannot take) or a :class:`Plan` (the transport,
and for SMPP every recipient's SUBMIT_SMs). :func:`result_of` turns what the transport
reported for each recipient into the request's one result. Neither waits for anything nor
touches Kafka or the provider: :mod:`gateway.sender.dispatch` carries a plan out, and
:mod:`gateway.sender.service` publishes what comes of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.compose.common import Composer
from gateway.compose.errors import CompositionError
from gateway.compose.submit import ComposedMessage
from gateway.events.send_request import SendRequest
from gateway.events.send_result import (
    ErrorInfo,
    RecipientOutcome,
    overall_outcome,
    send_result_event,
)
from gateway.settings import Transport


class HttpAvailability(Protocol):
    def available(self) -> bool:
        """Whether the HTTP API's credential may send now (not blocked, not out of funds)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Nothing is sent; the request ends ``rejected`` with ``error``."""

    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Plan:
    """Send ``request`` over ``transport``; for SMPP, ``messages`` are every recipient's
    parts, and ``parts`` is how many SUBMIT_SMs that is (the weight the request holds in
    the exposure bound)."""

    request: SendRequest
    transport: Transport
    messages: tuple[ComposedMessage, ...]
    parts: int


def choose_transport(
    request: SendRequest, default: Transport, http: HttpAvailability | None
) -> Transport | None:
    """smpp or http for ``request``; None when it asks for HTTP and there is none.

    ``auto`` takes ``default``, except that SMPP carries the message while an HTTP
    credential is blocked or out of funds.
    """
    wanted = request.transport
    if wanted == Transport.AUTO:
        wanted = default
        if wanted == Transport.HTTP and (http is None or not http.available()):
            wanted = Transport.SMPP
    if wanted == Transport.HTTP and http is None:
        return None
    return wanted


def decide(
    request: SendRequest,
    transport: Transport | None,
    composer: Composer,
    *,
    urgent: bool,
    now: datetime,
) -> Refusal | Plan:
    """What to do with ``request`` to be sent over ``transport`` (:func:`choose_transport`)."""
    if transport is None:
        return Refusal(ErrorInfo("transport_unavailable", "the HTTP API is not configured"))
    if transport != Transport.SMPP:
        return Plan(request, transport, (), len(request.recipients))
    try:
        messages = composer.compose(request, priority=urgent, now=now)
    except CompositionError as exc:
        return Refusal(ErrorInfo(exc.code, str(exc)))
    parts = len(messages[0].parts) if len(messages) == 1 else sum(len(m.parts) for m in messages)
    return Plan(request, transport, messages, parts)


def result_of(
    request: SendRequest,
    outcomes: Sequence[tuple[RecipientOutcome, int]],
    transport: str,
    *,
    received_at: datetime,
    occurred_at: datetime,
) -> tuple[str, dict[str, Any]]:
    """The request's outcome and its result event, from each recipient's outcome and the
    submit attempts it took."""
    if len(outcomes) == 1:  # one recipient, as most requests have: its outcome is the request's
        only, attempts = outcomes[0]
        recipients = [only]
        outcome = only.status
    else:
        recipients = [outcome for outcome, _ in outcomes]
        outcome = overall_outcome(recipients)
        attempts = sum(attempts for _, attempts in outcomes)
    event = send_result_event(
        request_id=request.request_id,
        outcome=outcome,
        occurred_at=occurred_at,
        received_at=received_at,
        transport=transport if recipients else "none",
        recipients=recipients,
        tags=request.tags,
        attempts=attempts,
    )
    return outcome, event


def refusal_event(
    request: SendRequest, refusal: Refusal, *, received_at: datetime, occurred_at: datetime
) -> dict[str, Any]:
    """The ``rejected`` result of a refused request."""
    return send_result_event(
        request_id=request.request_id,
        outcome="rejected",
        occurred_at=occurred_at,
        received_at=received_at,
        transport="none",
        error=refusal.error,
        tags=request.tags,
    )
