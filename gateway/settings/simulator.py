"""Settings of the SMSC simulator, validated once when built.

Nothing here reads the environment: the composition root loads ``GATEWAY_SIMULATOR_*`` into
:class:`SimulatorSettings`. Defaults follow the provider's SMPP seed where it says something
(2-minute inactivity cut, decimal message ids, the delivery report TLVs, 30 SMS/s per
account, the duplicate and flood rules; see :mod:`gateway.simulator.rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from gateway.errors import ConfigError
from gateway.smpp.codec import DEFAULT_MAX_FRAME_SIZE
from gateway.smpp.constants import CommandStatus, MessageState

# How a long message is concatenated: the composition's split mode and reference width.
CONCAT_MODES: Mapping[str, tuple[str, int]] = MappingProxyType(
    {"udh8": ("udh", 8), "udh16": ("udh", 16), "sar": ("sar", 16), "payload": ("payload", 8)}
)
CODINGS: Mapping[str, str] = MappingProxyType(
    {"auto": "auto", "gsm": "gsm7", "latin1": "latin1", "ucs2": "ucs2", "binary": "binary"}
)

# The final ``stat:`` words of a receipt and the message_state TLV each one travels with
# (SMPP 3.4 appendix B and 5.2.28).
STAT_STATES: Mapping[str, MessageState] = MappingProxyType(
    {
        "ENROUTE": MessageState.ENROUTE,
        "DELIVRD": MessageState.DELIVERED,
        "EXPIRED": MessageState.EXPIRED,
        "DELETED": MessageState.DELETED,
        "UNDELIV": MessageState.UNDELIVERABLE,
        "ACCEPTD": MessageState.ACCEPTED,
        "UNKNOWN": MessageState.UNKNOWN,
        "REJECTD": MessageState.REJECTED,
    }
)

# Bind fields are C-Octet Strings of 16 (system_id) and 9 (password) octets with the NUL.
MAX_SYSTEM_ID = 15
MAX_PASSWORD = 8
# Vendor TLVs (seed, "Checking the status"): cost "n.nnnn" of at most 6 characters, mccmnc of
# at most 5; the sizes count characters, the terminating NUL comes on top.
MAX_COST = Decimal("9.9999")
MAX_MCCMNC = 5
MAX_ADDRESS = 20  # destination_addr is a C-Octet String of 21 octets with the NUL
MAX_STATUS = 0xFFFFFFFF  # command_status is a 4-octet integer


class DlrOutcome(NamedTuple):
    """One possible final status of a message: receipt ``stat``, ``err`` code, weight."""

    stat: str = "DELIVRD"
    err: int = 0
    weight: float = 1.0


def _default_accounts() -> Mapping[str, str]:
    return MappingProxyType({"gateway": "secret"})


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """What the simulator listens on, whom it lets in, and how it reports on messages.

    ``accounts`` maps system_id to password and never appears in ``repr``. Durations are in
    seconds; ``inactivity_timeout_seconds=None`` switches the inactivity cut off.
    ``seed=None`` seeds the outcome choice from the OS instead of reproducibly.

    Provider rules: ``rate_limit_per_second`` SMS parts per account (None: unlimited) with a
    burst of ``rate_burst_seconds`` worth of them (at least one); identical submits within
    ``duplicate_window_seconds`` (None: rule off) are refused with ``duplicate_status``; the
    message after ``flood_limit`` (None: rule off) to one destination, each less than
    ``flood_gap_seconds`` apart, is refused with ``flood_status``.

    Incoming SMS (queued by tests, or generated at ``incoming_rate_per_second`` per account
    with a receiving bind, 0: none) go to ``incoming_number``; a refused, unanswered or
    dropped one is delivered again after ``incoming_retry_seconds``. Generated messages are
    long with probability ``incoming_long_share``, in one of ``incoming_codings`` and, when
    long, concatenated one of the ``incoming_concat`` ways, parts out of order when
    ``incoming_shuffle`` (see :mod:`.incoming`).

    ``tls_port`` (None: no TLS, 0: any free port) adds a TLS listener with the PEM
    ``tls_cert_file`` and ``tls_key_file``. ``max_recorded_parts`` bounds the per-account
    record of when parts were accepted (0: counts only).

    ``http_api_*``: the HTTP API that ``smsc-gateway simulate`` serves beside SMPP, with the
    same accounts (port None: none, 0: any free port), see :mod:`.serve`.
    """

    host: str = "127.0.0.1"
    port: int = 0
    system_id: str = "SMSC"
    accounts: Mapping[str, str] = field(default_factory=_default_accounts, repr=False)
    window: int = 100
    response_timeout_seconds: float = 10.0
    inactivity_timeout_seconds: float | None = 120.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    stop_timeout_seconds: float = 5.0
    message_id_start: int = 100_000_001
    dlr_delay_seconds: float = 1.0
    dlr_retry_seconds: float = 5.0
    dlr_outcomes: tuple[DlrOutcome, ...] = (DlrOutcome(),)
    dlr_cost: Decimal = Decimal("1.95")
    dlr_mccmnc: str = "25001"
    seed: int | None = 0
    record_submits: bool = True
    max_recorded_submits: int = 100_000
    max_recorded_parts: int = 100_000
    rate_limit_per_second: float | None = 30.0
    rate_burst_seconds: float = 0.1
    duplicate_window_seconds: float | None = 60.0
    duplicate_status: int = int(CommandStatus.ESME_RSUBMITFAIL)
    flood_limit: int | None = 50
    flood_gap_seconds: float = 30.0
    flood_status: int = int(CommandStatus.ESME_RSUBMITFAIL)
    tls_port: int | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    incoming_retry_seconds: float = 5.0
    incoming_rate_per_second: float = 0.0
    incoming_number: str = "79001234567"
    incoming_long_share: float = 0.2
    incoming_codings: tuple[str, ...] = ("gsm", "latin1", "ucs2", "binary")
    incoming_concat: tuple[str, ...] = ("udh8", "udh16", "sar")
    incoming_shuffle: bool = True
    # The HTTP API beside SMPP in ``smsc-gateway simulate`` (:mod:`.serve`).
    http_api_port: int | None = 0
    http_api_webhook_url: str | None = field(default=None, repr=False)  # may carry a secret
    http_api_call_after_seconds: float | None = None
    http_api_incoming_rate_per_second: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", MappingProxyType(dict(self.accounts)))
        problems = [
            *self._network_problems(),
            *self._account_problems(),
            *self._timer_problems(),
            *self._dlr_problems(),
            *self._rule_problems(),
            *self._tls_problems(),
            *self._incoming_problems(),
            *self._http_api_problems(),
        ]
        if problems:
            raise ConfigError("invalid simulator config: " + "; ".join(problems))

    def _network_problems(self) -> list[str]:
        problems = []
        if not 0 <= self.port <= 0xFFFF:
            problems.append(f"port {self.port} is not 0..65535")
        if not 1 <= len(self.system_id) <= MAX_SYSTEM_ID:
            problems.append(f"system_id must be 1..{MAX_SYSTEM_ID} characters")
        if self.window < 1:
            problems.append("window must be at least 1")
        if self.max_frame_size < 1024:
            problems.append("max_frame_size must be at least 1024")
        if self.message_id_start < 0:
            problems.append("message_id_start must not be negative")
        if self.max_recorded_submits < 0 or self.max_recorded_parts < 0:
            problems.append("max_recorded_submits and max_recorded_parts must not be negative")
        return problems

    def _account_problems(self) -> list[str]:
        problems = []
        if not self.accounts:
            problems.append("accounts must not be empty")
        for system_id, password in self.accounts.items():
            if not 1 <= len(system_id) <= MAX_SYSTEM_ID or not system_id.isascii():
                problems.append(f"account {system_id!r}: system_id must be 1..15 ASCII characters")
            if len(password) > MAX_PASSWORD or not password.isascii():
                # The password itself is never quoted in the message.
                problems.append(f"account {system_id!r}: password must be 0..8 ASCII characters")
        return problems

    def _timer_problems(self) -> list[str]:
        timers = {
            "response_timeout_seconds": self.response_timeout_seconds,
            "stop_timeout_seconds": self.stop_timeout_seconds,
            "dlr_retry_seconds": self.dlr_retry_seconds,
            "inactivity_timeout_seconds": self.inactivity_timeout_seconds,
            "rate_limit_per_second": self.rate_limit_per_second,
            "rate_burst_seconds": self.rate_burst_seconds,
            "duplicate_window_seconds": self.duplicate_window_seconds,
            "flood_gap_seconds": self.flood_gap_seconds,
            "incoming_retry_seconds": self.incoming_retry_seconds,
        }
        problems = [
            f"{name} must be positive" for name, v in timers.items() if v is not None and v <= 0
        ]
        if self.dlr_delay_seconds < 0:
            problems.append("dlr_delay_seconds must not be negative")
        return problems

    def _dlr_problems(self) -> list[str]:
        problems = []
        if not self.dlr_outcomes or sum(o.weight for o in self.dlr_outcomes) <= 0:
            problems.append("dlr_outcomes needs at least one outcome with a positive weight")
        for outcome in self.dlr_outcomes:
            if outcome.stat not in STAT_STATES:
                problems.append(f"dlr_outcomes: unknown stat {outcome.stat!r}")
            if not 0 <= outcome.err <= 999 or outcome.weight < 0:
                problems.append(f"dlr_outcomes: {outcome} needs err 0..999 and weight >= 0")
        if not 0 <= self.dlr_cost <= MAX_COST:
            problems.append(f"dlr_cost must be 0..{MAX_COST} to fit the 6-character TLV")
        if not (self.dlr_mccmnc.isdigit() and len(self.dlr_mccmnc) <= MAX_MCCMNC):
            problems.append(f"dlr_mccmnc must be 1..{MAX_MCCMNC} digits")
        return problems

    def _rule_problems(self) -> list[str]:
        problems = [
            f"{name} must be an error status (1..0xFFFFFFFF)"
            for name, status in (
                ("duplicate_status", self.duplicate_status),
                ("flood_status", self.flood_status),
            )
            if not 0 < status <= MAX_STATUS
        ]
        if self.flood_limit is not None and self.flood_limit < 1:
            problems.append("flood_limit must be at least 1")
        return problems

    def _incoming_problems(self) -> list[str]:
        problems = []
        if self.incoming_rate_per_second < 0:
            problems.append("incoming_rate_per_second must not be negative")
        if not 1 <= len(self.incoming_number) <= MAX_ADDRESS or not self.incoming_number.isascii():
            problems.append("incoming_number must be 1..20 ASCII characters")
        if not 0 <= self.incoming_long_share <= 1:
            problems.append("incoming_long_share must be 0..1")
        codings = set(self.incoming_codings) - set(CODINGS)
        if codings or not self.incoming_codings:
            problems.append(f"incoming_codings: each one of {', '.join(CODINGS)}")
        modes = set(self.incoming_concat) - set(CONCAT_MODES)
        if modes or not self.incoming_concat:
            problems.append(f"incoming_concat: each one of {', '.join(CONCAT_MODES)}")
        return problems

    def _http_api_problems(self) -> list[str]:
        problems = []
        if self.http_api_port is not None and not 0 <= self.http_api_port <= 0xFFFF:
            problems.append(f"http_api_port {self.http_api_port} is not 0..65535")
        url = self.http_api_webhook_url
        if url is not None and not url.startswith(("http://", "https://")):
            problems.append("http_api_webhook_url must be an http:// or https:// URL")
        after = self.http_api_call_after_seconds
        if (after is not None and after < 0) or self.http_api_incoming_rate_per_second < 0:
            problems.append(
                "http_api_call_after_seconds and http_api_incoming_rate_per_second "
                "must not be negative"
            )
        return problems

    def _tls_problems(self) -> list[str]:
        if self.tls_port is None:
            return []
        problems = []
        if not 0 <= self.tls_port <= 0xFFFF:
            problems.append(f"tls_port {self.tls_port} is not 0..65535")
        if not (self.tls_cert_file and self.tls_key_file):
            problems.append("tls_port needs tls_cert_file and tls_key_file")
        return problems
