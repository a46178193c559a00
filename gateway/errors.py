"""The gateway's error tree.

Every error the gateway raises derives from :class:`GatewayError`. Each class says whether
trying again can help (``retriable``), so callers decide on retries from the type, never from
message text. Library exceptions are translated at the adapter that sees them
(``raise ... from exc``).
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises."""

    retriable: bool = False


class ConfigError(GatewayError):
    """The configuration is invalid; the message lists every problem found."""


class TransportError(GatewayError):
    """A connection to a peer failed or was lost; a new attempt may succeed.

    Every lost link is one of these, whatever the peer: the SMPP connection
    (``gateway.smpp.errors.ConnectionClosedError``), the provider's HTTP API
    (``gateway.http_api.errors.HttpTransportError``) and Kafka (:class:`KafkaUnavailableError`).
    """

    retriable = True


class KafkaUnavailableError(TransportError):
    """Kafka did not acknowledge a write or a commit in time."""


class KafkaRefusedError(GatewayError):
    """Kafka refused a write for a reason trying again cannot change: the topic's name or
    authorization, a protocol the brokers do not support. Nothing will be written to that
    topic until the configuration changes."""


class KafkaRecordRefusedError(KafkaRefusedError):
    """Kafka refused this one record for good (too large, malformed); other records of the
    same topic can still be written."""


class AbandonedError(GatewayError):
    """Shutdown came while a message was still being retried (over SMPP or the HTTP API); it
    stays uncommitted.

    Not retried here: the record is left for Kafka to deliver again after the restart.
    """
