"""The ``receiver`` section."""

from __future__ import annotations

from dataclasses import dataclass


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
