"""The ``kafka`` section (the brokers and the clients' bounds) and ``topics`` (every topic's
name)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
