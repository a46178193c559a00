"""The faust-streaming side of the correlator: the app, its outputs, and the joins on it.

faust owns what needs it: the tables, their changelogs and recovery, and which worker owns
which partition of them. Each join is a module of its own that registers its agent, tables
and timers on the app (:mod:`gateway.correlator.reportjoin` for delivery reports); they
share the app and the outputs.

Everything the worker produces goes through faust's producer, called directly rather than
through faust's per-record send path, and an event is acked to faust only once Kafka
acknowledged its outputs and table changes and those of every event before it
(:mod:`gateway.correlator.outputs`). faust commits acked offsets, after flushing its producer.
So a committed offset never passes an output or a table change that Kafka does not have.

Agents run with concurrency 1: with more, faust-streaming can commit an offset past a record
still being processed, which a crash then loses (faust-streaming/faust issue #606, "Wrong
offset commit in case of gaps", open; fix proposed in pull request #707).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import faust
from faust.types import EventT

from gateway.metrics import Metrics
from gateway.settings import KafkaSettings, Settings

from .metrics import CorrelatorMetrics
from .outputs import Sends, StepOutputs
from .records import Channel
from .reportjoin import ReportJoin

# As the gateway's other consumer groups (aiokafka's default); heartbeats every 3 s (faust's).
SESSION_TIMEOUT_SECONDS = 10.0
# aiokafka makes a send wait while its batch for the partition is full and in flight; small
# batches made that wait (an acks=all round trip) the bottleneck.
PRODUCER_MAX_BATCH_BYTES = 256 * 1024
# Every produce request costs the worker a socket write and its answer's handling (a tenth of
# its CPU at 5 ms); 20 ms makes fewer, fuller requests for 15 ms more per hop
# (docs/benchmarks.md).
PRODUCER_LINGER_SECONDS = 0.02


def app_options(settings: Settings) -> dict[str, Any]:
    """faust settings for the correlator: raw bytes everywhere, at-least-once, no web."""
    c = settings.correlator
    return {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka.bootstrap_servers.split(",")],
        "broker_client_id": settings.kafka.client_id,
        "broker_credentials": kafka_credentials(settings.kafka),
        "broker_commit_interval": c.commit_interval_seconds,
        "store": "rocksdb://" if c.store == "rocksdb" else "memory://",
        "datadir": c.data_dir,
        "topic_partitions": c.partitions,
        "topic_replication_factor": c.replication_factor,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "producer_max_batch_size": PRODUCER_MAX_BATCH_BYTES,
        "producer_linger": PRODUCER_LINGER_SECONDS,
        # faust would wait, at a rebalance and at stop, for every event it handed an agent to
        # be acked, with no bound: an event whose output Kafka refused is never acked (so that
        # no commit passes it), and the worker could then never stop. Without the wait, faust
        # commits what is acked; the events in flight are processed again after the move.
        "stream_wait_empty": False,
        "web_enabled": False,
        "autodiscover": False,
        # faust's default, 60 s, is how long the group waits for a worker that died before
        # giving its partitions to another (or to the same worker, restarted): a crashed
        # correlator was not ready for a minute while the sender (aiokafka's 10 s) worked.
        "broker_session_timeout": SESSION_TIMEOUT_SECONDS,
    }


def kafka_credentials(kafka: KafkaSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The gateway's Kafka security settings in faust's terms."""
    tls = ssl.create_default_context() if kafka.security_protocol.endswith("SSL") else None
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=tls,
        )
    return faust.SSLCredentials(tls) if tls is not None else None


def guard_acks(consumer: Any, current: Callable[[Any], bool]) -> None:
    """Make ``consumer`` (faust's) ignore the acks of messages ``current`` refuses.

    The agents ack through the outputs, but faust's stream acks, on its own and on a ``noack``
    stream too, every event it skips instead of handing it to the agent: one fetched before the
    last rebalance (its generation is not the consumer's), or one taken while a rebalance holds
    the flow. Such an event was never processed, and its offset among the acked ones lets
    faust's commit pass it: faust commits the first run of consecutive acked offsets, checking
    that run's start against the committed offset only when that offset is above 0, and even
    then letting one offset go missing (faust's ``Consumer._new_offset``); and an ack that
    comes between the revocation and the new assignment outlives faust's clearing of the
    acked offsets there. Were the worker then
    to die before it processes that event again, no worker would ever process it."""
    ack = consumer.ack

    def guarded(message: Any) -> bool:
        return bool(ack(message)) if current(message) else False

    consumer.ack = guarded


class CorrelatorApp:
    """The faust app of the correlator role with its joins; nothing started."""

    def __init__(
        self, settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.metrics = CorrelatorMetrics(metrics)
        self.app = faust.App(settings.correlator.app_id, **app_options(settings))
        self.sends = Sends(self.app.producer)
        topics = {
            Channel.STATUS: settings.topics.status,
            Channel.DEAD_LETTER: settings.topics.dead_letter,
        }
        self.outputs: StepOutputs[EventT[Any]] = StepOutputs(self.sends, topics, self._ack)
        self.reports = ReportJoin(self.app, settings, self.outputs, self.metrics, clock)

    def _ack(self, event: EventT[Any]) -> None:
        """Let faust commit past ``event``: Kafka has everything it produced.

        Not an event fetched before the last rebalance: faust sought every partition it
        assigned back to its committed offset, so that event is being processed again, and an
        ack from the previous assignment would only let a commit pass its new round.
        """
        if event.message.generation_id == self.app.consumer_generation_id:
            event.ack()

    @property
    def changelog_topics(self) -> list[str]:
        return [t.changelog_topic.get_topic_name() for t in self.reports.tables]

    @property
    def recovered(self) -> asyncio.Event:
        return self.reports.recovered

    @property
    def failed(self) -> asyncio.Event:
        """Set when an output could not be stored: nothing from it on is acked."""
        return self.outputs.acks.failed

    def _current(self, message: Any) -> bool:
        """Whether an ack of ``message`` may count: fetched in the consumer's generation, and
        not during a rebalance (from the revocation until the recovery ends, when faust holds
        the flow; the generation changes only midway)."""
        app = self.app
        return bool(message.generation_id == app.consumer_generation_id and not app.rebalancing)

    async def start(self) -> None:
        guard_acks(self.app.consumer, self._current)
        await self.app.start()

    async def stop(self) -> None:
        """Stop the agents, commit what is acked, flush and close the producer."""
        await self.app.stop()
