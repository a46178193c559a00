"""Settings of the webhook ingress (``GATEWAY_INGRESS_*``), checked by :meth:`problems`.

Nothing here reads the environment: ``gateway.settings`` loads the section like every other.
The defaults are valid to build (every role loads every section), but the ingress role
refuses to start while :meth:`IngressSettings.problems` names anything, and by default that
includes the missing secret: callbacks are refused unless signed.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DEFAULT_CHARSET = "windows-1251"
# Python's codec names of the three charsets the seed allows, to the names the seed uses.
_CHARSETS: Mapping[str, str] = MappingProxyType(
    {"cp1251": "windows-1251", "koi8-r": "koi8-r", "utf-8": "utf-8"}
)
_MAX_CHARSET_NAME = 32


def canonical_charset(name: str) -> str | None:
    """The seed's name of a supported charset (any alias Python knows), else ``None``."""
    if not name or len(name) > _MAX_CHARSET_NAME or not name.isascii():
        return None
    try:
        python_name = codecs.lookup(name.strip()).name
    except (LookupError, ValueError):
        return None
    return _CHARSETS.get(python_name)


UNSIGNED_POLICIES = ("reject", "accept")
EVENT_LOOPS = ("uvloop", "asyncio")
# Webhook seed: "You can use Latin letters, numbers, minus signs, and underscores as secret
# string characters". The path token is held to the same alphabet, so it is URL-safe.
_SECRET_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_PROBE_PATHS = ("/metrics", "/healthz", "/readyz")
MIN_BODY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """Where the ingress listens and which callbacks it believes.

    ``secret`` is the string after ``md5=``, ``sha1=`` or ``crc32=`` in the handler URL given
    to the provider; ``unsigned_policy`` says what happens to a callback without any of them
    (``reject``: 403, ``accept``: published). ``path_token``, when set, is a path segment the
    callback URL must end with. ``allowed_networks`` (CIDR) limits the peers; empty allows any.
    """

    host: str = "0.0.0.0"  # noqa: S104 - the provider calls in from outside the pod
    port: int = 8080
    path: str = "/smsc/callback"
    path_token: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    unsigned_policy: str = "reject"
    allowed_networks: tuple[str, ...] = ()
    max_body_bytes: int = 65536
    default_charset: str = "windows-1251"
    publish_timeout_seconds: float = 10.0
    # How long the producer waits to fill a batch. The provider waits for our answer, so
    # none: batches still form while the previous produce request is in flight.
    publish_linger_seconds: float = 0.0
    readiness_interval_seconds: float = 5.0
    drain_timeout_seconds: float = 10.0
    # A request must arrive whole this long after its first byte (else 408); an idle
    # keep-alive connection is closed after keepalive_timeout_seconds. Checked once a second.
    read_timeout_seconds: float = 30.0
    keepalive_timeout_seconds: float = 75.0
    # uvloop does the socket and timer work of every HTTP exchange and Kafka request in C
    # (libuv); asyncio's own loop is used when uvloop is not installed.
    event_loop: str = "uvloop"

    def problems(self) -> list[str]:
        """Everything wrong with these settings for running the ingress role."""
        return [*self._security_problems(), *self._http_problems(), *self._timer_problems()]

    def _security_problems(self) -> list[str]:
        found = []
        if self.unsigned_policy not in UNSIGNED_POLICIES:
            found.append(f"unsigned_policy must be one of {', '.join(UNSIGNED_POLICIES)}")
        if self.unsigned_policy == "reject" and not self.secret:
            found.append("secret is required while unsigned_policy is reject")
        if self.secret and not _SECRET_ALPHABET.match(self.secret):
            found.append("secret may hold only Latin letters, digits, '-' and '_'")
        if self.path_token and not _SECRET_ALPHABET.match(self.path_token):
            found.append("path_token may hold only Latin letters, digits, '-' and '_'")
        for network in self.allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                found.append(f"allowed_networks entry {network!r} is not a CIDR network")
        return found

    def _http_problems(self) -> list[str]:
        found = []
        if not 0 <= self.port <= 0xFFFF:
            found.append("port must be 0..65535")
        if not self.path.startswith("/") or any(c in self.path for c in "{}?#!"):
            found.append("path must start with '/' and hold none of { } ? # !")
        if self.path.rstrip("/") in _PROBE_PATHS:
            found.append(f"path must not be one of {', '.join(_PROBE_PATHS)}")
        if self.max_body_bytes < MIN_BODY_BYTES:
            found.append(f"max_body_bytes must be at least {MIN_BODY_BYTES}")
        if canonical_charset(self.default_charset) is None:
            found.append("default_charset must be windows-1251, koi8-r or utf-8")
        if self.event_loop not in EVENT_LOOPS:
            found.append(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        return found

    def _timer_problems(self) -> list[str]:
        timers = {
            "publish_timeout_seconds": self.publish_timeout_seconds,
            "readiness_interval_seconds": self.readiness_interval_seconds,
            "drain_timeout_seconds": self.drain_timeout_seconds,
            "read_timeout_seconds": self.read_timeout_seconds,
            "keepalive_timeout_seconds": self.keepalive_timeout_seconds,
        }
        found = [f"{name} must be positive" for name, value in timers.items() if value <= 0]
        if not 0 <= self.publish_linger_seconds <= 1:
            found.append("publish_linger_seconds must be 0..1")
        return found
