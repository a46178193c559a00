"""The simulator's SMSC logic, without sockets: who may bind, what a submit_sm is answered,
and which delivery reports are owed to which account.

A submit_sm is checked in this order: a destination is required (ESME_RINVDSTADR), then the
duplicate and flood rules (the configured statuses), then the account's rate limit
(ESME_RTHROTTLED), see :mod:`.rules`. A refused submit changes nothing else: it uses no
rate budget, is not recorded, gets no message id and no report. The rate limit counts SMS
parts: one per submit_sm of a concatenated message, and as many as a long message_payload
needs (:func:`.concat.count_parts`). The flood rule counts messages: a concatenated message
counts once, with its first part to arrive.

Reports: one per message, or with ``system_type`` SINGLE one per SMS part, each part then
having its own message id (SMPP seed, "Checking the status"); an ``__HLR__`` submit is
answered with an HLR result (:mod:`.hlr`). Incoming SMS queued for an account wait in the
same outbox as its reports (:mod:`.outbox`). Every DELIVER_SM is sent again until answered
ESME_ROK, unless answered with a permanent error status (the gateway's table,
:func:`gateway.smpp.errors.error_for_status`), which drops it.
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import partial

from gateway.settings.simulator import DlrOutcome, SimulatorSettings
from gateway.smpp.constants import CommandStatus, TlvTag
from gateway.smpp.errors import error_for_status
from gateway.smpp.pdu import DeliverSm, SubmitSm, SubmitSmResp

from .concat import PartAssembler, PartInfo, count_parts, part_info
from .dlr import MESSAGE_TYPE_HLR, MESSAGE_TYPE_SMS, AcceptedMessage, build_delivery_report
from .hlr import build_hlr_result, is_hlr_request
from .incoming import IncomingSpec, References, build_incoming
from .logins import BindFlags
from .outbox import DeliverOutbox, Pending, PendingDlr, PendingIncoming
from .rules import AccountRateLimits, DuplicateRule, FloodRule, submit_fingerprint
from .stats import AcceptedParts, SimulatorStats, SubmitRecord

log = logging.getLogger(__name__)

# registered_delivery bits 0-1 (5.2.17): 1 asks for a receipt on any final outcome,
# 2 only on failure.
_RECEIPT_ALWAYS = 1
_RECEIPT_ON_FAILURE = 2
_PLAIN_BIND = BindFlags()


@dataclass(frozen=True, slots=True)
class _RuleInput:
    """What the provider's rules look at in one submit_sm."""

    account: str
    fingerprint: bytes
    destination: tuple[str, str]
    new_message: bool  # not a further part of a message already started
    parts: int


class DeliveryResult(Enum):
    """How one attempt to deliver a DELIVER_SM ended."""

    ACKED = "acked"  # deliver_sm_resp with ESME_ROK: done
    REFUSED = "refused"  # a temporary error status (ESME_RX_T_APPN, say): retry later
    REJECTED = "rejected"  # a permanent error status (ESME_RX_P_APPN, say): dropped
    TIMED_OUT = "timed_out"  # no answer in time: retry later
    LOST = "lost"  # the connection went away first: ready again at once

    @classmethod
    def answered(cls, command_status: int) -> DeliveryResult:
        """The result of a deliver_sm_resp with ``command_status``."""
        if command_status == CommandStatus.ESME_ROK:
            return cls.ACKED
        return cls.REFUSED if error_for_status(command_status).retriable else cls.REJECTED


class MessageCentre:
    """Bind checks, message ids, the submit record and the reports owed.

    ``clock`` is monotonic (report delays), ``wall_clock`` gives the receipt dates.
    """

    def __init__(
        self,
        config: SimulatorSettings,
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
        self.outbox = DeliverOutbox(self._on_due)
        self.incoming_idle = asyncio.Event()
        self.incoming_idle.set()
        self._clock = clock
        self._wall_clock = wall_clock
        self._ids = itertools.count(config.message_id_start)
        self._rng = random.Random(config.seed)
        self._cumulative = list(itertools.accumulate(o.weight for o in config.dlr_outcomes))
        self._parts = PartAssembler()
        self._references = References()
        self._incoming_rng = random.Random(config.seed)

    def authenticate(self, system_id: str, password: str) -> CommandStatus:
        """ESME_ROK, or the bind_*_resp status saying which credential is wrong."""
        expected = self.config.accounts.get(system_id)
        if expected is None:
            return CommandStatus.ESME_RINVSYSID
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return CommandStatus.ESME_RINVPASWD
        return CommandStatus.ESME_ROK

    def submit(self, system_id: str, pdu: SubmitSm, flags: BindFlags = _PLAIN_BIND) -> SubmitSmResp:
        """Accept or refuse one submit_sm; an accepted one may owe a delivery report.

        ``flags`` are those of the bind it came on (SINGLE and ISO matter here).
        """
        info = part_info(pdu)
        refusal = self._refusal(system_id, pdu, info)
        if refusal is not None:
            return self._answer(SubmitSmResp(command_status=refusal))
        now = self._wall_clock()
        if info is None:
            message, complete = self._accept(pdu, now, count_parts(pdu)), True
        elif flags.single:
            # Its own id and report; the assembler still tracks the message (flood rule).
            message, complete = self._accept(pdu, now, 1), True
            self._parts.add(system_id, pdu, info, lambda _: message)
        else:
            accept = partial(self._accept, pdu, now)
            message, complete = self._parts.add(system_id, pdu, info, accept)
        self._record(system_id, pdu, message.message_id, now)
        outcome = self._choose_outcome() if complete else None
        if outcome is not None and _wants_report(pdu.registered_delivery, outcome):
            hlr = info is None and is_hlr_request(pdu, iso=flags.iso)
            kind = MESSAGE_TYPE_HLR if hlr else MESSAGE_TYPE_SMS
            self._schedule(system_id, message, outcome, kind)
        log.debug("submit_sm from %s accepted as %s", system_id, message.message_id)
        return self._answer(SubmitSmResp(message_id=message.message_id))

    def set_rate_limit(self, per_second: float | None, system_id: str | None = None) -> None:
        """Change the rate limit of ``system_id`` or of every account, from the next submit."""
        self.rate_limits.set_rate(per_second, self._clock(), system_id)

    def incoming(
        self, system_id: str, spec: IncomingSpec, *, shuffle: bool = False, iso: bool = False
    ) -> list[DeliverSm]:
        """Build the PDUs of an incoming SMS for ``system_id`` and queue them; ``shuffle``
        puts the parts of a long one out of order, ``iso`` is the account's ISO flag."""
        if system_id not in self.config.accounts:
            raise ValueError(f"no account {system_id!r}")
        reference = self._references.take(spec.destination, spec.concat)
        pdus = build_incoming(spec, reference=reference, iso=iso)
        if shuffle and len(pdus) > 1:
            ordered = list(pdus)
            while pdus == ordered:  # out of order for certain, not just by chance
                self._incoming_rng.shuffle(pdus)
        self.queue_incoming(system_id, pdus)
        return pdus

    def queue_incoming(self, system_id: str, pdus: Sequence[DeliverSm]) -> None:
        """Owe ``pdus`` to the receiving binds of ``system_id``, in this order."""
        for pdu in pdus:
            self.outbox.requeue(PendingIncoming(system_id, pdu))
        self.stats.incoming_queued += len(pdus)
        self.stats.incoming_pending += len(pdus)
        if self.stats.incoming_pending:
            self.incoming_idle.clear()

    def attempt(self, item: Pending) -> None:
        """Count one attempt to deliver ``item``."""
        item.attempts += 1
        if isinstance(item, PendingDlr):
            self.stats.dlrs_sent += 1
        else:
            self.stats.incoming_sent += 1

    def finished(self, item: Pending, result: DeliveryResult) -> None:
        """Account for one delivery attempt; put the item back unless it is done."""
        if result is DeliveryResult.LOST:
            self.outbox.requeue(item)
            return
        if isinstance(item, PendingDlr):
            self._count_report(result)
            retry = self.config.dlr_retry_seconds
        else:
            self._count_incoming(result)
            retry = self.config.incoming_retry_seconds
        if result in (DeliveryResult.REFUSED, DeliveryResult.TIMED_OUT):
            self.outbox.schedule(item, self._clock() + retry)

    async def run(self) -> None:
        """Release reports as they fall due; runs until cancelled."""
        await self.outbox.run(self._clock)

    # -- internals ---------------------------------------------------------------------

    def _count_report(self, result: DeliveryResult) -> None:
        stats = self.stats
        if result is DeliveryResult.ACKED:
            stats.dlrs_acked += 1
        elif result is DeliveryResult.REJECTED:
            stats.dlrs_rejected += 1
        elif result is DeliveryResult.REFUSED:
            stats.dlrs_refused += 1
        else:
            stats.dlrs_timed_out += 1
        if result in (DeliveryResult.ACKED, DeliveryResult.REJECTED):
            stats.dlrs_pending -= 1

    def _count_incoming(self, result: DeliveryResult) -> None:
        stats = self.stats
        if result is DeliveryResult.ACKED:
            stats.incoming_acked += 1
        elif result is DeliveryResult.REJECTED:
            stats.incoming_rejected += 1
        elif result is DeliveryResult.REFUSED:
            stats.incoming_refused += 1
        else:
            stats.incoming_timed_out += 1
        if result in (DeliveryResult.ACKED, DeliveryResult.REJECTED):
            stats.incoming_pending -= 1
            if stats.incoming_pending == 0:
                self.incoming_idle.set()

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

    def _schedule(
        self, system_id: str, message: AcceptedMessage, outcome: DlrOutcome, kind: int
    ) -> None:
        dlr = PendingDlr(system_id, message, outcome, message_type=kind)
        self.outbox.schedule(dlr, self._clock() + self.config.dlr_delay_seconds)
        self.stats.dlrs_scheduled += 1
        self.stats.dlrs_pending += 1
        self.stats.hlr_results += kind == MESSAGE_TYPE_HLR

    def _on_due(self, item: Pending) -> None:
        if not isinstance(item, PendingDlr) or item.pdu is not None:
            return
        cost, mccmnc = self.config.dlr_cost, self.config.dlr_mccmnc
        if item.message_type == MESSAGE_TYPE_HLR:
            item.pdu = build_hlr_result(item.message, item.outcome, cost=cost, mccmnc=mccmnc)
        else:
            done = self._wall_clock()
            item.pdu = build_delivery_report(
                item.message, item.outcome, done, cost=cost, mccmnc=mccmnc
            )


def _wants_report(registered_delivery: int, outcome: DlrOutcome) -> bool:
    wanted = registered_delivery & 0x03
    return wanted == _RECEIPT_ALWAYS or (
        wanted == _RECEIPT_ON_FAILURE and outcome.stat != "DELIVRD"
    )
