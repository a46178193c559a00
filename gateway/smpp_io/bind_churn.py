"""Binds lost right after they were made: the sign of another connection on the same login.

The provider serves one connection per login unless ``system_type`` asks for MCONn, and a
bind beyond the allowed count closes the oldest one (SMPP seed, "Multiple connections"). Two
processes sharing a login, or replicas x binds above n, therefore knock each other off in
turn: every bind succeeds and is lost again within a reconnect delay. Nothing fails loudly
(each bind attempt is "ok"), so this policy counts binds that end soon after they started
and says when they keep doing so. Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

# A bind lost sooner than this after it was made counts as cut short. The provider's own
# inactivity cut comes after 2 minutes and the link check runs every 30 s, so a healthy bind
# lasts far longer; a knocked-off one lasts about one reconnect delay (seconds).
SHORT_BIND_SECONDS = 30.0
# Binds cut short in a row before the client says so at ERROR.
REPORT_AFTER = 3


@dataclass(frozen=True, slots=True)
class BindEnd:
    """What one lost bind means: cut short or not, the streak so far, whether to report it."""

    short: bool
    streak: int
    report: bool


class BindChurn:
    """Follows the lifetimes of one client's binds."""

    def __init__(
        self, short_seconds: float = SHORT_BIND_SECONDS, report_after: int = REPORT_AFTER
    ) -> None:
        self.short_seconds = short_seconds
        self._report_after = report_after
        self._streak = 0

    def lost(self, bound_at: float, now: float) -> BindEnd:
        """A bind made at ``bound_at`` was lost at ``now``."""
        if now - bound_at >= self.short_seconds:
            self._streak = 0
            return BindEnd(short=False, streak=0, report=False)
        self._streak += 1
        # Once the streak reaches the threshold, and again at every multiple of it.
        report = self._streak % self._report_after == 0
        return BindEnd(short=True, streak=self._streak, report=report)
