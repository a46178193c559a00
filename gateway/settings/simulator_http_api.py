"""Settings of the simulator's HTTP API (send, status, balance, get_answers, wait_call; the
account scripts' own in :mod:`.simulator_accounts`), checked when built.

Defaults are the provider's rules as reference/smsc-http-api.md records them: error 9 at 15
concurrent requests per login (5 for status.php), for an identical send within a minute,
above 5 status queries of one message or one multi-id query a minute, above 10 balance
queries a minute; error 4 after 5 authorisation errors in 30 minutes, for 30 minutes. Every
field has a type the settings loader reads, so the section can be loaded from
``GATEWAY_<SECTION>_*`` like the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from gateway.errors import ConfigError

from .simulator_accounts import AccountScriptsSettings
from .simulator_desk import CallDeskSettings, InboxSettings


class StatusOutcome(NamedTuple):
    """One possible final status of a message: status.php code, ``err``, weight."""

    status: int = 1
    err: int = 0
    weight: float = 1.0


def _accounts() -> Mapping[str, str]:
    return MappingProxyType({"gateway": "secret"})


def _no_keys() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HttpApiSimulatorSettings:
    """What the HTTP API listens on, whom it lets in and how it treats messages."""

    host: str = "127.0.0.1"
    port: int = 0
    # login -> password, and apikey -> login; neither appears in repr.
    accounts: Mapping[str, str] = field(default_factory=_accounts, repr=False)
    apikeys: Mapping[str, str] = field(default_factory=_no_keys, repr=False)
    balance: Decimal = Decimal("1000.00")
    sms_cost: Decimal = Decimal("1.95")
    currency: str = "RUR"
    message_id_start: int = 1
    # Accepted messages are "transferred to operator" (0) until their final status.
    status_delay_seconds: float = 1.0
    outcomes: tuple[StatusOutcome, ...] = (StatusOutcome(),)
    seed: int | None = 0
    # The provider's "a minute" for every per-minute rule.
    window_seconds: float = 60.0
    max_concurrent: int = 15
    max_concurrent_status: int = 5
    status_per_message: int = 5
    multi_status_per_window: int = 1
    balance_per_window: int = 10
    auth_failures_to_block: int = 5
    auth_failure_window_seconds: float = 1800.0
    block_seconds: float = 1800.0
    # How long every request holds its slot before it is answered.
    processing_seconds: float = 0.0
    # Registered sender ids (empty: any); other senders and these words get error 6.
    senders: tuple[str, ...] = ()
    denied_words: tuple[str, ...] = ("forbidden",)
    # Numbers that cannot be delivered to (error 8, or status 20 among others).
    undeliverable_prefixes: tuple[str, ...] = ("999",)
    max_text_chars: int = 1000
    # Status callbacks for messages sent over HTTP (the client's handler URL, as entered).
    webhook_url: str | None = None
    webhook_retry_seconds: float = 240.0
    webhook_max_attempts: int = 50
    # Incoming SMS and get.php?get_answers=1; wait_call.php and the subscribers' calls.
    inbox: InboxSettings = field(default_factory=InboxSettings)
    calls: CallDeskSettings = field(default_factory=CallDeskSettings)
    # receive_phones.php, downloads.php, phones.php.
    account: AccountScriptsSettings = field(default_factory=AccountScriptsSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", MappingProxyType(dict(self.accounts)))
        object.__setattr__(self, "apikeys", MappingProxyType(dict(self.apikeys)))
        problems = self._problems()
        if problems:
            raise ConfigError("invalid HTTP API simulator config: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        if not 0 <= self.port <= 0xFFFF:
            problems.append(f"port {self.port} is not 0..65535")
        if not self.accounts:
            problems.append("accounts must not be empty")
        unknown = sorted(set(self.apikeys.values()) - set(self.accounts))
        if unknown:
            problems.append(f"apikeys name unknown logins {unknown}")
        if not self.outcomes or sum(o.weight for o in self.outcomes) <= 0:
            problems.append("outcomes needs at least one with a positive weight")
        counts = (self.max_concurrent, self.max_concurrent_status, self.status_per_message)
        if min(counts) < 1 or self.balance_per_window < 1 or self.auth_failures_to_block < 1:
            problems.append("limits must be at least 1")
        timers = (self.window_seconds, self.auth_failure_window_seconds, self.block_seconds)
        if min(timers) <= 0 or self.status_delay_seconds < 0 or self.processing_seconds < 0:
            problems.append("durations must be positive")
        return problems + self.inbox.problems() + self.calls.problems()
