"""One recipient's message to the provider: guards, pacing, submits, retries.

- The duplicate and flood guards decide first (reject, or hold the message for the wait).
- All parts of the message take their permits from the rate gate together, then go back to
  back, so they reach the provider well within its one-minute limit for long messages.
- ESME_RTHROTTLED and ESME_RMSGQFUL cut the account's rate and the part is sent again after a
  short jittered wait (tenacity): throttling is retried for as long as it takes and never
  fails a message. Other temporary errors (link down, timeouts, ESME_RSYSERR) are retried
  with exponential backoff and jitter until ``give_up_after_seconds``; permanent ones end the
  recipient at once.
- At shutdown nothing new is attempted: a message still retrying is abandoned, uncommitted,
  and will be processed again after the restart; it is never reported as failed for that.
- A submit that may repeat an earlier one of ours (the request is a replay after a crash, or
  the previous attempt's response was lost) and that the provider refuses as a duplicate
  (:data:`~gateway.provider.codes.SMPP_DUPLICATE_STATUS`) was delivered by that earlier
  submit: the part is not sent again. A recipient whose parts were all refused that way ends
  ``duplicate`` (code ``provider_duplicate``): retrying until the provider's duplicate window
  ends would make the subscriber receive the message twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
    wait_random_exponential,
)

from gateway.errors import AbandonedError, GatewayError
from gateway.events.send_result import ErrorInfo, RecipientOutcome
from gateway.metrics import Children, Metrics
from gateway.provider.codes import SMPP_DUPLICATE_STATUS
from gateway.settings import SenderSettings
from gateway.smpp.constants import status_name
from gateway.smpp.errors import CommandStatusError, ResponseTimeoutError, ThrottledError
from gateway.smpp.pdu import SubmitSm, SubmitSmResp
from gateway.smpp.receipt import normalize_message_id

from .guards import ProviderGuards, Verdict
from .pacing import SubmitGate


class Submitter(Protocol):
    async def submit(self, pdu: SubmitSm, *, urgent: bool = False) -> SubmitSmResp:
        """The provider's answer; raises a typed SMPP error when it is not ESME_ROK."""


class EarlierSubmitDeliveredError(GatewayError):
    """The provider refused a part as a duplicate of an earlier submit of ours, which
    therefore went through: sending it again cannot help (and must not)."""


class Submission:
    """Sends recipients' messages for one account; shared by every in-flight request."""

    def __init__(
        self,
        *,
        submitter: Submitter,
        gate: SubmitGate,
        guards: ProviderGuards,
        settings: SenderSettings,
        metrics: Metrics,
        account: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._submitter = submitter
        self._gate = gate
        self._guards = guards
        self._settings = settings
        self._metrics = metrics
        self._account = account
        self._clock = clock
        self._retries = Children(metrics.send_retries)
        self._prevented = Children(metrics.guard_prevented)
        # By priority: (bulk, urgent).
        self._gate_wait = (metrics.rate_wait.labels("bulk"), metrics.rate_wait.labels("urgent"))
        self._throttled = metrics.rate_throttled.labels(account)
        self._cuts = metrics.rate_cuts.labels(account)
        self._backoff = wait_exponential_jitter(
            multiplier=settings.retry_initial_seconds,
            max=settings.retry_max_seconds,
            jitter=settings.retry_initial_seconds,
        )
        self.stopping = False

    def stop(self) -> None:
        """Shutdown: attempt nothing new; messages waiting for a permit are abandoned."""
        self.stopping = True
        self._gate.cancel_waiters(AbandonedError("shutting down"))

    async def send(
        self,
        phone: str,
        text: str,
        parts: Sequence[SubmitSm],
        *,
        urgent: bool,
        segments: int | None = None,
        replay: bool = False,
        submitting: Callable[[], None] = lambda: None,
    ) -> tuple[RecipientOutcome, int]:
        """The recipient's outcome and the number of submit attempts it took.

        ``segments`` is how many SMS the provider counts against the rate (more than the
        submits for one ``message_payload`` carrying a long text); the parts' count otherwise.
        ``replay``: the request may have been submitted before a crash (see the module
        docstring for what a duplicate refusal then means). ``submitting`` is called once the
        permits are taken, just before the first part goes to the submitter: until then,
        cancelling the call leaves nothing at the provider.
        """
        verdict = self._guards.check(phone, text, self._clock())
        if verdict.action != "go":
            refused = await self._held_by_guards(phone, text, verdict)
            if refused is not None:
                return refused, 0
        tally = _Tally(ambiguous=replay)
        ids: list[str] = []
        try:
            # One reservation for every part; retries of a part take a permit of their own.
            permits = segments or len(parts)
            if not self._permits_now(permits, urgent):
                await self._acquire(permits, urgent)
            if self.stopping:
                raise AbandonedError("shutting down")
            submitting()
            for pdu in parts:
                try:
                    response = await self._submit_part(pdu, urgent, tally)
                except EarlierSubmitDeliveredError:
                    tally.delivered_before += 1
                    continue
                ids.append(normalize_message_id(response.message_id))
        except AbandonedError:
            self._guards.forget(phone, text)
            raise
        except asyncio.CancelledError:
            if not tally.attempts:  # nothing reached the provider: taken up again, this
                self._guards.forget(phone, text)  # message is not its own duplicate
            raise
        except GatewayError as exc:
            self._guards.forget(phone, text)
            return self._failed(phone, exc, ids), tally.attempts
        return _sent(phone, ids, tally), tally.attempts

    def _failed(self, phone: str, exc: GatewayError, ids: list[str]) -> RecipientOutcome:
        """The outcome of a recipient whose submits ended in ``exc``; AbandonedError when
        shutdown came and sending again may help."""
        if isinstance(exc, CommandStatusError):
            if exc.retriable and self.stopping:
                raise AbandonedError from exc
            return _refused(phone, exc, ids)
        if self.stopping:
            raise AbandonedError from exc
        error = ErrorInfo("retries_exhausted", f"{type(exc).__name__}: {exc}")
        return RecipientOutcome(phone, "failed", tuple(ids), error)

    def _permits_now(self, permits: int, urgent: bool) -> bool:
        """Take the permits if the gate lets them go at once (the usual case: no waiting)."""
        if not self._gate.try_acquire(permits, urgent=urgent):
            return False
        self._gate_wait[urgent].observe(0.0)
        return True

    async def _held_by_guards(
        self, phone: str, text: str, verdict: Verdict
    ) -> RecipientOutcome | None:
        """A guard did not say go: count it; wait while it says delay. The recipient's
        outcome when a guard rejects the message, None once they let it go."""
        while True:
            if verdict.action != "go":
                self._prevented(str(verdict.rule), verdict.action).inc()
            if verdict.action != "delay":
                break
            await asyncio.sleep(max(0.0, verdict.wait_seconds))
            verdict = self._guards.check(phone, text, self._clock())
        if verdict.action != "reject":
            return None
        status = "duplicate" if verdict.rule == "duplicate" else "rejected"
        message = f"the provider's {verdict.rule} rule would refuse this message"
        return RecipientOutcome(phone, status, error=ErrorInfo(str(verdict.rule), message))

    async def _acquire(self, parts: int, urgent: bool) -> None:
        started = self._clock()
        await self._gate.acquire(parts, urgent=urgent)
        self._gate_wait[urgent].observe(self._clock() - started)

    async def _submit_part(self, pdu: SubmitSm, urgent: bool, tally: _Tally) -> SubmitSmResp:
        tally.attempts += 1
        try:
            response = await self._submitter.submit(pdu, urgent=urgent)
        except GatewayError as first:
            self._failed_attempt(first, tally)
            if not first.retriable or self.stopping:
                raise
            self._note_failure(first)
            first_wait = (
                _THROTTLE_WAIT_FIRST
                if isinstance(first, ThrottledError)
                else self._settings.retry_initial_seconds
            )
            return await self._retry(pdu, urgent, tally, first_wait)
        self._gate.rate.on_accepted(1, self._clock())
        return response

    def _failed_attempt(self, exc: GatewayError, tally: _Tally) -> None:
        """What a failed attempt means: a timeout may have reached the provider; a duplicate
        refusal of a submit that may repeat an earlier one says that one went through."""
        if isinstance(exc, ResponseTimeoutError):
            tally.ambiguous = True  # it may have reached the provider
        elif (
            isinstance(exc, CommandStatusError)
            and tally.ambiguous
            and exc.command_status == SMPP_DUPLICATE_STATUS
        ):
            self._prevented("provider_duplicate", "reject").inc()
            raise EarlierSubmitDeliveredError(str(exc)) from exc

    async def _attempt(self, pdu: SubmitSm, urgent: bool, tally: _Tally) -> SubmitSmResp:
        try:
            response = await self._submitter.submit(pdu, urgent=urgent)
        except GatewayError as exc:
            self._failed_attempt(exc, tally)
            raise
        self._gate.rate.on_accepted(1, self._clock())
        return response

    async def _retry(
        self, pdu: SubmitSm, urgent: bool, tally: _Tally, first_wait: float
    ) -> SubmitSmResp:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retriable),
            wait=self._wait,
            stop=self._stop,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        # The first attempt failed outside the loop, whose first try would come at once.
        await asyncio.sleep(first_wait * random.random())
        async for attempt in retrying:
            with attempt:
                tally.attempts += 1
                if self.stopping:
                    raise AbandonedError
                await self._acquire(1, urgent)
                response = await self._attempt(pdu, urgent, tally)
        return response

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ThrottledError):
            # Short and jittered: the gate has already slowed the account down.
            return float(_THROTTLE_WAIT(state))
        return float(self._backoff(state))

    def _stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if self.stopping or isinstance(error, AbandonedError):
            return True
        if isinstance(error, ThrottledError):
            return False  # throttling never fails a message
        elapsed = state.seconds_since_start or 0.0
        return elapsed >= self._settings.give_up_after_seconds

    def _before_sleep(self, state: RetryCallState) -> None:
        if state.outcome is not None:
            self._note_failure(state.outcome.exception())

    def _note_failure(self, error: BaseException | None) -> None:
        if isinstance(error, ThrottledError):
            self._throttled.inc()
            if self._gate.rate.on_throttled(self._clock()):
                self._cuts.inc()
        reason = (
            status_name(error.command_status)
            if isinstance(error, CommandStatusError)
            else type(error).__name__
        )
        self._retries(reason).inc()


@dataclass(slots=True)
class _Tally:
    """Submit attempts for one recipient, counted whether they end well or not; whether one
    may have gone through unseen; parts an earlier submit delivered."""

    attempts: int = 0
    ambiguous: bool = False
    delivered_before: int = 0


def _sent(phone: str, ids: list[str], tally: _Tally) -> RecipientOutcome:
    """The outcome of a recipient whose parts were all either accepted now or delivered by an
    earlier submit (``duplicate`` when none was accepted now)."""
    if not tally.delivered_before:
        return RecipientOutcome(phone, "accepted", tuple(ids))
    error = ErrorInfo(
        "provider_duplicate",
        f"{tally.delivered_before} part(s) refused as duplicates of an earlier submit of this "
        "request, which delivered them; not sent again",
        SMPP_DUPLICATE_STATUS,
    )
    return RecipientOutcome(phone, "accepted" if ids else "duplicate", tuple(ids), error)


_THROTTLE_WAIT = wait_random_exponential(multiplier=0.05, max=1.0)
# Up to this long before the first retry of a throttled part (jittered); the rate gate has
# already slowed the account down, so the retry need not wait for more than its turn.
_THROTTLE_WAIT_FIRST = 0.05


def _refused(phone: str, exc: CommandStatusError, ids: list[str]) -> RecipientOutcome:
    status = "failed" if exc.retriable else "rejected"
    error = ErrorInfo(status_name(exc.command_status).lower(), str(exc), exc.command_status)
    return RecipientOutcome(phone, status, tuple(ids), error)


def _is_retriable(error: BaseException) -> bool:
    return isinstance(error, GatewayError) and error.retriable
