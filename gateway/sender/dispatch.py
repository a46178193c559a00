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
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Protocol

from gateway.compose.common import Composer
from gateway.compose.submit import ComposedMessage
from gateway.errors import AbandonedError
from gateway.events.send_request import SendRequest
from gateway.events.send_result import RecipientOutcome
from gateway.settings import Transport

from .decision import HttpAvailability, Plan, Refusal, choose_transport, decide
from .exposure import Exposure
from .lane import Flight
from .ordering import KeyOrder
from .submission import Submission


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

    async def send(self, plan: Plan, flight: Flight, *, urgent: bool) -> tuple[Outcomes, int]:
        """Each recipient's outcome and submit attempts, and the exposure weight now held
        (to :meth:`Exposure.release` once the result is durable). On an exception nothing
        is held."""
        record = flight.record
        key = (record.topic, record.partition, record.key) if record.key is not None else None
        previous, turn = self._order.enter(key)
        exposure = self.exposure
        weight = exposure.weight(plan.parts)
        held = flight.take_held()
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
                    outcomes = [await self._submit(plan.request, plan.messages[0], flight, urgent)]
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
        self, request: SendRequest, message: ComposedMessage, flight: Flight, urgent: bool
    ) -> Coroutine[Any, Any, tuple[RecipientOutcome, int]]:
        return self.submission.send(
            message.phone,
            request.text,
            message.parts,
            segments=message.segments,
            urgent=urgent,
            replay=flight.record.replay,
            submitting=flight.finish_here,
        )
