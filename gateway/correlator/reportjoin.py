"""The delivery-report join in faust: agent ``join``, tables ``parts`` and ``held``, a timer.

* agent ``join`` reads the route topic (stage 1's output, keyed by phone) and applies each
  record to the tables through :class:`~gateway.correlator.join.Correlator`; the step's status
  events and dead letters go out through the worker's :class:`StepOutputs`, which acks the
  event to faust once Kafka has them;
* the table writes happen while faust iterates the event, so faust writes each change to the
  changelog partition (and RocksDB partition) numbered like the event's route partition:
  that is how the tables stay co-partitioned with the route topic;
* a timer puts a tick record on every route partition this worker owns, so that expiry runs
  inside the stream too; it also updates the metrics, once per tick for everything the agent
  did since the last one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.types import EventT, StreamT

from gateway.events.dead_letter import Origin
from gateway.settings import Settings

from .join import Correlator, JoinSettings
from .metrics import CorrelatorMetrics, Tally
from .model import decode_entry, decode_held, encode_entry, encode_held
from .outputs import StepOutputs
from .records import InvalidInputError, Step, parse_route_records
from .tables import Changelog, TableStore

log = logging.getLogger(__name__)

TICK_RECORD = b'{"kind":"tick"}'


def bytes_table(app: faust.App, name: str, partitions: int) -> Any:
    """A table of raw bytes with ``partitions`` changelog partitions."""
    return app.Table(
        name,
        partitions=partitions,
        key_type=bytes,  # bytes types make faust use the raw codec for the changelog
        value_type=bytes,
    )


class ReportJoin:
    """Joins delivery reports to the parts of their requests; registers itself on ``app``."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        outputs: StepOutputs[EventT[Any]],
        metrics: CorrelatorMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        c = settings.correlator
        self._app = app
        self._outputs = outputs
        self._metrics = metrics
        self._clock = clock
        self._tally = Tally()
        self._changelog = Changelog(
            outputs.sends,
            generation=lambda: app.consumer_generation_id,
            actives=self._actives,
        )
        parts, held = (
            bytes_table(app, "parts", c.partitions),
            bytes_table(app, "held", c.partitions),
        )
        self.parts = TableStore(parts, encode_entry, decode_entry, self._changelog)
        self.held = TableStore(held, encode_held, decode_held, self._changelog)
        self.recovered = asyncio.Event()  # set once the tables are recovered and indexed
        # Once per recovery: faust has applied every table's changelog before calling it.
        self.parts.table.on_recover(self._on_recover)
        join = JoinSettings(c.hold_seconds, c.entry_ttl_seconds, c.done_ttl_seconds)
        self.correlator = Correlator(self.parts, self.held, join, started_at=clock())
        self._route_name = c.route_topic
        self._route = app.topic(c.route_topic, key_type=bytes, value_type=bytes)
        app.agent(self._route, name="join", concurrency=1)(self._agent)
        app.timer(c.tick_interval_seconds, name="tick")(self._tick)

    def _actives(self) -> set[Any]:
        """The partitions (changelogs' among them) this worker owns actively now: the
        assignor's answer changes at every rebalance."""
        return cast(set[Any], self._app.assignor.assigned_actives())

    @property
    def tables(self) -> list[Any]:
        return [self.parts.table, self.held.table]

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

    async def _agent(self, stream: StreamT[bytes]) -> None:
        # noack: an event is acked by the outputs once Kafka has what it produced, never by
        # faust when the iteration moves on or is cancelled. (noack is on the concrete Stream
        # only, not on the StreamT interface agents are typed with.)
        events = cast(Stream[bytes], stream).noack().events()
        outputs, changelog = self._outputs, self._changelog
        async for event in events:
            step = self._handle(event)
            self._tally.add(step)
            changes = changelog.take()
            settle = outputs.take(event, len(step.outbound) + len(changes))
            message = event.message
            await changelog.send(changes, message.partition, settle, message.generation_id)
            await outputs.publish(step, settle)
            await outputs.throttle()

    def _handle(self, event: EventT[bytes]) -> Step:
        """Apply every document of one route record, in order. What cannot be read, or makes
        our own code fail, is dead-lettered, so it never blocks its partition (and is never
        acked silently)."""
        message, now = event.message, self._clock()
        step = Step()
        try:
            items = parse_route_records(message.value)
        except InvalidInputError as exc:
            self._dead_letter(step, event, None, code=exc.code, reason=str(exc), at=now)
            return step
        for index, item in enumerate(items):
            if isinstance(item, InvalidInputError):
                self._dead_letter(step, event, index, code=item.code, reason=str(item), at=now)
                continue
            try:
                step.extend(self.correlator.handle(item, message.partition, now))
            except Exception as exc:
                log.exception("correlator failed on %s:%s", message.topic, message.partition)
                self._dead_letter(
                    step, event, index, code="internal_error", reason=repr(exc), at=now
                )
        return step

    @staticmethod
    def _dead_letter(
        step: Step, event: EventT[bytes], index: int | None, *, code: str, reason: str, at: float
    ) -> None:
        """The route record as it is, with the document that failed named in the origin."""
        message = event.message
        detail = None if index is None else f"document {index}"
        origin = Origin("kafka", message.topic, message.partition, message.offset, detail)
        step.dead_letter(origin, message.key, message.value, code=code, reason=reason, at=at)

    async def _tick(self) -> None:
        for tp in self._app.consumer.assignment():
            if tp.topic == self._route_name:
                self._route.send_soon(key=None, value=TICK_RECORD, partition=tp.partition)
        tally, self._tally = self._tally, Tally()
        self._metrics.observe(tally)
        self._report_sizes()

    def _report_sizes(self) -> None:
        self._metrics.sizes(self.correlator.part_count, self.correlator.held_count)
