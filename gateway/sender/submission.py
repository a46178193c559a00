"""One recipient's message to the provider: guards, pacing, submits, retries.

- The duplicate and flood guards decide first (reject, or hold the message for the wait).
- All parts of the message take their permits from the rate gate together, then go back to
  back, so they reach the provider well within its one-minute limit for long messages.
- ESME_RTHROTTLED and ESME_RMSGQFUL cut the account's rate and the part is sent again after a
  short wait (full jitter below 50 ms, doubling up to a second): throttling is retried for as
  long as it takes and never fails a message. Other temporary errors (link down, timeouts,
  ESME_RSYSERR) are retried with exponential backoff from ``retry_initial_seconds`` to
  ``retry_max_seconds`` (equal jitter) until ``give_up_after_seconds``, counted from the
  first retry; permanent ones end the recipient at once. Both waits are
  :class:`gateway.backoff.Backoff` policies.
- At shutdown nothing new is attempted: a message still retrying is abandoned, uncommitted,
  and will be processed again after the restart; it is never reported as failed for that.
- A submit that may repeat an earlier one of ours (the request is a replay after a crash, or
  the previous attempt's response was lost) and that the provider refuses as a duplicate
  (:data:`~gateway.provider.codes.SMPP_DUPLICATE_STATUS`) was delivered by that earlier
  submit: the part is not sent again. A recipient whose parts were all refused that way ends
  ``duplicate`` (code ``provider_duplicate``): retrying until the provider's duplicate window
  ends would make the subscriber receive the message twice.
- A one-part message may be sent without waiting for anything (:meth:`Submission.start`:
  the guards say go, the gate admits it, the submitter has room at once); its ESME_ROK is
  taken by :meth:`Submission.answered`, any other answer by :meth:`Submission.send`
  (``pending``), which goes on as if its own first attempt had got it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.backoff import Backoff, Jitter
from gateway.errors import AbandonedError, GatewayError
from gateway.events.send_result import ErrorInfo, RecipientOutcome
from gateway.metrics import Children, Metrics
from gateway.provider.codes import SMPP_DUPLICATE_STATUS
from gateway.settings import SenderSettings
from gateway.smpp.constants import status_name
from gateway.smpp.errors import CommandStatusError, ResponseTimeoutError, ThrottledError
from gateway.smpp.pdu import SubmitSm, SubmitSmResp
from gateway.smpp.receipt import normalize_message_id

from .guards import GO, ProviderGuards, Verdict
from .pacing import SubmitGate


class PendingSubmit(Protocol):
    """A submit sent at once (``gateway.smpp_io.smpp_client.PendingSubmit``)."""

    @property
    def future(self) -> asyncio.Future[Any]:
        """Done once the answer is in (or the submit failed or was cancelled)."""

    def ok(self) -> bool:
        """Whether the answer is in and :meth:`answer` returns it."""

    def answer(self) -> SubmitSmResp:
        """Once :attr:`future` is done: what :meth:`Submitter.submit` would have returned or
        raised."""

    def cancel(self) -> None:
        """The answer is no longer wanted: :meth:`answer` raises CancelledError."""


class Submitter(Protocol):
    async def submit(self, pdu: SubmitSm, *, urgent: bool = False) -> SubmitSmResp:
        """The provider's answer; raises a typed SMPP error when it is not ESME_ROK."""

    def ready(self, *, urgent: bool = False) -> Callable[[SubmitSm], PendingSubmit] | None:
        """A submit that sends at once, waiting for nothing; None when :meth:`submit` would
        wait (for a bind, room in the window, a transport's backpressure)."""


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
        rng: random.Random | None = None,
    ) -> None:
        self._submitter = submitter
        self._gate = gate
        self._guards = guards
        self._settings = settings
        self._metrics = metrics
        self._account = account
        self._clock = clock
        self._rng = rng or random.Random()
        self._retries = Children(metrics.send_retries)
        self._prevented = Children(metrics.guard_prevented)
        # By priority: (bulk, urgent).
        self._gate_wait = (metrics.rate_wait.labels("bulk"), metrics.rate_wait.labels("urgent"))
        self._throttled = metrics.rate_throttled.labels(account)
        self._cuts = metrics.rate_cuts.labels(account)
        self._backoff = Backoff(
            settings.retry_initial_seconds, settings.retry_max_seconds, jitter=Jitter.EQUAL
        )
        self.stopping = False

    def stop(self) -> None:
        """Shutdown: attempt nothing new; messages waiting for a permit are abandoned."""
        self.stopping = True
        self._gate.cancel_waiters(AbandonedError("shutting down"))

    def start(
        self,
        phone: str,
        text: str,
        pdu: SubmitSm,
        *,
        urgent: bool,
        segments: int | None = None,
        submitting: Callable[[], None] = lambda: None,
    ) -> PendingSubmit | None:
        """A one-part message's first submit, sent now if nothing would wait for anything
        (the guards say go, the gate lets its permits go, the submitter sends at once); None,
        with nothing taken or recorded, otherwise. Its answer goes to :meth:`answered` when
        it is ESME_ROK, to :meth:`send` (``pending``) otherwise."""
        if self.stopping:
            return None
        submit = self._submitter.ready(urgent=urgent)
        if submit is None:
            return None
        permits = segments or 1
        now = self._gate.admits(permits, urgent=urgent)
        if now is None:
            return None
        # A verdict other than go records nothing: send() asks again.
        if self._guards.check(phone, text, self._clock()).action != "go":
            return None
        self._gate.try_acquire(permits, urgent=urgent, now=now)  # admitted at that reading
        self._gate_wait[urgent].observe(0.0)
        submitting()
        return submit(pdu)

    def answered(
        self, phone: str, pending: PendingSubmit, *, replay: bool
    ) -> tuple[RecipientOutcome, int]:
        """The outcome of a message :meth:`start` submitted, its answer ESME_ROK."""
        ids: list[str] = []
        self._accepted(pending.answer(), ids)
        return _sent(phone, ids, _Tally(attempts=1, ambiguous=replay)), 1

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
        pending: PendingSubmit | None = None,
    ) -> tuple[RecipientOutcome, int]:
        """The recipient's outcome and the number of submit attempts it took.

        ``segments`` is how many SMS the provider counts against the rate (more than the
        submits for one ``message_payload`` carrying a long text); the parts' count otherwise.
        ``replay``: the request may have been submitted before a crash (see the module
        docstring for what a duplicate refusal then means). ``submitting`` is called once the
        permits are taken, just before the first part goes to the submitter: until then,
        cancelling the call leaves nothing at the provider. ``pending``: the first part's
        submit, made by :meth:`start` and answered (not ESME_ROK): the message goes on
        from there.
        """
        verdict = GO if pending is not None else self._guards.check(phone, text, self._clock())
        if verdict.action != "go":
            refused = await self._held_by_guards(phone, text, verdict)
            if refused is not None:
                return refused, 0
        tally = _Tally(ambiguous=replay)
        ids: list[str] = []
        try:
            # One reservation for every part; retries of a part take a permit of their own.
            permits = segments or len(parts)
            if pending is None and not self._go_now(permits, urgent, submitting):
                await self._acquire(permits, urgent)
                self._submitting(submitting)
            submit = self._submitter.submit
            for pdu in parts:
                # The first attempt here, the usual and only one: no coroutine of its own.
                tally.attempts += 1
                try:
                    # A part start() sent is answered already (a message of one part).
                    first = submit(pdu, urgent=urgent) if pending is None else _answer(pending)
                    response = await first
                except GatewayError as exc:
                    try:
                        response = await self._retry_part(pdu, urgent, tally, exc)
                    except EarlierSubmitDeliveredError:
                        tally.delivered_before += 1
                        continue
                    ids.append(normalize_message_id(response.message_id))
                else:
                    self._accepted(response, ids)
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

    def _submitting(self, submitting: Callable[[], None]) -> None:
        """The permits are taken: the first part goes, unless shutdown came meanwhile."""
        if self.stopping:
            raise AbandonedError("shutting down")
        submitting()

    def _accepted(self, response: SubmitSmResp, ids: list[str]) -> None:
        """A first attempt the provider accepted."""
        self._gate.rate.on_accepted(1, self._clock())
        ids.append(normalize_message_id(response.message_id))

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

    def _go_now(self, permits: int, urgent: bool, submitting: Callable[[], None]) -> bool:
        """Take the permits if the gate lets them go at once (the usual case: no waiting),
        and then :meth:`_submitting`."""
        if not self._gate.try_acquire(permits, urgent=urgent):
            return False
        self._gate_wait[urgent].observe(0.0)
        self._submitting(submitting)
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

    async def _retry_part(
        self, pdu: SubmitSm, urgent: bool, tally: _Tally, error: GatewayError
    ) -> SubmitSmResp:
        """The provider's answer to ``pdu``, whose first attempt failed with ``error``, sent
        again while the error says that may help (see the module docstring for how long);
        the last error otherwise."""
        retries = 0
        retrying_since = 0.0
        while True:
            self._failed_attempt(error, tally)
            if (
                not error.retriable
                or self.stopping
                or self._gave_up(error, retries, retrying_since)
            ):
                raise error
            self._note_failure(error)
            await asyncio.sleep(self._retry_wait(error, retries))
            if not retries:
                retrying_since = self._clock()
            retries += 1
            if self.stopping:
                raise AbandonedError from error
            await self._acquire(1, urgent)  # a retry takes a permit of its own
            tally.attempts += 1
            try:
                response = await self._submitter.submit(pdu, urgent=urgent)
            except GatewayError as exc:
                error = exc
                continue
            self._gate.rate.on_accepted(1, self._clock())
            return response

    def _retry_wait(self, error: GatewayError, retries: int) -> float:
        if isinstance(error, ThrottledError):
            # Short: the gate has already slowed the account down.
            return _THROTTLE_BACKOFF.delay(retries, self._rng)
        return self._backoff.delay(retries, self._rng)

    def _gave_up(self, error: GatewayError, retries: int, retrying_since: float) -> bool:
        """Whether a temporary error has been retried for ``give_up_after_seconds``, counted
        from the first retry (which is always made); throttling never fails a message."""
        if not retries or isinstance(error, ThrottledError):
            return False
        return self._clock() - retrying_since >= self._settings.give_up_after_seconds

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


async def _answer(pending: PendingSubmit) -> SubmitSmResp:
    """The answer of a submit :meth:`Submission.start` sent (its future is done)."""
    return pending.answer()


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


# A throttled part waits up to 50 ms before its first retry, doubling to at most a second: the
# rate gate has already slowed the account down, so the retry need not wait for more than its
# turn.
_THROTTLE_BACKOFF = Backoff(0.05, 1.0, jitter=Jitter.FULL)


def _refused(phone: str, exc: CommandStatusError, ids: list[str]) -> RecipientOutcome:
    status = "failed" if exc.retriable else "rejected"
    error = ErrorInfo(status_name(exc.command_status).lower(), str(exc), exc.command_status)
    return RecipientOutcome(phone, status, tuple(ids), error)
