"""DELIVER_SM benchmark: a lean SMSC -> ``smsc-gateway receiver`` -> acknowledged Kafka events.

The SMSC is this script's own asyncio server: it accepts the receiver's bind and streams
pre-encoded DELIVER_SMs (a mix of delivery reports with the provider's vendor TLVs, HLR
results and incoming SMS in GSM 7-bit and UCS2) with at most ``window`` unanswered, patching
only the sequence number of each, so the load generator costs little. The receiver runs as
its own process, so its CPU is its own. Each DELIVER_SM is answered by the receiver only once
Kafka acknowledged its event (idempotent producer, acks=all); the benchmark counts ESME_ROK
answers and sends again whatever was answered otherwise.

Measured from the moment 10 % of the PDUs are answered ESME_ROK to the moment all are, so
process start and the bind are left out:

- throughput: DELIVER_SMs answered ESME_ROK per second;
- CPU: microseconds of the receiver process's CPU time (user + system, from /proc) per PDU;
- latency: p50 and p99 from a DELIVER_SM written to its deliver_sm_resp read.

Afterwards every event is read back from Kafka and checked: each report's message id and each
incoming text is there.

With ``--publisher-rounds N`` (default 2) it then compares, inside this process and against
the same broker, the ways :class:`~gateway.inbound.publisher.DeliverSmPublisher` can hand
events to Kafka: a task per record awaiting its own ``send()`` (the fallback for publishers
without ``enqueue``); pipelined over ``send()`` (one pump task hands records over in order,
each PDU answered from its record's acknowledgement callback); and pipelined into
:class:`~gateway.kafka.batching.BatchingPublisher`'s per-partition batches, which is what the
receiver role runs. The variants alternate, N rounds each, so drift on the shared machine
hits them alike.

Run: ``.venv/bin/python bench/deliver_sm.py [--count N] [--windows 100,1000] [--profile P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import struct
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port
from gateway.errors import GatewayError
from gateway.inbound.publisher import Acked, DeliverSmPublisher
from gateway.kafka.batching import BatchingPublisher
from gateway.kafka.client import KafkaPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings, TopicSettings
from gateway.smpp import codec
from gateway.smpp.constants import CommandId, EsmClass, TlvTag
from gateway.smpp.pdu import BindReceiverResp, DeliverSm, Tlv, tlv_cstr, tlv_u8, tlv_u16

HEADER = struct.Struct(">IIII")
STATS = ("DELIVRD", "DELIVRD", "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ENROUTE")
ERRS = (0, 0, 0, 1, 6, 246, 255)


@dataclass
class Row:
    window: int
    count: int
    per_second: float
    cpu_us_per_pdu: float
    broker_cpu_us_per_pdu: float
    load_generator_cpu_us_per_pdu: float
    p50_ms: float
    p99_ms: float
    refused: int


# -- the traffic ---------------------------------------------------------------------------


def report(i: int, run: str) -> DeliverSm:
    """A delivery report as the provider sends it (SMPP seed), or every tenth an HLR result."""
    message_id = str(10_000_000 + i)
    stat, err = STATS[i % len(STATS)], ERRS[i % len(ERRS)]
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2611220512 done date:2611220513 "
        f"stat:{stat} err:{err:03d}"
    )
    flags = 0
    if i % 10 == 9:
        text = (
            f"id:{message_id} stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 "
            "mcc:250 mnc:02 cn:Russian+Federation net:MegaFON rcn: rnet:"
        )
        flags = 4
    return DeliverSm(
        source_addr=f"7903{i:07d}",
        destination_addr=run,
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=text.encode(),
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, message_id),
            tlv_u8(TlvTag.MESSAGE_STATE, 2),
            Tlv(TlvTag.NETWORK_ERROR_CODE, bytes([3]) + err.to_bytes(2, "big")),
            tlv_cstr(TlvTag.SMSC_COST, "1.50"),
            tlv_u16(TlvTag.SMSC_FLAGS, flags),
            tlv_u16(TlvTag.SMSC_PARTS, 1),
            tlv_cstr(TlvTag.SMSC_MCCMNC, "25002"),
        ),
    )


def incoming(i: int, run: str) -> DeliverSm:
    text = f"bench {run} {i} reply"
    if i % 2:
        return DeliverSm(
            source_addr=f"7904{i:07d}",
            destination_addr=run,
            data_coding=8,
            short_message=f"{text} привет".encode("utf-16-be"),
        )
    return DeliverSm(source_addr=f"7904{i:07d}", destination_addr=run, short_message=text.encode())


def traffic(count: int, run: str) -> list[bytes]:
    """Encoded PDUs: four reports (one in ten of them an HLR result) for each incoming SMS."""
    return [codec.encode(incoming(i, run) if i % 5 == 4 else report(i, run)) for i in range(count)]


# -- the lean SMSC -------------------------------------------------------------------------


class LeanSmsc(asyncio.Protocol):
    """Answers one bind, then keeps ``window`` DELIVER_SMs in flight until all are acked."""

    def __init__(self, pdus: list[bytes], window: int) -> None:
        self.pdus = pdus
        self.window = window
        self.next_index = 0
        self.redo: list[int] = []
        self.sent_at: dict[int, tuple[int, float]] = {}
        self.acked_at: list[float] = []
        self.latencies: list[float] = []
        self.refused = 0
        loop = asyncio.get_running_loop()
        self.warmed: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.buffer = bytearray()
        self.sequence = 0
        self.bound = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < length:
                break
            frame = bytes(self.buffer[:length])
            del self.buffer[:length]
            self.on_frame(frame, command_id, status, sequence)
        self.fill()

    def on_frame(self, frame: bytes, command_id: int, status: int, sequence: int) -> None:
        assert self.transport is not None
        if command_id == CommandId.DELIVER_SM_RESP:
            index, sent = self.sent_at.pop(sequence)
            now = time.perf_counter()
            if status == 0:
                self.acked_at.append(now)
                self.latencies.append(now - sent)
            else:
                self.refused += 1
                self.redo.append(index)
            acked = len(self.acked_at)
            if acked >= len(self.pdus) // 10 and not self.warmed.done():
                self.warmed.set_result(None)
            if acked == len(self.pdus) and not self.done.done():
                self.done.set_result(None)
        elif command_id in (CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER):
            response = dataclasses.replace(
                BindReceiverResp(system_id="bench"), sequence_number=sequence
            )
            resp = bytearray(codec.encode(response))
            struct.pack_into(">I", resp, 4, command_id | 0x80000000)
            self.transport.write(bytes(resp))
            self.bound = True
        elif command_id in (CommandId.ENQUIRE_LINK, CommandId.UNBIND):
            self.transport.write(HEADER.pack(16, command_id | 0x80000000, 0, sequence))

    def fill(self) -> None:
        if self.transport is None or not self.bound:
            return
        out = bytearray()
        now = time.perf_counter()
        while len(self.sent_at) < self.window:
            if self.redo:
                index = self.redo.pop()
            elif self.next_index < len(self.pdus):
                index = self.next_index
                self.next_index += 1
            else:
                break
            self.sequence += 1
            start = len(out)
            out += self.pdus[index]
            struct.pack_into(">I", out, start + 12, self.sequence)
            self.sent_at[self.sequence] = (index, now)
        if out:
            self.transport.write(bytes(out))


# -- one run -------------------------------------------------------------------------------


async def read_back(bootstrap: str, topics: TopicSettings, count: int) -> tuple[int, int, int]:
    """(report ids, incoming texts, events) found on the topics, waiting until all are there."""
    consumer = AIOKafkaConsumer(
        topics.dlr, topics.incoming, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    ids: set[str] = set()
    texts: set[str] = set()
    events = 0
    deadline = time.monotonic() + 60
    want_incoming = count // 5
    try:
        while len(ids) + len(texts) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                events += 1
                if event["schema"] == "smsc.dlr/1":
                    ids.add(event["message_id"])
                else:
                    texts.add(event["text"])
    finally:
        await consumer.stop()
    assert len(texts) == want_incoming, f"{len(texts)} of {want_incoming} incoming texts"
    return len(ids), len(texts), events


async def one_window(
    kafka: LocalKafka, window: int, pdus: list[bytes], profile: str | None, run: str
) -> Row:
    suffix = f"{run}.w{window}"
    topics = TopicSettings(
        **{f.name: f"bench.{f.name}.{suffix}" for f in dataclasses.fields(TopicSettings)}
    )
    kafka.create_topics([getattr(topics, f.name) for f in dataclasses.fields(topics)], partitions=3)
    smsc = LeanSmsc(pdus, window)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        f"GATEWAY_TOPICS_{f.name.upper()}": getattr(topics, f.name)
        for f in dataclasses.fields(topics)
    }
    env |= {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_SMPP_HOSTS": f"127.0.0.1:{port}",
        "GATEWAY_SMPP_SYSTEM_ID": "gateway",
        "GATEWAY_SMPP_PASSWORD": "bench",
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_RECEIVER_PROBE_PORT": str(free_port()),
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    profiler = ["-m", "cProfile", "-o", f"{profile}.w{window}"] if profile else []
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, *profiler, "-m", "gateway", "receiver", env=env
    )
    try:
        assert kafka.pid is not None
        row = await measure(smsc, window, receiver.pid, kafka.pid)
    finally:
        receiver.send_signal(signal.SIGTERM)
        if await receiver.wait() != 0:
            print(f"warning: receiver exited with {receiver.returncode}")
        server.close()
    ids, texts, events = await read_back(kafka.bootstrap_servers, topics, len(pdus))
    assert ids + texts == len(pdus), f"only {ids + texts} of {len(pdus)} PDUs found on Kafka"
    print(f"window {window}: {events} events on Kafka for {len(pdus)} PDUs, all present")
    return row


async def measure(smsc: LeanSmsc, window: int, pid: int, broker: int) -> Row:
    count = len(smsc.pdus)
    await asyncio.wait_for(smsc.warmed, 120)
    started, cpu_started, first = time.perf_counter(), cpu_seconds(pid), len(smsc.acked_at)
    broker_started, own_started = cpu_seconds(broker), time.process_time()
    await asyncio.wait_for(smsc.done, 600)
    elapsed, cpu = smsc.acked_at[-1] - started, cpu_seconds(pid) - cpu_started
    broker_cpu, own_cpu = cpu_seconds(broker) - broker_started, time.process_time() - own_started
    measured = count - first
    latencies = sorted(smsc.latencies[first:])
    return Row(
        window=window,
        count=count,
        per_second=measured / elapsed,
        cpu_us_per_pdu=cpu * 1e6 / measured,
        broker_cpu_us_per_pdu=broker_cpu * 1e6 / measured,
        load_generator_cpu_us_per_pdu=own_cpu * 1e6 / measured,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        refused=smsc.refused,
    )


# -- the publisher's hot path, side by side -------------------------------------------------


class TaskPerRecord:
    """One task per record, each awaiting its own ``publish``: the baseline."""

    def __init__(self, inner: KafkaPublisher) -> None:
        self._inner = inner
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        task = asyncio.create_task(self._publish(topic, key, value, acked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        try:
            await self._inner.publish(topic, key, value)
        except GatewayError as exc:
            acked(exc)
            return
        acked(None)


# How DeliverSmPublisher hands events to Kafka, in the order the table lists them.
VARIANTS = {
    "send() per record, task per record": "task",
    "send() per record, pipelined": "pipelined",
    "batches, pipelined (the receiver's)": "batching",
}


async def publisher_round(
    bootstrap: str, topics: TopicSettings, pdus: list[DeliverSm], window: int, variant: str
) -> tuple[float, float]:
    """(PDUs answered per second, this process's CPU µs per PDU) for one variant."""
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    kafka = (
        BatchingPublisher(settings, Metrics())
        if variant == "batching"
        else KafkaPublisher(settings, Metrics())
    )
    await kafka.start()
    sink = (
        TaskPerRecord(kafka) if isinstance(kafka, KafkaPublisher) and variant == "task" else kafka
    )
    handler = DeliverSmPublisher(sink, topics, Metrics(), role="bench")
    done = asyncio.get_running_loop().create_future()
    remaining = iter(pdus)
    answered = 0

    def submit_next() -> None:
        pdu = next(remaining, None)
        if pdu is not None:
            handler.submit(pdu, on_answer, bind="bench")

    def on_answer(status: int) -> None:
        nonlocal answered
        assert status == 0, status
        answered += 1
        if answered == len(pdus):
            done.set_result(None)
        submit_next()

    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(window):
            submit_next()
        await asyncio.wait_for(done, 600)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await kafka.stop()
    return len(pdus) / elapsed, cpu * 1e6 / len(pdus)


async def compare_publishers(
    kafka: LocalKafka, frames: list[bytes], window: int, rounds: int, run: str
) -> None:
    topics = TopicSettings(
        **{f.name: f"bench.pub.{f.name}.{run}" for f in dataclasses.fields(TopicSettings)}
    )
    kafka.create_topics([getattr(topics, f.name) for f in dataclasses.fields(topics)], partitions=3)
    pdus = [p for p in map(codec.decode, frames) if isinstance(p, DeliverSm)]
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS.values()}
    for _ in range(rounds):
        for variant in VARIANTS.values():
            outcome = await publisher_round(kafka.bootstrap_servers, topics, pdus, window, variant)
            results[variant].append(outcome)
    print(f"\npublisher hot path, {len(pdus)} PDUs, {window} in flight, {rounds} rounds each:")
    print("| variant | PDUs/s (each round) | CPU µs/PDU (each round) | throughput vs first |")
    print("|---|---:|---:|---:|")
    base = results["task"]
    for name, variant in VARIANTS.items():
        rates = ", ".join(f"{r:,.0f}" for r, _ in results[variant])
        cpus = ", ".join(f"{c:,.0f}" for _, c in results[variant])
        ratios = ", ".join(
            f"{r[0] / b[0]:.2f}x" for r, b in zip(results[variant], base, strict=True)
        )
        print(f"| {name} | {rates} | {cpus} | {ratios} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--windows", default="100,1000")
    parser.add_argument("--profile", help="write a cProfile of the receiver to PROFILE.w<window>")
    parser.add_argument("--publisher-rounds", type=int, default=2, help="0: no comparison")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    pdus = traffic(args.count, run)
    with LocalKafka(num_partitions=3) as kafka:
        kafka.start()
        rows = [
            asyncio.run(one_window(kafka, int(w), pdus, args.profile, run))
            for w in args.windows.split(",")
        ]
        if args.publisher_rounds:
            asyncio.run(compare_publishers(kafka, pdus[:20_000], 1000, args.publisher_rounds, run))
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    print(
        "| window | DELIVER_SMs | acked/s | receiver CPU µs/PDU | broker CPU µs/PDU | "
        "load generator CPU µs/PDU | p50 ms | p99 ms | refused |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.window} | {r.count} | {r.per_second:,.0f} | {r.cpu_us_per_pdu:,.0f} | "
            f"{r.broker_cpu_us_per_pdu:,.0f} | {r.load_generator_cpu_us_per_pdu:,.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.refused} |"
        )
    base = rows[0].per_second
    print(", ".join(f"window {r.window}: {r.per_second / base:.2f}x" for r in rows))


if __name__ == "__main__":
    main()
