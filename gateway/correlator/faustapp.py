"""The faust-streaming adapter: two agents, two tables and a timer around the pure stages.

* agent ``route`` (stage 1) reads ``smsc.send-results.v1`` and ``smsc.dlr.v1`` and re-keys
  both by phone onto the route topic (:mod:`gateway.correlator.route`);
* agent ``join`` (stage 2) reads the route topic and keeps the ``parts`` and ``held`` tables
  (:mod:`gateway.correlator.join`), publishing to ``smsc.status.v1`` and the dead-letter topic;
* a timer puts a tick record on every route partition this worker owns, so that expiry runs
  inside the stream, where faust knows which changelog partition a table change belongs to.

At-least-once, as faust provides it: a record is acked once its iteration finished, and
offsets are committed only after the producer was flushed (changelog and outputs acked by
Kafka). Each iteration hands its outputs to faust with ``send_soon`` and never awaits, so a
shutdown cannot cancel it half-way (faust acks a record even when its iteration is cancelled
or raised). Both agents run with concurrency 1: with more, faust-streaming can commit an
offset past a record still being processed, which a crash then loses (faust-streaming/faust
issue #606, "Wrong offset commit in case of gaps", open; fix proposed in pull request #707).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import faust
from faust.types import EventT, StreamT

from gateway.config import KafkaSettings, Settings
from gateway.events.dead_letter import Origin
from gateway.events.envelope import dumps
from gateway.metrics import Metrics

from .join import Correlator, JoinSettings
from .metrics import CorrelatorMetrics
from .model import decode_entry, decode_held, encode_entry, encode_held
from .records import Channel, InvalidInputError, Step, parse_route_record
from .route import route_report, route_send_result

log = logging.getLogger(__name__)

V = TypeVar("V")
TICK_RECORD = b'{"kind":"tick"}'
# As the gateway's other consumer groups (aiokafka's default); heartbeats every 3 s (faust's).
SESSION_TIMEOUT_SECONDS = 10.0


class TableStore(Generic[V]):
    """A faust table of bytes seen as a :class:`~gateway.correlator.join.Store` of ``V``."""

    def __init__(
        self, table: Any, encode: Callable[[V], bytes], decode: Callable[[bytes], V]
    ) -> None:
        self._table = table
        self._encode = encode
        self._decode = decode

    def get(self, key: str) -> V | None:
        raw = self._table.get(key.encode())
        return None if raw is None else self._decode(raw)

    def put(self, key: str, value: V) -> None:
        self._table[key.encode()] = self._encode(value)

    def delete(self, key: str) -> None:
        with contextlib.suppress(KeyError):
            del self._table[key.encode()]

    def items(self) -> Iterator[tuple[str, V]]:
        for key, raw in self._table.items():
            yield key.decode(), self._decode(raw)


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
        # aiokafka makes a send wait while its batch for the partition is full and in flight;
        # small batches made that wait (an acks=all round trip) the bottleneck.
        "producer_max_batch_size": 256 * 1024,
        "producer_linger": 0.005,
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


class CorrelatorApp:
    """The faust app of the correlator role, wired to the pure stages; nothing started."""

    def __init__(
        self, settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        c, topics = settings.correlator, settings.topics
        self.settings = settings
        self.metrics = CorrelatorMetrics(metrics)
        self.app = faust.App(c.app_id, **app_options(settings))
        self.recovered = asyncio.Event()  # set once the tables are recovered and indexed
        self._clock = clock
        self._route_name = c.route_topic
        self._results_name = topics.send_results
        self.parts = TableStore(self._table("parts"), encode_entry, decode_entry)
        self.held = TableStore(self._table("held"), encode_held, decode_held)
        # Once per recovery: faust has applied every table's changelog before calling it.
        self.app.tables["parts"].on_recover(self._on_recover)
        join = JoinSettings(c.hold_seconds, c.entry_ttl_seconds, c.done_ttl_seconds)
        self.correlator = Correlator(self.parts, self.held, join, started_at=clock())
        self._topics = {
            Channel.ROUTE: self._topic(c.route_topic),
            Channel.STATUS: self._topic(topics.status),
            Channel.DEAD_LETTER: self._topic(topics.dead_letter),
        }
        inputs = self._topic(topics.send_results, topics.dlr)
        self.app.agent(inputs, name="route", concurrency=1)(self._route_agent)
        self.app.agent(self._topics[Channel.ROUTE], name="join", concurrency=1)(self._join_agent)
        self.app.timer(c.tick_interval_seconds, name="tick")(self._tick)

    @property
    def changelog_topics(self) -> list[str]:
        return [
            self.app.tables[name].changelog_topic.get_topic_name() for name in ("parts", "held")
        ]

    def _table(self, name: str) -> Any:
        return self.app.Table(
            name,
            partitions=self.settings.correlator.partitions,
            key_type=bytes,  # bytes types make faust use the raw codec for the changelog
            value_type=bytes,
        )

    def _topic(self, *names: str) -> Any:
        return self.app.topic(*names, key_type=bytes, value_type=bytes)

    async def _on_recover(self) -> None:
        started = time.perf_counter()
        self.correlator.rebuild(self.parts.items(), self.held.items(), recovered_at=self._clock())
        self.recovered.set()
        self._report_sizes()
        log.info(
            "tables recovered: %d parts, %d held reports, indexed in %.2f s",
            self.correlator.part_count,
            self.correlator.held_count,
            time.perf_counter() - started,
        )

    async def _route_agent(self, stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            self._publish(self._guarded(event, self._route))
            self.metrics.routed_from(event.message.topic).inc()

    async def _join_agent(self, stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            step = self._guarded(event, self._join)
            self._publish(step)
            self.metrics.observe(step)
            self._report_sizes()

    def _route(self, origin: Origin, event: EventT[bytes], now: float) -> Step:
        message = event.message
        if message.topic == self._results_name:
            return route_send_result(origin, message.key, message.value, now)
        return route_report(origin, message.key, message.value, now)

    def _join(self, origin: Origin, event: EventT[bytes], now: float) -> Step:
        message = event.message
        try:
            record = parse_route_record(message.value)
        except InvalidInputError as exc:
            step = Step()
            step.dead_letter(
                origin, message.key, message.value, code=exc.code, reason=str(exc), at=now
            )
            return step
        return self.correlator.handle(record, message.partition, now)

    def _guarded(
        self, event: EventT[bytes], handle: Callable[[Origin, EventT[bytes], float], Step]
    ) -> Step:
        """The task root of one record: a failure of our own dead-letters it, so it never
        blocks its partition (and is never acked silently)."""
        message, now = event.message, self._clock()
        origin = Origin("kafka", message.topic, message.partition, message.offset)
        try:
            return handle(origin, event, now)
        except Exception as exc:
            log.exception("correlator failed on %s:%s", message.topic, message.partition)
            step = Step()
            step.dead_letter(
                origin, message.key, message.value, code="internal_error", reason=repr(exc), at=now
            )
            return step

    def _publish(self, step: Step) -> None:
        for out in step.outbound:
            self._topics[out.channel].send_soon(key=out.key, value=dumps(out.document))

    async def _tick(self) -> None:
        route = self._topics[Channel.ROUTE]
        for tp in self.app.consumer.assignment():
            if tp.topic == self._route_name:
                route.send_soon(key=None, value=TICK_RECORD, partition=tp.partition)

    def _report_sizes(self) -> None:
        self.metrics.sizes(self.correlator.part_count, self.correlator.held_count)
