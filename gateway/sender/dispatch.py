"""Carrying out a :class:`~gateway.sender.decision.Plan`: per-key order, the exposure bound,
then the SMPP submits or the HTTP API.

A record waits for the previous record with its key to finish submitting
(:mod:`gateway.sender.ordering`), then takes its weight in the exposure bound
(:mod:`gateway.sender.exposure`): taken after the key's turn, so a record never holds slots
its predecessor needs. The slot the lane took for the record before starting it
(:mod:`gateway.sender.lane`) is its weight when it needs one slot and has no predecessor to
wait for, the usual case; otherwise it is given back first. The weight stays taken when
:meth:`Dispatch.send` returns; the caller gives it back once the request's result is on
Kafka. In the usual case (no predecessor, the lane's slot) nothing here waits or allocates
a future.

:meth:`Dispatch.start` is that usual case with one recipient and one part, taken only when
nothing at all would wait (:meth:`Submission.start`): it takes the key's turn and the weight
as :meth:`Dispatch.send` does and sends the submit; :meth:`Dispatch.answered` ends it on
ESME_ROK; any other answer goes on in :meth:`Dispatch.send` (``started``) from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from gateway.compose.common import Composer
from gateway.compose.submit import ComposedMessage
from gateway.errors import AbandonedError
from gateway.events.send_request import SendRequest
from gateway.events.send_result import RecipientOutcome
from gateway.settings import Transport

from .decision import HttpAvailability, Plan, Refusal, choose_transport, decide
from .exposure import Exposure
from .lane import Flight
from .ordering import KeyOrder, Turn
from .submission import PendingSubmit, Submission


class HttpSender(HttpAvailability, Protocol):
    """The provider's HTTP API as a transport (``gateway.http_api.transport.HttpTransport``)."""

    def stop(self) -> None: ...

    async def send(
        self, request: SendRequest, *, urgent: bool
    ) -> list[tuple[RecipientOutcome, int]]: ...


Outcomes = list[tuple[RecipientOutcome, int]]


class Dispatch:
    """Decides (:mod:`gateway.sender.decision`) and sends; shared by both lanes."""

    def __init__(
        self,
        *,
        submission: Submission,
        exposure: Exposure,
        composer: Composer,
        http: HttpSender | None = None,
        default_transport: Transport = Transport.SMPP,
    ) -> None:
        self.submission = submission
        self.exposure = exposure
        self.http = http
        self._composer = composer
        self._default_transport = default_transport
        self._order = KeyOrder()

    def stop(self) -> None:
        """Start nothing new: requests waiting for exposure or a rate permit give up."""
        self.exposure.close(AbandonedError("shutting down"))
        self.submission.stop()
        if self.http is not None:
            self.http.stop()

    def decide(self, request: SendRequest, *, urgent: bool, now: datetime) -> Refusal | Plan:
        """:func:`~gateway.sender.decision.decide` with this sender's transports."""
        transport = choose_transport(request, self._default_transport, self.http)
        return decide(request, transport, self._composer, urgent=urgent, now=now)

    def start(self, plan: Plan, flight: Flight, *, urgent: bool) -> Started | None:
        """The usual plan (one recipient, one part over SMPP, no predecessor with its key,
        the lane's slot its weight) with its submit sent now, if nothing would wait for
        anything (:meth:`Submission.start`); None, with nothing taken, otherwise. Its key's
        turn and its weight are then taken as :meth:`send` takes them; its answer goes to
        :meth:`answered` when it is ESME_ROK, to :meth:`send` otherwise."""
        if plan.transport != Transport.SMPP or len(plan.messages) != 1:
            return None
        message = plan.messages[0]
        parts = message.parts
        if len(parts) != 1 or flight.held != self.exposure.weight(plan.parts):
            return None
        record = flight.record
        key = (record.topic, record.partition, record.key) if record.key is not None else None
        if self._order.waits(key):
            return None
        pending = self.submission.start(
            message.phone,
            plan.request.text,
            parts[0],
            urgent=urgent,
            segments=message.segments,
            submitting=flight.finish_here,
        )
        if pending is None:
            return None
        _, turn = self._order.enter(key)
        return Started(key, turn, flight.take_held(), pending)

    def answered(self, plan: Plan, flight: Flight, started: Started) -> tuple[Outcomes, int]:
        """:meth:`send`'s answer for a plan :meth:`start` started, its answer ESME_ROK."""
        try:
            outcome = self.submission.answered(
                plan.messages[0].phone, started.pending, replay=flight.record.replay
            )
        except BaseException:
            self.exposure.release(started.weight)
            raise
        finally:
            self._order.leave(started.key, started.turn)
        return [outcome], started.weight

    async def send(
        self, plan: Plan, flight: Flight, *, urgent: bool, started: Started | None = None
    ) -> tuple[Outcomes, int]:
        """Each recipient's outcome and submit attempts, and the exposure weight now held
        (to :meth:`Exposure.release` once the result is durable). On an exception nothing
        is held. ``started``: what :meth:`start` took and submitted, answered other than
        ESME_ROK: the plan goes on from there."""
        exposure = self.exposure
        if started is None:
            record = flight.record
            key: Hashable | None = None
            if record.key is not None:
                key = (record.topic, record.partition, record.key)
            previous, turn = self._order.enter(key)
            weight = exposure.weight(plan.parts)
            held = flight.take_held()
        else:
            key, turn, weight, _ = started
            previous, held = None, weight
        try:
            if held and (held != weight or (previous is not None and not previous.done)):
                exposure.release(held)  # held only while it may be used at once
                held = 0
            if previous is not None and not previous.done:
                await previous.wait()
            if not held and not exposure.try_take(weight):
                await exposure.take(weight, urgent=urgent)
            try:
                if plan.transport == Transport.SMPP and len(plan.messages) == 1:
                    pending = None if started is None else started.pending
                    submit = self._submit(plan.request, plan.messages[0], flight, urgent, pending)
                    outcomes = [await submit]
                else:
                    outcomes = await self._carry_out(plan, flight, urgent)
            except BaseException:
                exposure.release(weight)
                raise
        finally:
            self._order.leave(key, turn)
        return outcomes, weight

    async def _carry_out(self, plan: Plan, flight: Flight, urgent: bool) -> Outcomes:
        request = plan.request
        if plan.transport != Transport.SMPP:
            assert self.http is not None
            flight.finish_here()  # the HTTP transport may submit as soon as it is called
            return await self.http.send(request, urgent=urgent)
        sends = [self._submit(request, m, flight, urgent) for m in plan.messages]
        return list(await asyncio.gather(*sends))

    def _submit(
        self,
        request: SendRequest,
        message: ComposedMessage,
        flight: Flight,
        urgent: bool,
        pending: PendingSubmit | None = None,
    ) -> Coroutine[Any, Any, tuple[RecipientOutcome, int]]:
        return self.submission.send(
            message.phone,
            request.text,
            message.parts,
            segments=message.segments,
            urgent=urgent,
            replay=flight.record.replay,
            submitting=flight.finish_here,
            pending=pending,
        )


class Started(NamedTuple):
    """A plan :meth:`Dispatch.start` started: its key and turn, the weight it holds, its
    submit."""

    key: Hashable | None
    turn: Turn
    weight: int
    pending: PendingSubmit
