"""The gateway's settings as one whole, and the one place that reads them from the environment.

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
from enum import StrEnum
from typing import Any, Union

from gateway.errors import ConfigError
from gateway.settings.callconfirm import CallConfirmSettings
from gateway.settings.composition import CompositionSettings
from gateway.settings.correlator import CorrelatorSettings
from gateway.settings.http_api import HttpApiSettings, PollerSettings
from gateway.settings.ingress import IngressSettings
from gateway.settings.kafka import KafkaSettings, TopicSettings
from gateway.settings.optout import OptOutSettings
from gateway.settings.process import HttpSettings, LogSettings
from gateway.settings.reassembly import ReassemblySettings
from gateway.settings.receiver import ReceiverSettings
from gateway.settings.sender import GuardSettings, RateSettings, SenderSettings
from gateway.settings.simulator import SimulatorSettings
from gateway.settings.smpp import SmppSettings


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
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return _parse_choice(hint, raw)
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


def _parse_choice(enum: type[StrEnum], raw: str) -> StrEnum:
    try:
        return enum(raw)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(enum)}") from None


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
