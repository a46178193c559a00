"""The provider's duplicate and flood rules, kept on our side before the provider refuses.

From the SMPP seed ("Sending a message"): the provider refuses an identical request within a
minute, and blocks more than 50 messages to one subscriber sent less than 30 seconds apart.
The gateway applies the same rules to each recipient before submitting, with a policy per
rule: ``reject`` ends the recipient with a ``duplicate`` (or ``flood``) status and sends
nothing; ``delay`` holds the message until the rule allows it.

State is per sender process: producers that key send requests by phone number give one
process every message of a phone, which makes these checks exact across replicas.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from gateway.settings.sender import GuardSettings


class Action(StrEnum):
    """What a guard says of a message; the values are the ``policy`` settings' and the
    ``smsc_guard_prevented_total`` label's."""

    GO = "go"
    DELAY = "delay"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    """``go``; or ``rule`` (duplicate | flood) says ``reject``, or ``delay`` for ``wait``."""

    action: Action
    rule: str | None = None
    wait_seconds: float = 0.0


GO = Verdict(Action.GO)


@dataclass(slots=True)
class _Run:
    last: float
    length: int


class ProviderGuards:
    """Duplicate and flood bookkeeping; memory is bounded by the two time windows."""

    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self._recent: OrderedDict[int, float] = OrderedDict()
        self._runs: OrderedDict[str, _Run] = OrderedDict()

    def check(self, phone: str, text: str, now: float) -> Verdict:
        """What to do with a message to ``phone``; a ``go`` is recorded as sent."""
        self._expire(now)
        key = _digest(phone, text)
        sent_at = self._recent.get(key)
        if sent_at is not None:
            wait = sent_at + self.settings.duplicate_window_seconds - now
            return Verdict(Action(self.settings.duplicate_policy), "duplicate", wait)
        run = self._runs.get(phone)
        if run is not None and run.length >= self.settings.flood_limit:
            wait = run.last + self.settings.flood_gap_seconds - now
            return Verdict(Action(self.settings.flood_policy), "flood", wait)
        self._record(key, phone, now)
        return GO

    def forget(self, phone: str, text: str) -> None:
        """The provider did not accept the message: it does not count as a duplicate."""
        self._recent.pop(_digest(phone, text), None)

    def _record(self, key: int, phone: str, now: float) -> None:
        self._recent[key] = now
        run = self._runs.pop(phone, None)
        if run is None or now - run.last >= self.settings.flood_gap_seconds:
            run = _Run(now, 0)
        run.last = now
        run.length += 1
        self._runs[phone] = run  # most recent last, so expiry reads from the front

    def _expire(self, now: float) -> None:
        horizon = now - self.settings.duplicate_window_seconds
        while self._recent and next(iter(self._recent.values())) <= horizon:
            self._recent.popitem(last=False)
        gap = now - self.settings.flood_gap_seconds
        while self._runs and next(iter(self._runs.values())).last <= gap:
            self._runs.popitem(last=False)


def _digest(phone: str, text: str) -> int:
    """The message's key among those sent recently: a 64-bit hash rather than the text, so
    memory does not grow with the texts' length. Python's string hash is SipHash with a key
    drawn for each process (unless PYTHONHASHSEED fixes it), which no client can aim a
    collision at; by chance, two of the messages kept in a minute share a key with odds of
    their number over 2**64. 0.2 µs rather than 1.5 for a 128-bit BLAKE2 digest, and the
    state is the process's own, so the key need not be stable across processes."""
    return hash(f"{phone}\x00{text}")
