"""Settings of the simulator's incoming SMS (get.php) and call desk (wait_call.php).

Kept apart from :mod:`.simulator_http_api`, which embeds them, so that neither imports the
rules of the other. Limits from the seeds: get.php ``cnt`` at most 10000 and ``hour`` at most
168, error 9 above three identical requests a minute (seed 001); wait_call.php error 9 above
fifty identical requests a minute, a call within 15 minutes (webhook seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MAX_CNT = 10000
MAX_HOUR = 168
# get.php answers error 9 to more than this many identical requests a minute (seed 001).
ANSWERS_IDENTICAL_PER_WINDOW = 3
# wait_call.php refuses more than fifty identical requests a minute (webhook seed).
WAIT_CALL_IDENTICAL_PER_WINDOW = 50
# "the phone number to which the subscriber must make a call within 15 minutes"
CALL_WINDOW_SECONDS = 900.0


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """The simulated account's incoming SMS: numbering, defaults and where they go."""

    id_start: int = 1
    # The account's number that incoming SMS go to when a test names none.
    number: str = "79309990000"
    default_cnt: int = 100
    default_hour: int = 24
    identical_per_window: int = ANSWERS_IDENTICAL_PER_WINDOW
    # The account's time zone, in which the provider writes received and sent.
    utc_offset_hours: float = 3.0
    # With the HTTP API's webhook_url set, every incoming SMS is also posted to the handler.
    to_webhook: bool = True

    def problems(self) -> list[str]:
        found = []
        if not 1 <= self.default_cnt <= MAX_CNT or not 1 <= self.default_hour <= MAX_HOUR:
            found.append(f"default_cnt must be 1..{MAX_CNT} and default_hour 1..{MAX_HOUR}")
        if self.id_start < 1 or self.identical_per_window < 1:
            found.append("id_start and identical_per_window must be at least 1")
        return found


@dataclass(frozen=True, slots=True)
class CallDeskSettings:
    """Which numbers are handed out, what it costs, who is refused, and when subscribers call."""

    numbers: tuple[str, ...] = ("74950000101", "74950000102", "74950000103")
    cost: Decimal = Decimal("1.00")
    identical_per_window: int = WAIT_CALL_IDENTICAL_PER_WINDOW
    window_seconds: float = CALL_WINDOW_SECONDS
    # Phones on every login's blacklist from the start (type 0, all messages): phones.php
    # lists them and wait_call.php refuses them (error 5), as any phone added through it.
    blacklist: tuple[str, ...] = ()
    # Phones whose cost the account's settings leave unknown (error 6).
    refused_prefixes: tuple[str, ...] = ()
    # When set, every subscriber given a number calls it this long after (the simulator's
    # webhook caller reports it), except phones starting with one of ``silent_prefixes``.
    call_after_seconds: float | None = None
    silent_prefixes: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        found = [] if self.numbers else ["numbers must not be empty"]
        if self.identical_per_window < 1 or self.window_seconds <= 0 or self.cost < 0:
            found.append("identical_per_window, window_seconds and cost must be positive")
        if self.call_after_seconds is not None and self.call_after_seconds < 0:
            found.append("call_after_seconds must not be negative")
        return found
