"""The simulator's SMSC logic, without sockets: who may bind, what a submit_sm is answered,
and which delivery reports are owed to which account.

A submit_sm is checked in this order: a destination is required (ESME_RINVDSTADR), then the
duplicate and flood rules (the configured statuses), then the account's rate limit
(ESME_RTHROTTLED), see :mod:`.rules`. A refused submit changes nothing else: it uses no
rate budget, is not recorded, gets no message id and no report. The rate limit counts SMS
parts: one per submit_sm of a concatenated message, and as many as a long message_payload
needs (:func:`.concat.count_parts`). The flood rule counts messages: a concatenated message
counts once, with its first part to arrive.
"""

from __future__ import annotations

import bisect
import hmac
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import partial

from gateway.smpp.constants import CommandStatus, TlvTag
from gateway.smpp.pdu import SubmitSm, SubmitSmResp

from .concat import PartAssembler, PartInfo, count_parts, part_info
from .config import DlrOutcome, SimulatorConfig
from .dlr import AcceptedMessage, build_delivery_report
from .outbox import DlrOutbox, PendingDlr
from .rules import AccountRateLimits, DuplicateRule, FloodRule, submit_fingerprint
from .stats import AcceptedParts, SimulatorStats, SubmitRecord

log = logging.getLogger(__name__)

# registered_delivery bits 0-1 (5.2.17): 1 asks for a receipt on any final outcome,
# 2 only on failure.
_RECEIPT_ALWAYS = 1
_RECEIPT_ON_FAILURE = 2


@dataclass(frozen=True, slots=True)
class _RuleInput:
    """What the provider's rules look at in one submit_sm."""

    account: str
    fingerprint: bytes
    destination: tuple[str, str]
    new_message: bool  # not a further part of a message already started
    parts: int


class DeliveryResult(Enum):
    """How one attempt to deliver a report ended."""

    ACKED = "acked"  # deliver_sm_resp with ESME_ROK: the report is done
    REFUSED = "refused"  # an error status: retry later
    TIMED_OUT = "timed_out"  # no answer in time: retry later
    LOST = "lost"  # the connection went away first: ready again at once


class MessageCentre:
    """Bind checks, message ids, the submit record and the reports owed.

    ``clock`` is monotonic (report delays), ``wall_clock`` gives the receipt dates.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.stats = SimulatorStats(parts=AcceptedParts(config.max_recorded_parts))
        self.rate_limits = AccountRateLimits(
            config.rate_limit_per_second, config.rate_burst_seconds
        )
        window, limit = config.duplicate_window_seconds, config.flood_limit
        self._duplicates = None if window is None else DuplicateRule(window)
        self._floods = None if limit is None else FloodRule(limit, config.flood_gap_seconds)
        self.submits: deque[SubmitRecord] = deque(maxlen=config.max_recorded_submits)
        self.outbox = DlrOutbox(self._on_due)
        self._clock = clock
        self._wall_clock = wall_clock
        self._ids = itertools.count(config.message_id_start)
        self._rng = random.Random(config.seed)
        self._cumulative = list(itertools.accumulate(o.weight for o in config.dlr_outcomes))
        self._parts = PartAssembler()

    def authenticate(self, system_id: str, password: str) -> CommandStatus:
        """ESME_ROK, or the bind_*_resp status saying which credential is wrong."""
        expected = self.config.accounts.get(system_id)
        if expected is None:
            return CommandStatus.ESME_RINVSYSID
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return CommandStatus.ESME_RINVPASWD
        return CommandStatus.ESME_ROK

    def submit(self, system_id: str, pdu: SubmitSm) -> SubmitSmResp:
        """Accept or refuse one submit_sm; an accepted one may owe a delivery report."""
        info = part_info(pdu)
        refusal = self._refusal(system_id, pdu, info)
        if refusal is not None:
            return self._answer(SubmitSmResp(command_status=refusal))
        now = self._wall_clock()
        if info is None:
            message, complete = self._accept(pdu, now, count_parts(pdu)), True
        else:
            accept = partial(self._accept, pdu, now)
            message, complete = self._parts.add(system_id, pdu, info, accept)
        self._record(system_id, pdu, message.message_id, now)
        outcome = self._choose_outcome() if complete else None
        if outcome is not None and _wants_report(pdu.registered_delivery, outcome):
            self._schedule(system_id, message, outcome)
        log.debug("submit_sm from %s accepted as %s", system_id, message.message_id)
        return self._answer(SubmitSmResp(message_id=message.message_id))

    def set_rate_limit(self, per_second: float | None, system_id: str | None = None) -> None:
        """Change the rate limit of ``system_id`` or of every account, from the next submit."""
        self.rate_limits.set_rate(per_second, self._clock(), system_id)

    def finished(self, dlr: PendingDlr, result: DeliveryResult) -> None:
        """Account for one delivery attempt and put the report back unless acknowledged."""
        if result is DeliveryResult.ACKED:
            self.stats.dlrs_acked += 1
            self.stats.dlrs_pending -= 1
        elif result is DeliveryResult.LOST:
            self.outbox.requeue(dlr)
        else:
            if result is DeliveryResult.REFUSED:
                self.stats.dlrs_refused += 1
            else:
                self.stats.dlrs_timed_out += 1
            self.outbox.schedule(dlr, self._clock() + self.config.dlr_retry_seconds)

    async def run(self) -> None:
        """Release reports as they fall due; runs until cancelled."""
        await self.outbox.run(self._clock)

    # -- internals ---------------------------------------------------------------------

    def _refusal(self, system_id: str, pdu: SubmitSm, info: PartInfo | None) -> int | None:
        """The status refusing ``pdu``, or None after counting it against every rule."""
        if not pdu.destination_addr:
            return CommandStatus.ESME_RINVDSTADR
        now = self._clock()
        submit = _RuleInput(
            account=system_id,
            fingerprint=submit_fingerprint(system_id, pdu),
            destination=(system_id, pdu.destination_addr),
            new_message=info is None or not self._parts.is_open(system_id, pdu, info),
            parts=1 if info is not None else count_parts(pdu),
        )
        status = self._rule_refusal(submit, now)
        if status is None and not self.rate_limits.take(system_id, submit.parts, now):
            self.stats.throttled += 1
            status = CommandStatus.ESME_RTHROTTLED
        if status is None:
            self._count(submit, now)
        return status

    def _rule_refusal(self, submit: _RuleInput, now: float) -> int | None:
        if self._duplicates is not None and self._duplicates.refuses(submit.fingerprint, now):
            self.stats.duplicates_refused += 1
            return self.config.duplicate_status
        floods = self._floods if submit.new_message else None
        if floods is not None and floods.refuses(submit.destination, now):
            self.stats.floods_refused += 1
            return self.config.flood_status
        return None

    def _count(self, submit: _RuleInput, now: float) -> None:
        if self._duplicates is not None:
            self._duplicates.record(submit.fingerprint, now)
        if submit.new_message and self._floods is not None:
            self._floods.record(submit.destination, now)
        self.stats.accept_parts(submit.account, submit.parts, now)

    def _answer(self, response: SubmitSmResp) -> SubmitSmResp:
        self.stats.submits += 1
        self.stats.submit_statuses[response.command_status] += 1
        return response

    def _accept(self, pdu: SubmitSm, now: datetime, parts: int) -> AcceptedMessage:
        return AcceptedMessage.from_submit(pdu, str(next(self._ids)), now, parts)

    def _record(self, system_id: str, pdu: SubmitSm, message_id: str, now: datetime) -> None:
        if not self.config.record_submits:
            return
        payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
        text = payload.value if payload is not None and not pdu.short_message else pdu.short_message
        self.submits.append(
            SubmitRecord(
                message_id,
                system_id,
                pdu.destination_addr,
                text,
                pdu.data_coding,
                pdu.registered_delivery,
                now.timestamp(),
            )
        )

    def _choose_outcome(self) -> DlrOutcome:
        outcomes = self.config.dlr_outcomes
        if len(outcomes) == 1:
            return outcomes[0]
        point = self._rng.random() * self._cumulative[-1]
        return outcomes[bisect.bisect_right(self._cumulative, point)]

    def _schedule(self, system_id: str, message: AcceptedMessage, outcome: DlrOutcome) -> None:
        dlr = PendingDlr(system_id, message, outcome)
        self.outbox.schedule(dlr, self._clock() + self.config.dlr_delay_seconds)
        self.stats.dlrs_scheduled += 1
        self.stats.dlrs_pending += 1

    def _on_due(self, dlr: PendingDlr) -> None:
        if dlr.pdu is None:
            dlr.pdu = build_delivery_report(
                dlr.message,
                dlr.outcome,
                self._wall_clock(),
                cost=self.config.dlr_cost,
                mccmnc=self.config.dlr_mccmnc,
            )


def _wants_report(registered_delivery: int, outcome: DlrOutcome) -> bool:
    wanted = registered_delivery & 0x03
    return wanted == _RECEIPT_ALWAYS or (
        wanted == _RECEIPT_ON_FAILURE and outcome.stat != "DELIVRD"
    )
