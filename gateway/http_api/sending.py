"""Send requests over the provider's HTTP API: what the sender calls per request.

One send.php call carries every recipient of a request and returns one ``id`` for all of
them; each recipient's ``message_ids`` holds that id (provider ids are (id, phone) pairs).
The request's own ``id`` parameter is derived from its request_id (:mod:`.send_params`), so
status.php can say whether the provider has it.

**Never sent twice.** A send is repeated only when the provider surely does not have it:

- the connection was never made: tried again (the client rotates hosts);
- the answer was lost (timeout, reset, 5xx, unreadable body): after ``settle_seconds`` the
  transport asks status.php about (id, first phone); found means accepted, not found means
  it may be sent again; no answer from status.php means nothing is sent until there is one;
- error 9 (an identical request within a minute, which is what the repeat of an accepted
  send gets): status.php is asked at once, and again after the backoff (from
  ``duplicate_backoff_seconds``, doubling) before sending again.

Other answers: 1, 2, 5, 6, 7, 8 end the request ``rejected`` (with the id the provider
assigned, if any); 3 parks it (every send waits, ``funds_retry_seconds`` apart, up to
``funds_park_max_seconds``) and the next try takes a new id; 4 and a paused credential wait
for the circuit if it closes within the budget. What is still unresolved after
``give_up_after_seconds`` ends ``failed``, with ``outcome_unknown`` when status.php never
answered about a send that may have been processed. At shutdown waits end at once and the
request is abandoned (left uncommitted), after a last status query if it may have been sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.compose import CompositionError
from gateway.errors import AbandonedError
from gateway.events.envelope import utc_now
from gateway.events.send_request import SendRequest
from gateway.events.send_result import ErrorInfo, RecipientOutcome
from gateway.settings.http_api import HttpApiSettings

from .circuit import CircuitState
from .client import SmscHttpClient
from .errors import (
    CircuitOpenError,
    HttpApiError,
    HttpTransportError,
    InsufficientFundsError,
    ProviderApiError,
    TooManyRequestsError,
)
from .metrics import HttpApiMetrics
from .send_params import client_message_id, send_params

log = logging.getLogger(__name__)

# status.php: "-3 Message not found" (reference 2.4).
NOT_FOUND = -3


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a request ended: accepted (with its id), rejected or failed (with the error)."""

    status: str
    message_id: int | None = None
    error: ErrorInfo | None = None


@dataclass(slots=True)
class _Run:
    """One request's way through its attempts."""

    request: SendRequest
    params: dict[str, str]
    deadline: float
    sends: int = 0
    maybe_sent: bool = False
    generation: int = 0
    failures: int = 0
    duplicates: int = 0
    parked_since: float | None = None
    reason: str = "transport_error"
    detail: str = ""


class HttpTransport:
    """See the module docstring. One per credential; shared by every in-flight request."""

    def __init__(
        self,
        client: SmscHttpClient,
        settings: HttpApiSettings,
        metrics: HttpApiMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._stopping = asyncio.Event()

    def available(self) -> bool:
        """False while the credential's circuit is open or parked (``auto`` may use SMPP)."""
        return self._client.circuit.state(self._clock()) is CircuitState.CLOSED

    def stop(self) -> None:
        """Shutdown: requests waiting to try again are abandoned (left for redelivery)."""
        self._stopping.set()

    async def send(
        self, request: SendRequest, *, urgent: bool
    ) -> list[tuple[RecipientOutcome, int]]:
        """Each recipient's outcome, and the send.php calls made (all on the first).

        Raises :class:`~gateway.errors.AbandonedError` at shutdown.
        """
        try:
            params = send_params(request, self._settings, now=self._wall_clock())
        except CompositionError as exc:
            return outcomes(request, Resolution("rejected", error=ErrorInfo(exc.code, str(exc))), 0)
        deadline = self._clock() + self._settings.give_up_after_seconds
        run = _Run(request, params, deadline)
        resolution = await self._resolve(run, urgent)
        log.debug(
            "request %s: %s after %d send(s)", request.request_id, resolution.status, run.sends
        )
        return outcomes(request, resolution, run.sends)

    async def _resolve(self, run: _Run, urgent: bool) -> Resolution:
        try:
            while True:
                step = await self._step(run, urgent)
                if isinstance(step, Resolution):
                    return step
                if not await self._pause(run, step):
                    return await self._give_up(run, urgent)
        except AbandonedError:
            if run.maybe_sent and await self._lookup(run, urgent) not in (None, NOT_FOUND):
                return self._found(run)
            raise

    async def _step(self, run: _Run, urgent: bool) -> Resolution | float:
        """Resolve the request, or return how long to wait before the next step."""
        if run.maybe_sent:
            status = await self._lookup(run, urgent)
            if status is None:
                return self._transport_backoff(run)  # can't tell: never send blind
            if status != NOT_FOUND:
                return self._found(run)
            self._metrics.ambiguous("not_found").inc()
            run.maybe_sent = False
        parked = self._client.circuit.parked_for(self._clock())
        if parked > 0:
            return self._park(run, parked)
        return await self._send_once(run, urgent)

    async def _send_once(self, run: _Run, urgent: bool) -> Resolution | float:
        run.sends += 1
        try:
            reply = await self._client.send(run.params, urgent=urgent)
        except HttpApiError as exc:
            return await self._after(run, urgent, exc)
        return Resolution("accepted", reply.message_id)

    async def _after(self, run: _Run, urgent: bool, exc: HttpApiError) -> Resolution | float:
        """What a failed send leads to: a resolution, or the wait before the next step."""
        if isinstance(exc, TooManyRequestsError):
            return await self._duplicate(run, urgent, exc)
        if isinstance(exc, InsufficientFundsError):
            return self._funds(run, exc)
        if isinstance(exc, HttpTransportError):
            return self._lost(run, exc)
        if isinstance(exc, CircuitOpenError):
            run.sends -= 1  # refused on our side: nothing went out
        if exc.retriable and exc.retry_after_seconds is not None:  # 4, or a paused credential
            self._note(run, exc.reason, exc)
            return exc.retry_after_seconds
        message_id = exc.message_id if isinstance(exc, ProviderApiError) else None
        return Resolution("rejected", message_id, ErrorInfo(exc.reason, str(exc)))

    def _lost(self, run: _Run, exc: HttpTransportError) -> float:
        run.maybe_sent = run.maybe_sent or exc.maybe_processed
        self._note(run, "transport_error", exc)
        if exc.maybe_processed:
            return self._settings.settle_seconds
        return self._transport_backoff(run)

    async def _duplicate(
        self, run: _Run, urgent: bool, exc: TooManyRequestsError
    ) -> Resolution | float:
        # An identical request within a minute: maybe our earlier attempt (or a crashed
        # run's, which had the same id) was taken. Ask before anything else.
        self._note(run, "too_many_requests", exc)
        run.maybe_sent = True
        status = await self._lookup(run, urgent)
        if status is not None and status != NOT_FOUND:
            return self._found(run)
        wait = min(
            self._settings.duplicate_backoff_seconds * 2.0**run.duplicates,
            self._settings.duplicate_backoff_max_seconds,
        )
        run.duplicates += 1
        return wait + random.uniform(0, self._settings.retry_initial_seconds)

    def _funds(self, run: _Run, exc: InsufficientFundsError) -> float:
        # The refused message took the old id; the next try must not look like it.
        now = self._clock()
        if run.parked_since is None:
            run.parked_since = now
            run.deadline = max(run.deadline, now + self._settings.funds_park_max_seconds)
        run.generation += 1
        run.params["id"] = str(client_message_id(run.request.request_id, run.generation))
        run.maybe_sent = False
        self._note(run, exc.reason, exc)
        return exc.retry_after_seconds or self._settings.funds_retry_seconds

    def _park(self, run: _Run, seconds: float) -> float:
        if run.parked_since is None:
            run.parked_since = self._clock()
            run.deadline = max(
                run.deadline, run.parked_since + self._settings.funds_park_max_seconds
            )
        run.reason, run.detail = "insufficient_funds", "the account has no money (parked)"
        return seconds

    async def _lookup(self, run: _Run, urgent: bool) -> int | None:
        """status.php's code for (our id, first phone); ``None`` when it did not answer."""
        phone = run.request.recipients[0]
        try:
            status = await self._client.status(run.params["id"], phone, urgent=urgent)
        except HttpApiError as exc:
            log.warning("status of request %s unknown: %s", run.request.request_id, exc)
            self._metrics.ambiguous("unknown").inc()
            run.reason, run.detail = "outcome_unknown", f"status.php did not answer: {exc}"
            return None
        return status.status

    def _found(self, run: _Run) -> Resolution:
        self._metrics.ambiguous("found").inc()
        return Resolution("accepted", int(run.params["id"]))

    async def _pause(self, run: _Run, seconds: float) -> bool:
        """Wait ``seconds``; False when that would pass the deadline. Raises
        AbandonedError at shutdown."""
        if self._stopping.is_set():
            raise AbandonedError("shutting down")
        if self._clock() + seconds > run.deadline:
            return False
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        raise AbandonedError("shutting down")

    async def _give_up(self, run: _Run, urgent: bool) -> Resolution:
        if run.maybe_sent:
            status = await self._lookup(run, urgent)
            if status is not None and status != NOT_FOUND:
                return self._found(run)
        return Resolution("failed", error=ErrorInfo(run.reason, run.detail))

    def _transport_backoff(self, run: _Run) -> float:
        initial = self._settings.retry_initial_seconds
        wait = min(initial * 2.0**run.failures, self._settings.retry_max_seconds)
        run.failures += 1
        return wait + random.uniform(0, initial)

    def _note(self, run: _Run, reason: str, exc: BaseException) -> None:
        run.reason, run.detail = reason, str(exc)
        self._metrics.retries("send", reason).inc()


def outcomes(
    request: SendRequest, resolution: Resolution, sends: int
) -> list[tuple[RecipientOutcome, int]]:
    """Every recipient's outcome: the same status, id and error for each (one send.php call
    covers them all); the calls made are counted on the first recipient only."""
    ids = (str(resolution.message_id),) if resolution.message_id is not None else ()
    return [
        (RecipientOutcome(phone, resolution.status, ids, resolution.error), sends if i == 0 else 0)
        for i, phone in enumerate(request.recipients)
    ]
