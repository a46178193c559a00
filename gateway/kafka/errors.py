"""What a failed produce means: aiokafka's exceptions sorted into the gateway's error tree.

Three kinds, each with its own remedy:

- **refused for good** (:class:`~gateway.errors.KafkaRefusedError`, not retriable): the
  record (too large, malformed: :class:`~gateway.errors.KafkaRecordRefusedError`) or the
  topic itself (invalid name, no authorization, a protocol the brokers lack). Sending the
  same bytes again cannot succeed.
- **a broken idempotent sequence**: the broker refuses a producer whose sequence numbers have
  a gap (OutOfOrderSequenceNumber), whose id it forgot (UnknownProducerId) or that was
  fenced. Every later batch of that producer to the partition fails the same way, so the
  producer must be replaced; the record itself can be written by the next one
  (:class:`~gateway.errors.KafkaUnavailableError`).
- **everything else** is temporary (:class:`~gateway.errors.KafkaUnavailableError`).

Where a failure surfaces matters as much as its type. aiokafka stamps a batch with the
producer id and its partition's next sequence numbers when it takes the batch for sending
(``MessageAccumulator._pop_batch``); a batch failed after that, for whatever reason (an expiry
while its partition had no leader, a size refusal), leaves a gap that breaks the sequence.
So a failed *delivery* always calls for a new producer, while an exception from ``send()``
does only when it is the error that stopped the producer's sender task, which aiokafka
repeats to every later ``send()``.
"""

from __future__ import annotations

from aiokafka import errors as kafka

from gateway.errors import (
    GatewayError,
    KafkaRecordRefusedError,
    KafkaRefusedError,
    KafkaUnavailableError,
)

# The record can never be stored, whatever the producer or the broker's state.
RECORD_REFUSALS: tuple[type[BaseException], ...] = (
    kafka.MessageSizeTooLargeError,
    kafka.RecordListTooLargeError,
    kafka.RecordTooLargeError,
    kafka.CorruptRecordException,
    kafka.InvalidTimestampError,
)

# Nothing can be stored to the topic until the configuration (or the cluster) changes.
TOPIC_REFUSALS: tuple[type[BaseException], ...] = (
    kafka.InvalidTopicError,
    kafka.TopicAuthorizationFailedError,
    kafka.ClusterAuthorizationFailedError,
    kafka.UnsupportedVersionError,
    kafka.UnsupportedForMessageFormatError,
    kafka.InvalidRequiredAcksError,
    kafka.PolicyViolationError,
    kafka.IncompatibleBrokerVersion,
    kafka.UnsupportedCodecError,
    kafka.KafkaConfigurationError,
    kafka.AuthenticationFailedError,
    kafka.AuthenticationMethodNotSupported,
    kafka.SaslAuthenticationFailed,
    kafka.UnsupportedSaslMechanismError,
)

# What ``send()`` raises before the record was given a sequence number: the producer is fine.
SEND_REFUSALS_BEFORE_SEQUENCE: tuple[type[BaseException], ...] = (
    kafka.KafkaTimeoutError,  # no metadata in time, or the partition's queue stayed full
    kafka.MessageSizeTooLargeError,  # over max_request_size, checked by the client
    kafka.UnknownTopicOrPartitionError,  # the metadata wait ended without the topic
    kafka.TopicAuthorizationFailedError,
    kafka.ProducerClosed,
)


def publish_error(topic: str, problem: BaseException) -> GatewayError:
    """The gateway's error for a record ``topic`` could not take because of ``problem``."""
    if isinstance(problem, GatewayError):
        # A new instance for each caller: a shared one would collect every caller's traceback.
        return _caused(type(problem)(str(problem)), problem)
    message = f"publish to {topic} failed: {problem!r}"
    if isinstance(problem, RECORD_REFUSALS):
        return _caused(KafkaRecordRefusedError(message), problem)
    if isinstance(problem, TOPIC_REFUSALS):
        return _caused(KafkaRefusedError(message), problem)
    return _caused(KafkaUnavailableError(message), problem)


# What a consumer's fetch surfaces: aiokafka retries the passing troubles (a leader moving,
# a broker away) inside its fetcher, so what reaches ``getmany`` is one of these or a bug.
READ_REFUSALS: tuple[type[BaseException], ...] = (
    *TOPIC_REFUSALS,
    kafka.OffsetOutOfRangeError,  # no reset policy: the position is gone from the log
    kafka.CorruptRecordException,  # the checksum of a fetched batch does not hold
    kafka.GroupAuthorizationFailedError,
)


def read_error(topics: object, problem: BaseException) -> GatewayError:
    """The gateway's error for reading ``topics`` (their names, as the caller shows them)
    failing with ``problem``: refused for good when no retry can help (authorization, a
    position outside the log, a corrupt batch), otherwise Kafka unavailable."""
    message = f"reading {topics} failed: {problem!r}"
    if isinstance(problem, READ_REFUSALS):
        return _caused(KafkaRefusedError(message), problem)
    return _caused(KafkaUnavailableError(message), problem)


def send_breaks_producer(problem: BaseException) -> bool:
    """Whether an exception from ``send()``/``send_batch()`` means the producer is unusable
    (its sender task stopped on it) rather than that this one record was not taken."""
    return not isinstance(problem, SEND_REFUSALS_BEFORE_SEQUENCE)


def _caused(error: GatewayError, problem: BaseException) -> GatewayError:
    error.__cause__ = problem
    return error
