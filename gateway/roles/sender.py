"""``smsc-gateway sender``: builds every part of the sender role and runs them until told to
stop.

Shutdown drains in order: stop consuming, finish the in-flight window, unbind, answer the
DELIVER_SMs still being stored, stop the reassembler, flush the producer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Protocol

from gateway.compose import BindProfile, bind_flags
from gateway.compose.common import Composer
from gateway.errors import GatewayError
from gateway.http_api.client import SmscHttpClient
from gateway.http_api.metrics import HttpApiMetrics
from gateway.http_api.sending import HttpTransport
from gateway.inbound.publisher import DeliverSmPublisher
from gateway.inbound.reassembly_service import Reassembler
from gateway.kafka.batching import BatchingPublisher
from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.follow import TopicsReader
from gateway.kafka.health import keep_probed
from gateway.kafka.records import Partition
from gateway.metrics import Metrics
from gateway.roles.binds import delivering_binds
from gateway.roles.probes import Readiness, role_probes
from gateway.sender.dispatch import Dispatch
from gateway.sender.exposure import Exposure
from gateway.sender.guards import ProviderGuards
from gateway.sender.outcomes import KnownOutcomes
from gateway.sender.pacing import SubmitGate
from gateway.sender.ratelimit import AdaptiveRate
from gateway.sender.service import Sender
from gateway.sender.submission import Submission
from gateway.settings import Settings, SmppSettings, require_role
from gateway.shutdown import Shutdown, stop_when, unless_stopped, until_set
from gateway.smpp_io.smpp_pool import SmppPool

log = logging.getLogger(__name__)

# How long the sender waits to learn the recent outcomes before consuming anyway.
OUTCOMES_CATCH_UP_SECONDS = 120.0


class Stage(Protocol):
    """A part that runs until its ``stop`` is set (the reassembler of long incoming SMS)."""

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class SenderParts:
    """What :func:`build_sender` builds; nothing started. Tests and benchmarks may replace a
    part (``dataclasses.replace``) before :func:`serve_sender` runs them."""

    sender: Sender
    pool: SmppPool
    gate: SubmitGate
    follower: TopicsReader
    bulk: KafkaRecordSource
    urgent: KafkaRecordSource
    inbound: DeliverSmPublisher
    http_client: SmscHttpClient | None
    # Joins the parts of long incoming SMS that the binds stored.
    reassembler: Stage


def build_sender(
    settings: Settings,
    metrics: Metrics,
    publisher: BatchingPublisher,
    shutdown: Shutdown | None = None,
    *,
    http_metrics: HttpApiMetrics | None = None,
) -> SenderParts:
    """Every object of the sender role, wired; nothing started."""
    loop = asyncio.get_running_loop()
    inbound = DeliverSmPublisher(publisher, settings.topics, metrics, role="sender")
    binds = delivering_binds(
        settings.smpp, metrics, inbound, name="smpp", count=settings.smpp.binds
    )
    pool = SmppPool(binds, settings.smpp.response_timeout_seconds)
    gate = SubmitGate(AdaptiveRate(settings.rate, loop.time()), loop.time)
    submission = Submission(
        submitter=pool,
        gate=gate,
        guards=ProviderGuards(settings.guards),
        settings=settings.sender,
        metrics=metrics,
        account=settings.smpp.system_id,
        clock=loop.time,
    )
    outcomes = KnownOutcomes(settings.sender.idempotency_window_seconds)
    since_ms = int((time.time() - settings.sender.idempotency_window_seconds) * 1000)
    follower = TopicsReader(
        settings.kafka,
        [settings.topics.send_results],
        keys=outcomes.read,
        since_ms=since_ms,
    )
    http_client, http = _http_transport(settings, http_metrics or HttpApiMetrics(metrics))
    revoke: dict[str, Callable[[set[Partition]], Awaitable[None]]] = {}

    def source(lane: str, topic: str, group_id: str) -> KafkaRecordSource:
        async def on_revoked(partitions: set[Partition]) -> None:
            await revoke[lane](partitions)

        return KafkaRecordSource(
            settings.kafka,
            metrics,
            topics=[topic],
            group_id=group_id,
            on_revoked=on_revoked,
            claims=True,
            # Results another replica published before a rebalance are known before its
            # partitions' records are taken up here again.
            settle=follower.read_to_now,
        )

    group_id = settings.sender.group_id
    bulk = source("bulk", settings.topics.send, group_id)
    urgent = source("urgent", settings.topics.send_priority, f"{group_id}-priority")
    dispatch = Dispatch(
        submission=submission,
        # Submits not yet durable never exceed what the binds' windows hold on the wire.
        exposure=Exposure(settings.smpp.window * settings.smpp.binds),
        composer=Composer(settings.compose, bind_profile(settings.smpp)),
        http=http,
        default_transport=settings.sender.default_transport,
    )
    sender = Sender(
        bulk=bulk,
        urgent=urgent,
        publisher=publisher,
        outcomes=outcomes,
        dispatch=dispatch,
        settings=settings.sender,
        topics=settings.topics,
        metrics=metrics,
        shutdown=shutdown,
    )
    revoke.update(bulk=sender.bulk.on_revoked, urgent=sender.urgent.on_revoked)
    reassembler = Reassembler(settings, metrics, publisher, shutdown=sender.shutdown)
    return SenderParts(
        sender, pool, gate, follower, bulk, urgent, inbound, http_client, reassembler
    )


def bind_profile(smpp: SmppSettings) -> BindProfile:
    """What the bind fixes for every message: ISO flag, default sender, TON/NPI."""
    return BindProfile(
        iso="ISO" in bind_flags(smpp.system_type),
        default_source=smpp.source_addr,
        alphanumeric_ton=smpp.source_addr_ton,
        alphanumeric_npi=smpp.source_addr_npi,
        destination_ton=smpp.dest_addr_ton,
        destination_npi=smpp.dest_addr_npi,
    )


def _http_transport(
    settings: Settings, http_metrics: HttpApiMetrics
) -> tuple[SmscHttpClient | None, HttpTransport | None]:
    """The HTTP API transport when a credential is configured, else none."""
    api = settings.http_api
    if not (api.apikey or (api.login and api.password)):
        return None, None
    client = SmscHttpClient(api, http_metrics)
    return client, HttpTransport(client, api, http_metrics)


async def run_sender(
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    *,
    probes: Readiness | None = None,
    shutdown: Shutdown | None = None,
    http_metrics: HttpApiMetrics | None = None,
) -> None:
    """Run the sender role (with its binds' delivery reports) until ``stop`` is set."""
    require_role(settings, "sender")
    publisher = BatchingPublisher(settings.kafka, metrics)
    await publisher.start()
    parts = build_sender(settings, metrics, publisher, shutdown, http_metrics=http_metrics)
    await serve_sender(settings, metrics, stop, publisher, parts, probes=probes)


async def serve_sender(
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    publisher: BatchingPublisher,
    parts: SenderParts,
    *,
    probes: Readiness | None = None,
) -> None:
    """Run the parts of the sender role until ``stop`` is set; the producer (started) is
    flushed and closed last."""

    def ready() -> tuple[bool, str]:
        # Ready while a bind is up and Kafka takes the role's writes: results that cannot be
        # published mean no progress, whatever the binds do.
        kafka_ok, kafka = publisher.health.ready(time.monotonic())
        bound = parts.pool.bound
        return bound > 0 and kafka_ok, f"{bound} of {len(parts.pool.clients)} bound; {kafka}"

    http = settings.http
    async with role_probes((http.host, http.port), metrics, "sender", ready, shared=probes):
        await _run_sender(settings, metrics, stop, publisher, parts)
    log.info("sender stopped")


async def _run_sender(
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    publisher: BatchingPublisher,
    parts: SenderParts,
) -> None:
    # Parts of long incoming SMS stored by the binds are joined by the reassembler; it stops
    # last, after the binds' DELIVER_SMs were answered, and before the producer is closed.
    # Should it fail on its own, the role stops with its error (the binds would otherwise go
    # on storing parts that nothing joins until a restart).
    reassembly_stop, sending_stop = asyncio.Event(), asyncio.Event()
    failures: list[BaseException] = []
    try:
        async with asyncio.TaskGroup() as tasks:
            reassembling = tasks.create_task(
                _reassemble(parts.reassembler, reassembly_stop, sending_stop, failures),
                name="reassembler",
            )
            background = [
                tasks.create_task(_tolerated(what, work), name=what)
                for what, work in _background(settings, metrics, publisher, parts)
            ]
            background.append(tasks.create_task(stop_when(stop, sending_stop), name="stopping"))
            try:
                await _consume(parts, sending_stop)
            finally:
                await _close_sender(parts, publisher, background, reassembling, reassembly_stop)
    except* Exception as failed:
        # The parts' tasks keep their errors to themselves: this is the consumption's own,
        # raised as it came (a GatewayError ends the process with its message).
        raise failed.exceptions[0] from None
    if failures:
        raise ReassemblyFailedError(f"the reassembler failed: {failures[0]!r}") from failures[0]


def _background(
    settings: Settings, metrics: Metrics, publisher: BatchingPublisher, parts: SenderParts
) -> list[tuple[str, Coroutine[object, object, None]]]:
    """The parts that run beside the consumption until the closing steps cancel them."""
    return [
        ("smpp-pool", parts.pool.run()),
        ("outcomes-follower", parts.follower.run()),
        ("rate-reporter", _report_rate(parts.gate, metrics, settings.smpp.system_id)),
        ("kafka-prober", keep_probed(publisher)),
    ]


async def _reassemble(
    reassembler: Stage,
    stop: asyncio.Event,
    sending_stop: asyncio.Event,
    failures: list[BaseException],
) -> None:
    """Run the reassembler; an error it ends with on its own stops the sending."""
    try:
        await reassembler.run(stop)
    except Exception as exc:
        # Logged where it happened; its parts stay on Kafka for the next start.
        if not stop.is_set():
            failures.append(exc)
            sending_stop.set()


async def _tolerated(what: str, work: Coroutine[object, object, None]) -> None:
    """Run a background part of the role; its failure does not stop the sending (the
    readiness and the binds' own reconnects say what is wrong)."""
    try:
        await work
    except Exception:
        log.exception("sender: %s stopped on an error", what)


async def _close_sender(
    parts: SenderParts,
    publisher: BatchingPublisher,
    background: list[asyncio.Task[None]],
    reassembling: asyncio.Task[None],
    reassembly_stop: asyncio.Event,
) -> None:
    """The sender's closing steps, each given up at the close deadline."""
    shutdown = parts.sender.shutdown
    for task in background:
        task.cancel()
    await shutdown.step("background tasks", asyncio.gather(*background, return_exceptions=True))
    if parts.http_client is not None:
        await shutdown.step("closing the HTTP API client", parts.http_client.aclose())
    reassembly_stop.set()
    await shutdown.step("stopping the reassembler", reassembling)
    await shutdown.step("flushing and closing the producer", publisher.stop())


class ReassemblyFailedError(GatewayError):
    """The sender's reassembler of long incoming SMS stopped on an error; its parts wait on
    Kafka for the next start."""


async def _consume(parts: SenderParts, stop: asyncio.Event) -> None:
    try:
        if await _ready_to_consume(parts, stop):
            await parts.sender.run(stop)
    finally:
        shutdown = parts.sender.shutdown
        await shutdown.step("unbinding", parts.pool.stop())
        await shutdown.step("answering the deliver_sm being stored", parts.inbound.drain())
        await shutdown.step("closing the bulk consumer", parts.bulk.stop())
        await shutdown.step("closing the urgent consumer", parts.urgent.stop())


async def _ready_to_consume(parts: SenderParts, stop: asyncio.Event) -> bool:
    """Recent outcomes read (or given up on) and both consumers started; False if the stop
    came first (a broker that does not answer a start cannot hold a stop)."""
    caught_up = await until_set(stop, parts.follower.caught_up(), OUTCOMES_CATCH_UP_SECONDS)
    if stop.is_set():
        return False
    if not caught_up:
        log.warning("recent outcomes not fully read; redelivered requests may be sent again")
    return await unless_stopped(stop, parts.bulk.start()) and await unless_stopped(
        stop, parts.urgent.start()
    )


async def _report_rate(gate: SubmitGate, metrics: Metrics, account: str) -> None:
    gauge = metrics.rate_allowed.labels(account)
    while True:
        gauge.set(gate.current_rate())
        await asyncio.sleep(1.0)
