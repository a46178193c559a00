"""The ``call_confirm`` settings section, ``GATEWAY_CALL_CONFIRM_<FIELD>``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class CallConfirmSettings:
    """Phone confirmation by call, run by the poller (docs/account.md)."""

    enabled: bool = True
    # The consumer group of smsc.call-confirm.v1.
    group_id: str = "smsc-gateway-call-confirm"
    # The subscriber must call within the provider's 15 minutes of the number being given
    # (webhook seed); a shorter deadline only makes sense in tests.
    deadline_seconds: float = 900.0
    # Expiry waits this long past the deadline for a call still on its way: the provider
    # tries a failed callback again 4 minutes later (webhook seed).
    grace_seconds: float = 300.0
    # smsc.waitcall.v1 is read back this far at start; ended requests are remembered as
    # long, so a request redelivered within it never gets a second number.
    history_seconds: float = 86400.0
    # Requests handled at once (wait_call.php calls are further bounded by the client).
    max_in_flight: int = 10
    # Temporary errors (no money, IP blocked, error 9, network) are retried this long,
    # backing off between the two durations, before the request ends "failed".
    give_up_after_seconds: float = 600.0
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    # How often expiry is checked.
    tick_seconds: float = 1.0

    def __post_init__(self) -> None:
        found = self.problems()
        if found:
            raise ConfigError("; ".join(found))

    def problems(self) -> list[str]:
        names = [f.name for f in dataclasses.fields(self) if f.name.endswith("_seconds")]
        found = [f"{name} must be positive" for name in names if getattr(self, name) <= 0]
        if self.max_in_flight < 1:
            found.append("max_in_flight must be at least 1")
        if self.history_seconds < self.deadline_seconds + self.grace_seconds:
            found.append("history_seconds must cover deadline_seconds + grace_seconds")
        return found
