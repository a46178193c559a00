"""Faults a test or a benchmark injects into a running simulator (``sim.faults``).

Every call takes effect at once, and must be made from the simulator's event loop:

- :meth:`Faults.drop_connections`: close every connection (or one system_id's) without an
  unbind, as a network cut would. Reports in flight on them go to the next receiver bind.
- :meth:`Faults.delay_responses`: answer binds, submit_sm and query_sm ``seconds`` late
  (0 turns it off). The message is judged when it arrives; only the answer waits.
  enquire_link and unbind are answered by the session at once, as before.
- :meth:`Faults.withhold_responses`: never answer submit_sm while on. By default a withheld
  submit is dropped unjudged, as if lost on the way in; with ``accept=True`` it is accepted
  (recorded, reported on) and only its answer is lost, so resending it makes a duplicate.
- :meth:`Faults.refuse_binds`: answer every bind with an error status and close, whatever the
  credentials (ESME_RBINDFAIL by default; ``None`` turns it off).
- :meth:`Faults.set_rate_limit`: change the rate limit of one account or of all.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.settings.simulator import MAX_STATUS
from gateway.smpp.constants import CommandStatus


class Faults:
    """The fault switches read by every connection, and the actions on the simulator."""

    def __init__(
        self,
        *,
        drop: Callable[[str | None], int],
        set_rate_limit: Callable[[float | None, str | None], None],
        rate_limit: Callable[[str], float | None],
    ) -> None:
        self._drop = drop
        self._set_rate_limit = set_rate_limit
        self._rate_limit = rate_limit
        self.response_delay_seconds = 0.0
        self.withholding = False
        self.withheld_accepted = False
        self.bind_refusal: int | None = None

    def drop_connections(self, system_id: str | None = None) -> int:
        """Close the connections of ``system_id`` (or all) now; returns how many."""
        return self._drop(system_id)

    def delay_responses(self, seconds: float) -> None:
        """Answer every later request ``seconds`` after it arrived (0: at once)."""
        if seconds < 0:
            raise ValueError("a response delay cannot be negative")
        self.response_delay_seconds = seconds

    def withhold_responses(self, on: bool = True, *, accept: bool = False) -> None:
        """Leave submit_sm unanswered while ``on``; ``accept`` still accepts them."""
        self.withholding = on
        self.withheld_accepted = accept

    def refuse_binds(self, status: int | None = CommandStatus.ESME_RBINDFAIL) -> None:
        """Refuse every bind with ``status`` from now on; ``None`` lets binds in again."""
        if status is not None and not 0 < status <= MAX_STATUS:
            raise ValueError("a bind refusal needs an error status")
        self.bind_refusal = status

    def set_rate_limit(self, per_second: float | None, system_id: str | None = None) -> None:
        """Allow ``per_second`` SMS parts (None: unlimited) to ``system_id`` or to every
        account (which also drops earlier per-account limits), from the next submit."""
        if per_second is not None and per_second <= 0:
            raise ValueError("a rate limit must be positive (or None for no limit)")
        self._set_rate_limit(per_second, system_id)

    def rate_limit(self, system_id: str) -> float | None:
        """The rate limit ``system_id`` has now."""
        return self._rate_limit(system_id)

    def clear(self) -> None:
        """Turn the delay, withholding and bind refusal off (rate limits stay as they are)."""
        self.delay_responses(0.0)
        self.withhold_responses(on=False)
        self.refuse_binds(None)
