"""Settings: the one place that reads the environment.

Every field of every section is read from ``GATEWAY_<SECTION>_<FIELD>`` (for example
``GATEWAY_SMPP_SYSTEM_ID``), parsed by its annotated type, and checked once at start; all
problems are reported together in one :class:`~gateway.errors.ConfigError`. Secrets are
excluded from ``repr``. Durations are float seconds named ``*_seconds``.

A ``GATEWAY_*`` variable that names no setting is a problem too (``GATEWAY_SMPP_WINDOWS=5``
would otherwise leave the window at its default without a word): the known names are derived
from the settings classes, so a new section or field is known as soon as it exists.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Union

from gateway.callconfirm.settings import CallConfirmSettings
from gateway.compose.settings import CompositionSettings
from gateway.correlator.settings import CorrelatorSettings
from gateway.errors import ConfigError
from gateway.http_api.settings import HttpApiSettings, PollerSettings
from gateway.inbound.settings import ReassemblySettings
from gateway.ingress.settings import IngressSettings
from gateway.optout.settings import OptOutSettings
from gateway.sender.guards import GuardSettings
from gateway.sender.ratelimit import RateSettings
from gateway.simulator.settings import SimulatorSettings


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "smsc-gateway"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    request_timeout_seconds: float = 30.0
    # How long a publish waits for Kafka's acknowledgement before it fails (and is retried
    # by its caller): the bound on every publish, also while Kafka is down.
    delivery_timeout_seconds: float = 60.0
    # How often clients refresh the cluster's metadata (partition leaders) unasked.
    metadata_max_age_seconds: float = 300.0

    def problems(self) -> list[str]:
        allowed = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        found = []
        if self.security_protocol not in allowed:
            found.append(f"security_protocol must be one of {', '.join(sorted(allowed))}")
        if self.request_timeout_seconds <= 0:
            found.append("request_timeout_seconds must be positive")
        if self.metadata_max_age_seconds <= 0:
            found.append("metadata_max_age_seconds must be positive")
        if self.delivery_timeout_seconds < self.request_timeout_seconds:
            found.append("delivery_timeout_seconds must be at least request_timeout_seconds")
        return found


@dataclass(frozen=True, slots=True)
class TopicSettings:
    send: str = "smsc.send.v1"
    send_priority: str = "smsc.send.priority.v1"
    send_results: str = "smsc.send-results.v1"
    dlr: str = "smsc.dlr.v1"
    status: str = "smsc.status.v1"
    incoming: str = "smsc.incoming.v1"
    # Internal: parts of concatenated incoming SMS, keyed by the sender's phone, until
    # reassembled into one smsc.incoming.v1 event.
    incoming_parts: str = "smsc.incoming-parts.v1"
    waitcall: str = "smsc.waitcall.v1"
    # Internal, compacted: how far the poller has published the provider's incoming SMS.
    poll_cursor: str = "smsc.poll-cursor.v1"
    # Requests to confirm a phone by call (smsc.call-confirm/1), keyed by phone.
    call_confirm: str = "smsc.call-confirm.v1"
    # Opt-outs by keyword (smsc.opt-out/1), keyed by phone.
    opt_out: str = "smsc.opt-out.v1"
    dead_letter: str = "smsc.dead-letter.v1"


@dataclass(frozen=True, slots=True)
class SmppSettings:
    # Primary first, then the backup (SMPP seed: smpp.smscentre.com, backup smpp2, port 3700).
    hosts: tuple[str, ...] = ("smpp.smscentre.com:3700", "smpp2.smscentre.com:3700")
    tls: bool = False
    # A CA bundle to trust for the provider's certificate (the system store otherwise).
    tls_ca_file: str | None = None
    # Binds per account in this process; the provider needs system_type MCONn with n at
    # least binds x replicas, or each new bind kicks an older one.
    binds: int = 1
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    window: int = 100
    response_timeout_seconds: float = 30.0
    # The provider cuts links idle for 2 minutes; a link check every 30 s stays well inside.
    enquire_link_interval_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    unbind_timeout_seconds: float = 10.0
    source_addr: str = ""
    # TON/NPI as in the provider's sample settings (SMPP seed, kannel format).
    source_addr_ton: int = 5
    source_addr_npi: int = 1
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    max_frame_size: int = 65536

    def problems(self) -> list[str]:
        found = [f"hosts entry {h!r} is not host:port" for h in self.hosts if not _hostport(h)]
        if not self.hosts:
            found.append("hosts is empty")
        if not self.system_id:
            found.append("system_id is required")
        if not 1 <= self.window <= 2000:
            found.append("window must be 1..2000")
        if not 1 <= self.binds <= 9:
            found.append("binds must be 1..9 (the provider's MCON1..MCON9)")
        if self.binds > 1 and "MCON" not in self.system_type.upper():
            found.append("binds above 1 need system_type MCONn, or binds kick each other")
        if not 0 < self.enquire_link_interval_seconds < 120:
            found.append("enquire_link_interval_seconds must be under the provider's 120 s")
        return found


@dataclass(frozen=True, slots=True)
class SenderSettings:
    group_id: str = "smsc-gateway-sender"
    max_in_flight: int = 1000
    fetch_max_records: int = 500
    commit_interval_seconds: float = 0.2
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # How long a temporary failure (link down, provider error) is retried before "failed".
    give_up_after_seconds: float = 600.0
    drain_timeout_seconds: float = 30.0
    # Request ids with a result in the last this-many seconds are never sent again.
    idempotency_window_seconds: float = 900.0
    # The transport of requests that say "auto": smpp, or http (over the provider's HTTP API,
    # falling back to SMPP while the HTTP credential is blocked or unfunded).
    default_transport: str = "smpp"

    def problems(self) -> list[str]:
        found = [] if self.max_in_flight >= 1 else ["max_in_flight must be at least 1"]
        if self.default_transport not in {"smpp", "http"}:
            found.append("default_transport must be smpp or http")
        return found


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """The ``receiver`` role: SMPP binds that only take DELIVER_SMs (credentials: ``smpp``)."""

    # Names this role in logs, bind labels and dead letters; set one per deployment when
    # several receiver deployments share a cluster.
    name: str = "receiver"
    binds: int = 1
    # receiver (bind_receiver), or transceiver for accounts that only deliver on one.
    bind_mode: str = "receiver"
    # Probes and metrics; not the sender's 9108, so both roles can run on one host.
    probe_port: int = 9109
    # How long a shutdown waits for DELIVER_SMs being stored to be answered.
    drain_timeout_seconds: float = 30.0

    def problems(self) -> list[str]:
        found = [] if 1 <= self.binds <= 9 else ["binds must be 1..9 (the provider's MCONn)"]
        if self.bind_mode not in {"receiver", "transceiver"}:
            found.append("bind_mode must be receiver or transceiver")
        if not 0 <= self.probe_port < 65536:
            found.append("probe_port must be 0..65535")
        return found


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = "0.0.0.0"  # noqa: S104 - probes and metrics must be reachable in a pod
    port: int = 9108


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"

    def problems(self) -> list[str]:
        levels = {"DEBUG", "INFO", "WARNING", "ERROR"}
        return [] if self.level.upper() in levels else [f"level must be one of {levels}"]


@dataclass(frozen=True, slots=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    smpp: SmppSettings = field(default_factory=SmppSettings)
    sender: SenderSettings = field(default_factory=SenderSettings)
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    reassembly: ReassemblySettings = field(default_factory=ReassemblySettings)
    rate: RateSettings = field(default_factory=RateSettings)
    guards: GuardSettings = field(default_factory=GuardSettings)
    compose: CompositionSettings = field(default_factory=CompositionSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    http_api: HttpApiSettings = field(default_factory=HttpApiSettings)
    poller: PollerSettings = field(default_factory=PollerSettings)
    ingress: IngressSettings = field(default_factory=IngressSettings)
    log: LogSettings = field(default_factory=LogSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    correlator: CorrelatorSettings = field(default_factory=CorrelatorSettings)
    call_confirm: CallConfirmSettings = field(default_factory=CallConfirmSettings)
    optout: OptOutSettings = field(default_factory=OptOutSettings)


def load_settings(environ: Mapping[str, str], *, roles: frozenset[str] = frozenset()) -> Settings:
    """Settings from ``environ``; raises ConfigError naming every problem at once.

    Section checks run only for the sections the given roles use (an ingress needs no SMPP
    credentials).
    """
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for section in dataclasses.fields(Settings):
        cls = typing.get_type_hints(Settings)[section.name]
        sections[section.name] = _load_section(section.name, cls, environ, problems)
    settings = Settings(**sections)
    problems += unknown_variable_problems(environ)
    problems += role_problems(settings, roles)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


# The settings sections each role needs: their checks run before it starts, all problems
# reported together. ``kafka`` and ``log`` are checked for every role. Within ``all`` the
# ingress and the poller start only when their own sections have no problems.
ALWAYS_CHECKED = frozenset({"kafka", "log"})
_SENDING = frozenset({"smpp", "sender", "rate", "guards"})
ROLE_SECTIONS: Mapping[str, frozenset[str]] = types.MappingProxyType(
    {
        "sender": _SENDING,
        "receiver": frozenset({"smpp", "receiver"}),
        "ingress": frozenset({"ingress"}),
        "correlator": frozenset({"correlator"}),
        "poller": frozenset({"http_api"}),
        "simulate": frozenset(),
        "all": _SENDING | {"correlator"},
    }
)


def role_problems(settings: Settings, roles: Collection[str]) -> list[str]:
    """What keeps these roles from starting: the problems of the sections they need."""
    names = ALWAYS_CHECKED.union(*(ROLE_SECTIONS[role] for role in roles if role in ROLE_SECTIONS))
    found = [
        f"GATEWAY_{name.upper()}: {problem}"
        for name in sorted(names)
        for problem in getattr(settings, name).problems()
    ]
    # More binds of one login than one need the provider's MCONn system type.
    several = settings.receiver.binds > 1
    if "receiver" in roles and several and "MCON" not in settings.smpp.system_type.upper():
        found.append("GATEWAY_RECEIVER: binds above 1 need GATEWAY_SMPP_SYSTEM_TYPE MCONn")
    return found


def require_role(settings: Settings, role: str) -> None:
    """Raise :class:`ConfigError` naming every problem that keeps ``role`` from starting."""
    problems = role_problems(settings, {role})
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


# Variables with the gateway's prefix that are read outside the settings: the local Kafka
# runner's jar cache (gateway.localkafka.fetching), used by the tests and the demo.
TOOLING_VARIABLES = frozenset({"GATEWAY_KAFKA_CACHE_DIR"})


def setting_names() -> dict[str, list[str]]:
    """Every ``GATEWAY_<SECTION>_<FIELD>`` the settings classes define, by section prefix."""
    hints = typing.get_type_hints(Settings)
    return {
        f"GATEWAY_{section.name.upper()}_": [
            f"GATEWAY_{section.name.upper()}_{item.name.upper()}"
            for item in dataclasses.fields(hints[section.name])
        ]
        for section in dataclasses.fields(Settings)
    }


def unknown_variable_problems(environ: Mapping[str, str]) -> list[str]:
    """One problem per ``GATEWAY_*`` variable that names no setting, with the known names."""
    sections = setting_names()
    known = {name for names in sections.values() for name in names} | TOOLING_VARIABLES
    unknown = sorted(k for k in environ if k.startswith("GATEWAY_") and k not in known)
    return [_unknown_problem(name, sections) for name in unknown]


def _unknown_problem(name: str, sections: dict[str, list[str]]) -> str:
    # The longest matching prefix: GATEWAY_HTTP_API_X belongs to http_api, not http.
    prefixes = [p for p in sorted(sections, key=len, reverse=True) if name.startswith(p)]
    candidates = sections[prefixes[0]] if prefixes else [p + "*" for p in sections]
    close = difflib.get_close_matches(name, candidates, n=1)
    hint = f" (did you mean {close[0]}?)" if close and prefixes else ""
    what = "known settings of this section" if prefixes else "known sections"
    return f"{name}: unknown setting{hint}; {what}: {', '.join(candidates)}"


def _load_section(
    name: str, cls: type[Any], environ: Mapping[str, str], problems: list[str]
) -> Any:
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        key = f"GATEWAY_{name.upper()}_{item.name.upper()}"
        if key not in environ:
            continue
        try:
            values[item.name] = _parse(hints[item.name], environ[key])
        except ValueError as exc:
            shown = "<redacted>" if item.repr is False else repr(environ[key])
            problems.append(f"{key}={shown}: {exc}")
    try:
        return cls(**values)
    except ConfigError as exc:  # a section that validates itself when built
        problems.append(f"GATEWAY_{name.upper()}: {exc}")
        return cls()


def _parse(hint: Any, raw: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if raw.strip() == "" else _parse(inner[0], raw)
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        return tuple(_parse_item(item_type, part) for part in parts)
    if origin in (Mapping, dict) or hint is Mapping:
        return types.MappingProxyType(_parse_mapping(raw))
    parser = _PARSERS.get(hint)
    if parser is None:
        raise ValueError(f"unsupported setting type {hint!r}")
    return parser(raw)


def _parse_item(item_type: Any, raw: str) -> Any:
    """One entry of a comma list; a NamedTuple entry is its fields separated by colons."""
    if isinstance(item_type, type) and issubclass(item_type, tuple):
        hints = typing.get_type_hints(item_type)
        values = raw.split(":")
        if len(values) > len(hints):
            raise ValueError(f"{raw!r} has more than {len(hints)} fields")
        return item_type(*(_parse(h, v) for h, v in zip(hints.values(), values, strict=False)))
    return _parse(item_type, raw)


def _parse_decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None
    if not value.is_finite():
        raise ValueError("expected a finite decimal number")
    return value


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _parse_mapping(raw: str) -> dict[str, str]:
    pairs = [part for part in raw.split(",") if part.strip()]
    if not all(":" in part for part in pairs):
        raise ValueError("expected key:value pairs separated by commas")
    return dict(tuple(part.strip().split(":", 1)) for part in pairs)  # type: ignore[misc]


_PARSERS: dict[Any, Callable[[str], Any]] = {
    str: str,
    int: int,
    float: float,
    bool: _parse_bool,
    Decimal: _parse_decimal,
}


def _hostport(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(host and sep and port.isdigit() and 0 < int(port) < 65536)
