"""The provider's sending rules, as plain objects fed a monotonic ``now``.

From the SMPP seed:

- "The speed of mailing lists": each account may send 30 SMS per second by default; above
  that the server answers with a throttling error and the client must slow down. Here a
  token bucket per account (:class:`RateLimit`) counts SMS parts and the refusal is
  ESME_RTHROTTLED (0x58).
- "Sending a message": the server "does not accept more than one identical request ... within
  a minute" (:class:`DuplicateRule`) and "blocks sending more than 50 messages to one
  subscriber, which were sent with a break between messages of less than 30 seconds"
  (:class:`FloodRule`).

The seed names no SMPP status for the last two refusals (its HTTP error 251 covers the flood
case only), so the simulator answers both with ESME_RSUBMITFAIL (0x45) unless configured
otherwise (``duplicate_status``, ``flood_status``). Only accepted messages count: a refused
one neither restarts the duplicate window nor lengthens a flood run, which is also what the
gateway's own guards assume when they compute how long to hold a message back.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from gateway.smpp.constants import TlvTag
from gateway.smpp.pdu import SubmitSm

# Float time steps (0.1 + 0.2 ...) must not cost a token that exact pacing has earned.
_EPSILON = 1e-9


class RateLimit:
    """A token bucket: ``per_second`` tokens a second, holding at most ``capacity``.

    The capacity is ``max(1, per_second * burst_seconds)`` and the bucket starts full. A
    message of more parts than the capacity passes when the bucket is full and leaves it in
    debt, so the long-run rate stays exact whatever the message sizes.
    """

    def __init__(self, per_second: float, burst_seconds: float, now: float) -> None:
        self._burst_seconds = burst_seconds
        self._last = now
        self.per_second = per_second
        self.capacity = _capacity(per_second, burst_seconds)
        self._tokens = self.capacity

    def take(self, parts: int, now: float) -> bool:
        """Spend ``parts`` tokens if there are enough at ``now``; False leaves the bucket as is."""
        self._refill(now)
        if self._tokens + _EPSILON < min(parts, self.capacity):
            return False
        self._tokens -= parts
        return True

    def set_rate(self, per_second: float, now: float) -> None:
        """From ``now`` on, refill at ``per_second``; tokens above the new capacity are lost."""
        self._refill(now)
        self.per_second = per_second
        self.capacity = _capacity(per_second, self._burst_seconds)
        self._tokens = min(self._tokens, self.capacity)

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.per_second)
            self._last = now


def _capacity(per_second: float, burst_seconds: float) -> float:
    return max(1.0, per_second * burst_seconds)


class AccountRateLimits:
    """One :class:`RateLimit` per account, shared by all its connections.

    ``per_second=None`` means unlimited. The rate of every account or of one account can be
    changed at any time and applies to the very next message.
    """

    def __init__(self, per_second: float | None, burst_seconds: float) -> None:
        self._default = per_second
        self._burst_seconds = burst_seconds
        self._overrides: dict[str, float | None] = {}
        self._buckets: dict[str, RateLimit] = {}

    def rate(self, system_id: str) -> float | None:
        """The parts per second ``system_id`` may send now (None: unlimited)."""
        return self._overrides.get(system_id, self._default)

    def take(self, system_id: str, parts: int, now: float) -> bool:
        """Whether ``system_id`` may send ``parts`` more SMS at ``now`` (and count them)."""
        per_second = self.rate(system_id)
        if per_second is None:
            return True
        bucket = self._buckets.get(system_id)
        if bucket is None:
            bucket = self._buckets[system_id] = RateLimit(per_second, self._burst_seconds, now)
        return bucket.take(parts, now)

    def set_rate(self, per_second: float | None, now: float, system_id: str | None = None) -> None:
        """Change the rate of ``system_id``, or of every account (dropping per-account ones)."""
        if system_id is None:
            self._default = per_second
            self._overrides.clear()
            targets = list(self._buckets)
        else:
            self._overrides[system_id] = per_second
            targets = [system_id] if system_id in self._buckets else []
        for target in targets:
            if per_second is None:
                del self._buckets[target]
            else:
                self._buckets[target].set_rate(per_second, now)


def submit_fingerprint(system_id: str, pdu: SubmitSm) -> bytes:
    """What makes two submits "identical": account, destination, short_message, data_coding
    and message_payload (a 16-byte digest, so a minute of traffic stays small)."""
    payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
    digest = hashlib.blake2b(digest_size=16)
    for part in (
        system_id.encode(),
        pdu.destination_addr.encode(),
        bytes([pdu.data_coding]),
        pdu.short_message,
        b"" if payload is None else payload.value,
    ):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.digest()


class DuplicateRule:
    """Refuses a fingerprint accepted less than ``window_seconds`` ago."""

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        # Accepted fingerprints, oldest first: only absent (or expired) ones are recorded.
        self._accepted: OrderedDict[bytes, float] = OrderedDict()

    def refuses(self, fingerprint: bytes, now: float) -> bool:
        """Whether a submit with ``fingerprint`` at ``now`` is a duplicate."""
        self._expire(now)
        return fingerprint in self._accepted

    def record(self, fingerprint: bytes, now: float) -> None:
        """A submit with ``fingerprint`` was accepted at ``now``."""
        self._accepted[fingerprint] = now
        self._accepted.move_to_end(fingerprint)

    def __len__(self) -> int:
        return len(self._accepted)

    def _expire(self, now: float) -> None:
        horizon = now - self._window
        while self._accepted and next(iter(self._accepted.values())) <= horizon:
            self._accepted.popitem(last=False)


@dataclass(slots=True)
class _Run:
    last: float
    length: int


class FloodRule:
    """Refuses the ``limit + 1``-th message of a run to one destination, a run being messages
    each less than ``gap_seconds`` after the previous accepted one."""

    def __init__(self, limit: int, gap_seconds: float) -> None:
        self._limit = limit
        self._gap = gap_seconds
        self._runs: OrderedDict[tuple[str, str], _Run] = OrderedDict()  # least recent first

    def refuses(self, destination: tuple[str, str], now: float) -> bool:
        """Whether a message to ``destination`` (system_id, address) at ``now`` is a flood."""
        self._expire(now)
        run = self._runs.get(destination)
        return run is not None and run.length >= self._limit

    def record(self, destination: tuple[str, str], now: float) -> None:
        """A message to ``destination`` was accepted at ``now``."""
        self._expire(now)
        run = self._runs.pop(destination, None) or _Run(now, 0)
        run.last = now
        run.length += 1
        self._runs[destination] = run

    def __len__(self) -> int:
        return len(self._runs)

    def _expire(self, now: float) -> None:
        # A gap of gap_seconds or more ends a run.
        horizon = now - self._gap
        while self._runs and next(iter(self._runs.values())).last <= horizon:
            self._runs.popitem(last=False)
