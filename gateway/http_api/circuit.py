"""Whether one credential may call the provider now: a circuit per credential.

- **open** after error 4 (IP blocked): nothing is sent for ``ip_block_seconds``, or
  ``ip_block_after_auth_seconds`` when an authorisation error came in that time before (the
  provider blocks for 30 minutes after 5 authorisation errors, 10 after other repeated
  errors; reference 3.3). Calling during a block would only prolong it.
- **open** after error 2 (wrong credentials or IP not allowed) for
  ``auth_error_pause_seconds``: repeating it would earn error 4.
- **parked** after error 3 (no money): sends wait ``funds_retry_seconds`` before the next
  try; status and balance queries go on. A send accepted again closes it.

No I/O and no clock of its own: every method takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

from enum import IntEnum

from gateway.settings.http_api import HttpApiSettings


class CircuitState(IntEnum):
    """The value of the ``smsc_http_circuit_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    PARKED = 2


class CredentialCircuit:
    """See the module docstring."""

    def __init__(self, settings: HttpApiSettings) -> None:
        self._settings = settings
        self._open_until = float("-inf")
        self._open_reason = ""
        self._parked_until = float("-inf")
        self._last_auth_error = float("-inf")

    def state(self, now: float) -> CircuitState:
        if now < self._open_until:
            return CircuitState.OPEN
        if now < self._parked_until:
            return CircuitState.PARKED
        return CircuitState.CLOSED

    def blocked(self, now: float) -> tuple[str, float] | None:
        """The reason and the seconds left while open; ``None`` when calls may go."""
        if now < self._open_until:
            return self._open_reason, self._open_until - now
        return None

    def parked_for(self, now: float) -> float:
        """Seconds until sends may be tried again (0 when not parked)."""
        return max(0.0, self._parked_until - now)

    def on_error(self, code: int, now: float) -> float | None:
        """Account for an ``error_code`` answer; returns how long the credential now waits."""
        settings = self._settings
        if code == 2:
            self._last_auth_error = now
            return self._open("authorisation_error", now, settings.auth_error_pause_seconds)
        if code == 4:
            recent_auth = now - self._last_auth_error < settings.ip_block_after_auth_seconds
            seconds = (
                settings.ip_block_after_auth_seconds if recent_auth else settings.ip_block_seconds
            )
            return self._open("ip_blocked", now, seconds)
        if code == 3:
            self._parked_until = now + settings.funds_retry_seconds
            return settings.funds_retry_seconds
        if code == 9:
            return settings.duplicate_backoff_seconds
        return None

    def on_send_accepted(self) -> None:
        """Money is there again: unpark."""
        self._parked_until = float("-inf")

    def _open(self, reason: str, now: float, seconds: float) -> float:
        self._open_until = max(self._open_until, now + seconds)
        self._open_reason = reason
        return self._open_until - now
