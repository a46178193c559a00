"""The ``http_api`` (``GATEWAY_HTTP_API_*``) and ``poller`` (``GATEWAY_POLLER_*``) sections.

Values that are wrong whatever the role (a concurrency at or above the provider's limit, a
negative duration) raise :class:`~gateway.errors.ConfigError` when the section is built, so
the settings loader reports them with the rest. :meth:`HttpApiSettings.problems` adds what
only a role that calls the provider needs: a credential.

Limits from reference/smsc-http-api.md: send.php answers error 9 to 15 or more concurrent
requests per login (section 1.4; the seeds say the same of every script), status.php to 5 or
more concurrent, to more than 5 queries of one message or more than one multi-id query a
minute (2.6), balance.php to more than 10 queries a minute (3.1); get.php to more than 3
identical requests a minute (seed 001), wait_call.php to more than 50 (webhook seed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gateway.errors import ConfigError

# Error 9 at 15 concurrent requests per login (send.php and every other script).
PROVIDER_MAX_CONCURRENT = 15
# status.php: error 9 at 5 concurrent requests under one login.
PROVIDER_MAX_STATUS_CONCURRENT = 5
# status.php: error 9 above 5 queries of one message a minute.
PROVIDER_MAX_STATUS_PER_MESSAGE = 5
# balance.php: error 9 above 10 queries a minute.
PROVIDER_MAX_BALANCE_PER_MINUTE = 10
# get.php: error 9 above 3 identical requests a minute (seed 001).
PROVIDER_MAX_IDENTICAL_ANSWERS = 3
# wait_call.php: error 9 above 50 identical requests a minute (webhook seed).
PROVIDER_MAX_IDENTICAL_WAIT_CALLS = 50
TRANSPORTS = ("http", "smpp")


@dataclass(frozen=True, slots=True)
class HttpApiSettings:
    """One credential of the provider's HTTP API and how the gateway calls it."""

    # Primary first; transport failures move to the next (the provider documents www2; the
    # official libraries go on to www3..www5).
    base_urls: tuple[str, ...] = ("https://smsc.ru", "https://www2.smsc.ru")
    login: str = ""
    password: str = field(default="", repr=False)
    # Replaces login and password when set.
    apikey: str = field(default="", repr=False)
    # Sender name for requests without sender_id; none leaves the account's default.
    sender_id: str | None = None
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    write_timeout_seconds: float = 10.0
    pool_timeout_seconds: float = 30.0
    max_connections: int = 16
    keepalive_expiry_seconds: float = 30.0
    # A request whose GET address would be at most this long goes as GET, others as POST
    # (the official libraries switch at 2000). 0: always POST, so credentials never appear
    # in an address (proxy logs, httpx's own request log).
    get_max_url_chars: int = 0
    tls_verify: bool = True
    tls_ca_file: str | None = None
    # Attempts of one call on transport failures, rotating hosts, before giving up.
    transport_attempts: int = 5
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 8.0
    # Concurrent requests per login: send below 15, status below 5, one balance; together
    # below the provider's 15.
    send_concurrency: int = 10
    status_concurrency: int = 3
    # Requests at once to the account's other scripts (get.php, wait_call.php); every
    # request of any script also takes one of 14 slots per login, so together they stay
    # below the provider's 15.
    account_concurrency: int = 2
    # The provider's "per minute"; tests shrink it together with the simulator's.
    limit_window_seconds: float = 60.0
    # get.php?get_answers: identical requests per window (provider: error 9 above 3).
    answers_identical_per_window: int = 2
    # wait_call.php: requests for one phone per window (provider: error 9 above 50).
    wait_call_per_phone_per_window: int = 40
    # The account's time zone as hours from UTC: the provider writes its dates in it
    # (get.php's received and sent). Moscow's +3 unless the account was set otherwise.
    account_utc_offset_hours: float = 3.0
    balance_per_window: int = 6
    status_per_message_per_window: int = 4
    # Error 9 on a send: back off from this, doubling up to the max (an identical request is
    # refused for a minute).
    duplicate_backoff_seconds: float = 60.0
    duplicate_backoff_max_seconds: float = 300.0
    # After a send that may have been processed (a timeout), wait this long before asking
    # status.php whether it was, so a request still in the provider's hands can settle.
    settle_seconds: float = 2.0
    # Error 4: the IP is blocked for 10 minutes, 30 after repeated authorisation errors
    # (reference 3.3); the credential's circuit stays open that long.
    ip_block_seconds: float = 600.0
    ip_block_after_auth_seconds: float = 1800.0
    # Error 2: pause the credential, so repeating it does not earn error 4 (5 in 30 min).
    auth_error_pause_seconds: float = 600.0
    # Error 3: sends are parked and tried again every this many seconds, until the max.
    funds_retry_seconds: float = 300.0
    funds_park_max_seconds: float = 3600.0
    # A request still unresolved after this long (temporary errors) ends "failed".
    give_up_after_seconds: float = 600.0
    # send.php: "mes" is at most 1000 characters (reference 1.1).
    max_text_chars: int = 1000

    def __post_init__(self) -> None:
        found = self._value_problems()
        if found:
            raise ConfigError("; ".join(found))

    def problems(self) -> list[str]:
        """Everything wrong for a role that calls the provider."""
        found = self._value_problems()
        if not self.apikey and not (self.login and self.password):
            found.append("set apikey, or login and password")
        return found

    def _value_problems(self) -> list[str]:
        found = [
            f"base_urls entry {u!r} is not http(s)://host" for u in self.base_urls if not _url(u)
        ]
        if not self.base_urls:
            found.append("base_urls is empty")
        if not 1 <= self.send_concurrency < PROVIDER_MAX_CONCURRENT:
            found.append(f"send_concurrency must be 1..{PROVIDER_MAX_CONCURRENT - 1}")
        if not 1 <= self.status_concurrency < PROVIDER_MAX_STATUS_CONCURRENT:
            found.append(f"status_concurrency must be 1..{PROVIDER_MAX_STATUS_CONCURRENT - 1}")
        if self.send_concurrency + self.status_concurrency + 1 >= PROVIDER_MAX_CONCURRENT:
            found.append("send_concurrency + status_concurrency + 1 (balance) must stay below 15")
        if not 1 <= self.balance_per_window < PROVIDER_MAX_BALANCE_PER_MINUTE:
            found.append(f"balance_per_window must be 1..{PROVIDER_MAX_BALANCE_PER_MINUTE - 1}")
        if not 1 <= self.status_per_message_per_window < PROVIDER_MAX_STATUS_PER_MESSAGE:
            found.append("status_per_message_per_window must be 1..4")
        if not 1 <= self.account_concurrency < PROVIDER_MAX_CONCURRENT:
            found.append(f"account_concurrency must be 1..{PROVIDER_MAX_CONCURRENT - 1}")
        if not 1 <= self.answers_identical_per_window < PROVIDER_MAX_IDENTICAL_ANSWERS:
            top = PROVIDER_MAX_IDENTICAL_ANSWERS - 1
            found.append(f"answers_identical_per_window must be 1..{top}")
        if not 1 <= self.wait_call_per_phone_per_window < PROVIDER_MAX_IDENTICAL_WAIT_CALLS:
            top = PROVIDER_MAX_IDENTICAL_WAIT_CALLS - 1
            found.append(f"wait_call_per_phone_per_window must be 1..{top}")
        if not -12 <= self.account_utc_offset_hours <= 14:
            found.append("account_utc_offset_hours must be -12..14")
        if self.transport_attempts < 1 or self.max_connections < 1 or self.max_text_chars < 1:
            found.append("transport_attempts, max_connections, max_text_chars must be positive")
        if self.get_max_url_chars < 0:
            found.append("get_max_url_chars must not be negative")
        return found + _negative_durations(self)


@dataclass(frozen=True, slots=True)
class PollerSettings:
    """Reconciliation: status queries for messages without a final report, the balance, and
    incoming SMS by polling."""

    # A message is queried once it has had no final report for this long...
    min_age_seconds: float = 900.0
    # ...then again every this many seconds while its status is not final...
    repoll_seconds: float = 1800.0
    # ...and forgotten this long after it was accepted (also how far back the topics are
    # read at start).
    max_age_seconds: float = 172800.0
    # One multi-id status query per interval: the provider allows one a minute.
    interval_seconds: float = 61.0
    batch_size: int = 100
    # Bounds the memory of the pending set (about 250 bytes an entry); beyond it the
    # longest-polled entries are dropped first.
    max_pending: int = 100000
    # Final reports remembered, so a result read after its final report is not polled.
    remember_final: int = 100000
    # Results of these transports are reconciled (the provider's ids are the same on both,
    # but the SMPP simulator's are not the HTTP simulator's).
    transports: tuple[str, ...] = ("http",)
    balance_interval_seconds: float = 60.0
    # Incoming SMS by get.php?get_answers=1 (docs/account.md): asked every interval (at once
    # again after a full page), up to ``incoming_batch`` (the provider's cnt, at most 10000)
    # for the last ``incoming_hours`` (at most 168), to one number when set.
    incoming_enabled: bool = True
    incoming_interval_seconds: float = 30.0
    incoming_batch: int = 1000
    incoming_hours: int = 168
    incoming_to_phone: str | None = None
    # The compacted topic of the poll cursor is created with this replication when missing
    # (at most the brokers there are).
    cursor_replication_factor: int = 3

    def __post_init__(self) -> None:
        found = self.problems()
        if found:
            raise ConfigError("; ".join(found))

    def problems(self) -> list[str]:
        found = [
            f"transports: {t!r} is not http or smpp" for t in self.transports if t not in TRANSPORTS
        ]
        if not 1 <= self.batch_size <= 1000:
            found.append("batch_size must be 1..1000")
        if self.max_pending < 1 or self.remember_final < 0:
            found.append("max_pending must be positive and remember_final not negative")
        if self.max_age_seconds < self.min_age_seconds:
            found.append("max_age_seconds must be at least min_age_seconds")
        if not 1 <= self.incoming_batch <= 10000 or not 1 <= self.incoming_hours <= 168:
            found.append("incoming_batch must be 1..10000 and incoming_hours 1..168")
        if self.cursor_replication_factor < 1:
            found.append("cursor_replication_factor must be at least 1")
        return found + _negative_durations(self)


def _negative_durations(section: HttpApiSettings | PollerSettings) -> list[str]:
    names = [f.name for f in dataclasses.fields(section) if f.name.endswith("_seconds")]
    return [f"{name} must be positive" for name in names if getattr(section, name) <= 0]


def _url(value: str) -> bool:
    scheme, sep, rest = value.partition("://")
    return scheme in {"http", "https"} and bool(sep) and bool(rest) and "?" not in rest
