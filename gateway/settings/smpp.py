"""The ``smpp`` section: the provider's SMPP hosts, the login and the binds' timers."""

from __future__ import annotations

from dataclasses import dataclass, field


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


def _hostport(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(host and sep and port.isdigit() and 0 < int(port) < 65536)
