"""Rate control benchmark: the sender against the simulator's rate limit, on a real broker.

Scenarios (each a fresh topic, a fresh sender process, the simulator in this process):

- ``steady``: the simulator limits the account to L parts/s (30 and 1,000) for 60 s; the
  sender is configured with the same rate. Reports goodput as a share of L from 5 s on,
  throttling answers as a share of submits from 5 s on, failed results, results missing for
  accepted submits, and per-key order (each key's messages carry a sequence number).
- ``misconfigured``: the sender is told 1,500/s against a 1,000/s limit, and must adapt.
- ``change``: 1,000/s, lowered to 500/s at 20 s and raised back at 40 s; reports how long the
  sender took to follow each change: the whole seconds from the change until, for 5 s (and
  also: until the next change), every second's goodput is at least 98 % of the new limit
  and throttling answers are at most 1 % of submits (see :func:`follow_time`).
- ``urgent``: 50,000 bulk requests queued at a 30/s limit, then 40 urgent requests one every
  0.5 s; reports the time from producing an urgent request to the provider receiving it.
- ``shared2-static``, ``shared3-static``, ``shared2-adaptive``, ``shared3-adaptive``: two or
  three sender replicas (one consumer group, one bind each on one login with MCONn; the
  backlog produced once the group holds them all) share an account limited to 1,000/s for
  60 s. *static*: each replica's rate is the account's divided by the replicas;
  *adaptive*: the same, and each may probe up to the account's rate
  (``GATEWAY_RATE_MAX_PER_SECOND``). The send topic has 6 partitions (an even split for two
  and three replicas) and a backlog of 2.5 times what the account takes in the run, so
  every replica has work to the end (the benchmark reports what each partition had left).
  Reports the aggregate goodput and throttling answers from 10 s on, per-key order across
  the replicas, and each replica's allowed rate.

Run: ``.venv/bin/python bench/rate_control.py [--scenarios steady30,steady1000,...]
[--brokers 3]`` (``--brokers 3``: on the local three-broker cluster instead of one broker).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port, sleeps
from bench.send_pipeline import attach_py_spy
from gateway.localkafka import LocalKafka, LocalKafkaCluster, RunningKafka
from gateway.simulator import SimulatorSettings, SmppSimulator

KEYS = 200
# Partitions of the send topic in the shared-account scenarios: an even split for 2 and 3.
SHARED_PARTITIONS = 6
# Seconds a followed change must hold: every one of them at 98 % of the new limit or more.
SUSTAIN = 5


@dataclass
class Run:
    kafka: RunningKafka
    name: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def topic(self, what: str) -> str:
        return f"bench.{what}.{self.tag}"


async def produce(bootstrap: str, topic: str, requests: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        for request in requests:
            key = request["tags"]["key"].encode()
            await producer.send(topic, orjson.dumps(request), key=key)
        await producer.flush()
    finally:
        await producer.stop()


def bulk_requests(tag: str, count: int, prefix: str = "7905") -> list[dict[str, Any]]:
    requests = []
    for i in range(count):
        key, seq = i % KEYS, i // KEYS
        requests.append(
            {
                "schema": "smsc.send-request/1",
                "request_id": f"{tag}-{i}",
                "recipients": [f"+{prefix}{i:07d}"],
                "text": f"k{key} s{seq}",
                "registered_delivery": False,
                "tags": {"key": str(key)},
            }
        )
    return requests


async def start_sender(
    run: Run, smpp_port: int, per_second: float, extra: dict[str, str], metrics_port: int = 0
) -> Any:
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        | {
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": run.kafka.bootstrap_servers,
            "GATEWAY_TOPICS_SEND": run.topic("send"),
            "GATEWAY_TOPICS_SEND_PRIORITY": run.topic("priority"),
            "GATEWAY_TOPICS_SEND_RESULTS": run.topic("results"),
            "GATEWAY_SMPP_HOSTS": f"127.0.0.1:{smpp_port}",
            "GATEWAY_SMPP_SYSTEM_ID": "gateway",
            "GATEWAY_SMPP_PASSWORD": "bench",
            "GATEWAY_SMPP_SOURCE_ADDR": "Bench",
            "GATEWAY_SMPP_WINDOW": "200",
            "GATEWAY_RATE_PER_SECOND": str(per_second),
            "GATEWAY_SENDER_GROUP_ID": f"bench-{run.tag}",
            "GATEWAY_HTTP_HOST": "127.0.0.1",
            "GATEWAY_HTTP_PORT": str(metrics_port or free_port()),
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        | extra
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "sender", env=env, stderr=asyncio.subprocess.DEVNULL
    )


async def read_results(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=2000, max_records=10000)
            if not batch:
                return events
            events += [orjson.loads(m.value) for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()


async def allowed_rate(port: int) -> float | None:
    """The sender's own allowed rate, from its gauge (refreshed every second); None if the
    sender does not answer yet."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
    body = await reader.read()
    writer.close()
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("smsc_rate_allowed_per_second{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def watch_allowed(port: int, seconds: float) -> list[float | None]:
    """The sender's allowed rate at the end of each whole second, for ``seconds``: what rate
    control chose, to tell apart from what the machine managed to send."""
    loop = asyncio.get_running_loop()
    start, rates = loop.time(), []
    for k in range(1, int(seconds) + 1):
        await asyncio.sleep(max(0.0, start + k - loop.time()))
        rates.append(await allowed_rate(port))
    return rates


def simulator(limit: float) -> SmppSimulator:
    return SmppSimulator(
        SimulatorSettings(
            accounts={"gateway": "bench"},
            rate_limit_per_second=limit,
            duplicate_window_seconds=None,
            max_recorded_submits=200_000,
            max_recorded_parts=200_000,
        )
    )


async def wait_sending(sim: SmppSimulator) -> float:
    """When the first submit was accepted (the sender bound, joined its groups, caught up)."""
    while not sim.stats.submits:  # noqa: ASYNC110 - polling a counter, no event exists
        await asyncio.sleep(0.01)
    return sim.now()


Sampler = Callable[[float], None]


async def sample_every(
    sim: SmppSimulator, seconds: float, on_tick: Sampler | None, interval: float = 0.5
) -> list[tuple[float, int, int]]:
    """(time, parts accepted so far, throttled so far) every ``interval`` for ``seconds``."""
    start, samples = sim.now(), []

    def sample() -> tuple[float, int, int]:
        # ``stats.submits`` counts every answer, throttling ones included; parts are goodput.
        return sim.now() - start, sum(sim.stats.accepted_parts.values()), sim.stats.throttled

    while sim.now() - start < seconds:
        samples.append(sample())
        if on_tick is not None:
            on_tick(sim.now() - start)
        await asyncio.sleep(interval)
    samples.append(sample())
    return samples


def order_kept(sim: SmppSimulator) -> bool:
    last: dict[str, int] = {}
    for record in sim.submits:
        key, seq = record.short_message.decode().split()
        if int(seq[1:]) < last.get(key, -1):
            return False
        last[key] = int(seq[1:])
    return True


async def steady(run: Run, limit: float, configured: float, seconds: float) -> dict[str, Any]:
    requests = bulk_requests(run.tag, int(limit * seconds * 1.3) + 500)
    run.kafka.create_topics([run.topic("send"), run.topic("priority"), run.topic("results")])
    await produce(run.kafka.bootstrap_servers, run.topic("send"), requests)
    async with simulator(limit) as sim:
        port = free_port()
        sender = await start_sender(run, sim.port, configured, {}, port)
        t0 = await wait_sending(sim)
        cpu = asyncio.create_task(cpu_between([sender.pid], 5, seconds, spy_as=run.name))
        samples, allowed = await asyncio.gather(
            sample_every(sim, seconds, None), watch_allowed(port, seconds)
        )
        (used,) = await cpu
        t_end = sim.now()
        sender.send_signal(signal.SIGTERM)
        await sender.wait()
        per_second = sim.stats.accepted_per_second(t0 + 5, t0 + seconds)
        results = await read_results(run.kafka.bootstrap_servers, run.topic("results"))
        five = next(s for s in samples if s[0] >= 5.0)
        accepted_after = samples[-1][1] - five[1]
        throttled_after = samples[-1][2] - five[2]
        accepted_phones = {r.destination_addr for r in sim.submits}
        result_phones = {e["recipients"][0]["phone"] for e in results if e["outcome"] == "accepted"}
        return {
            "scenario": run.name,
            "limit": limit,
            "configured": configured,
            "seconds": round(t_end - t0, 1),
            "goodput_share": sum(per_second) / len(per_second) / limit,
            "worst_second_share": min(per_second) / limit,
            "per_second": per_second,
            "allowed_per_second": allowed[5:],
            "throttled_share_after_5s": throttled_after / max(1, accepted_after + throttled_after),
            "throttled_total": sim.stats.throttled,
            "failed_results": sum(e["outcome"] != "accepted" for e in results),
            "accepted_without_result": len(accepted_phones - result_phones),
            "order_kept": order_kept(sim),
            # The sender's CPU from 5 s on per part accepted meanwhile, and its share of a
            # core; the sleeps (wake-ups) of its event loop and its system calls per part.
            "sender_cpu_us_per_part": round(used.cpu_seconds * 1e6 / max(1, accepted_after)),
            "sender_core_share": round(used.cpu_seconds / (seconds - 5), 2),
            "sender_per_part": used.per_part(accepted_after),
        }


async def change(run: Run) -> dict[str, Any]:
    requests = bulk_requests(run.tag, 60_000)
    run.kafka.create_topics([run.topic("send"), run.topic("priority"), run.topic("results")])
    await produce(run.kafka.bootstrap_servers, run.topic("send"), requests)
    async with simulator(1000) as sim:
        port = free_port()
        sender = await start_sender(run, sim.port, 1000, {}, port)
        await wait_sending(sim)
        changes = {20.0: 500.0, 40.0: 1000.0}
        applied: list[tuple[float, float]] = []  # (when, on the simulator's clock; new limit)

        def tick(_: float) -> None:
            elapsed = sim.now() - origin
            for at, limit in list(changes.items()):
                if elapsed >= at:
                    sim.faults.set_rate_limit(limit)
                    applied.append((sim.now(), limit))
                    del changes[at]

        origin = sim.now()
        samples, allowed = await asyncio.gather(
            sample_every(sim, 60, tick, interval=0.1), watch_allowed(port, 60)
        )
        end = sim.now()
        sender.send_signal(signal.SIGTERM)
        await sender.wait()
        (lowered_at, lowered), (raised_at, raised) = applied
        throttled = [(origin + t, throttled) for t, _, throttled in samples]
        low = phase_seconds(sim, throttled, lowered_at, raised_at)
        high = phase_seconds(sim, throttled, raised_at, end)
    return {
        "scenario": run.name,
        "lowered": phase_summary(low, lowered),
        "raised": phase_summary(high, raised),
        "allowed_per_second": allowed,
    }


def phase_seconds(
    sim: SmppSimulator, throttled: list[tuple[float, int]], start: float, end: float
) -> list[tuple[int, int]]:
    """(accepted, throttled) in each whole second from ``start`` (a change) to ``end``.

    Accepted parts are counted from the simulator's record of when each was accepted;
    throttling answers, of which only a count is kept, from samples every 0.1 s."""

    def throttled_at(t: float) -> int:
        return next((count for when, count in throttled if when >= t), throttled[-1][1])

    seconds = []
    for k in range(int(end - start)):
        accepted = sim.stats.accepted_between(start + k, start + k + 1)
        seconds.append((accepted, throttled_at(start + k + 1) - throttled_at(start + k)))
    return seconds


def follow_time(
    seconds: list[tuple[int, int]], limit: float, sustain: int | None = SUSTAIN
) -> int | None:
    """Whole seconds after a change until the sender has followed it: from then on, for
    ``sustain`` seconds (None: to the next change), every second's goodput is at least 98 %
    of the new limit and throttling answers are at most 1 % of the submits (a probe for a
    raised limit costs a few)."""
    enough = math.floor(0.98 * limit)  # whole parts: 29 of 30/s is within 2 %
    for start in range(len(seconds)):
        span = seconds[start:] if sustain is None else seconds[start : start + sustain]
        if sustain is not None and len(span) < sustain:
            return None
        accepted = sum(a for a, _ in span)
        throttled = sum(t for _, t in span)
        if all(a >= enough for a, _ in span) and throttled <= 0.01 * (accepted + throttled):
            return start
    return None


def phase_summary(seconds: list[tuple[int, int]], limit: float) -> dict[str, Any]:
    """How soon the change was followed, goodput and throttling from 5 s after it, the
    seconds below 98 % after it was followed (with their throttling answers: none means the
    sender did not keep up, not that it was held back), and the seconds themselves."""
    settled = seconds[5:]
    accepted = sum(a for a, _ in settled)
    throttled = sum(t for _, t in settled)
    followed = follow_time(seconds, limit)
    after = [] if followed is None else list(enumerate(seconds))[followed:]
    return {
        "limit": limit,
        "follow_s": followed,
        "follow_to_the_end_s": follow_time(seconds, limit, sustain=None),
        "dips_after_following": [(k, a, t) for k, (a, t) in after if a < math.floor(0.98 * limit)],
        "goodput_share_after_5s": accepted / len(settled) / limit,
        "throttled_share_after_5s": throttled / max(1, accepted + throttled),
        "accepted_per_second": [a for a, _ in seconds],
        "throttled_per_second": [t for _, t in seconds],
    }


async def urgent(run: Run) -> dict[str, Any]:
    run.kafka.create_topics([run.topic("send"), run.topic("priority"), run.topic("results")])
    await produce(run.kafka.bootstrap_servers, run.topic("send"), bulk_requests(run.tag, 50_000))
    async with simulator(30) as sim:
        sender = await start_sender(run, sim.port, 30, {})
        await wait_sending(sim)
        await asyncio.sleep(5)  # the bulk lane is full and the gate's line is long
        sent_at: dict[str, float] = {}
        producer = AIOKafkaProducer(bootstrap_servers=run.kafka.bootstrap_servers, acks="all")
        await producer.start()
        for i in range(40):
            phone = f"7906{i:07d}"
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run.tag}-u{i}",
                "recipients": [f"+{phone}"],
                "text": "urgent",
                "registered_delivery": False,
            }
            sent_at[phone] = time.time()
            await producer.send_and_wait(
                run.topic("priority"), orjson.dumps(request), key=phone.encode()
            )
            await asyncio.sleep(0.5)
        await producer.stop()
        await asyncio.sleep(3)
        sender.send_signal(signal.SIGTERM)
        await sender.wait()
        received = {
            r.destination_addr: r.submitted_at for r in sim.submits if r.destination_addr in sent_at
        }
    latencies = sorted(received[p] - sent_at[p] for p in received)
    return {
        "scenario": run.name,
        "urgent_sent": len(sent_at),
        "urgent_received": len(received),
        "p50_s": latencies[len(latencies) // 2],
        "p99_s": latencies[int(len(latencies) * 0.99) - 1],
        "max_s": latencies[-1],
        "bulk_submitted_meanwhile": sim.stats.submits - len(received),
    }


async def shared(run: Run, replicas: int, mode: str) -> dict[str, Any]:
    limit, seconds, settled = 1000.0, 60, 10
    requests = bulk_requests(run.tag, int(limit * seconds * 2.5))
    names = [run.topic("send"), run.topic("priority"), run.topic("results")]
    run.kafka.create_topics(names, partitions=SHARED_PARTITIONS)
    extra = {"GATEWAY_SMPP_SYSTEM_TYPE": f"MCON{replicas}"}
    if mode.startswith("adaptive"):
        extra["GATEWAY_RATE_MAX_PER_SECOND"] = str(limit)
    async with simulator(limit) as sim:
        ports = [free_port() for _ in range(replicas)]
        senders = [await start_sender(run, sim.port, limit / replicas, extra, p) for p in ports]
        # The backlog comes once the group holds every replica, so the run measures the
        # sharing, not the joins' rebalances.
        await group_settles(run.kafka.bootstrap_servers, f"bench-{run.tag}", replicas)
        await produce(run.kafka.bootstrap_servers, run.topic("send"), requests)
        t0 = await wait_sending(sim)
        sampling = asyncio.create_task(sample_every(sim, seconds, None, interval=0.1))
        cpu = asyncio.create_task(
            cpu_between([s.pid for s in senders], settled, seconds, spy_as=run.name)
        )
        allowed = await asyncio.gather(*(watch_allowed(p, seconds) for p in ports))
        samples, usage = await sampling, await cpu
        cpu_seconds_used = [u.cpu_seconds for u in usage]
        left = await backlog_left(
            run.kafka.bootstrap_servers, f"bench-{run.tag}", run.topic("send")
        )
        for sender in senders:
            sender.send_signal(signal.SIGTERM)
        await asyncio.gather(*(sender.wait() for sender in senders))
        throttled = [(t0 + t, count) for t, _, count in samples]
        per_second = phase_seconds(sim, throttled, t0 + settled, t0 + seconds)
        results = await read_results(run.kafka.bootstrap_servers, run.topic("results"))
        order = order_kept(sim)
    return {
        "scenario": run.name,
        "replicas": replicas,
        "mode": mode,
        **shared_summary(per_second, limit, [rates[settled:] for rates in allowed]),
        # All replicas' CPU per accepted part, and the share of a core each one used.
        "senders_cpu_us_per_part": round(
            sum(cpu_seconds_used) * 1e6 / max(1, sum(a for a, _ in per_second))
        ),
        "replica_core_share": [round(c / (seconds - settled), 2) for c in cpu_seconds_used],
        "replica_per_part": [u.per_part(sum(a for a, _ in per_second)) for u in usage],
        "failed_results": sum(e["outcome"] != "accepted" for e in results),
        "order_kept": order,
        "backlog_left_per_partition": left,
    }


async def backlog_left(bootstrap: str, group: str, topic: str) -> list[int]:
    """Records of each partition of ``topic`` past the group's committed offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(SHARED_PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        return [ends[tp] - (await consumer.committed(tp) or 0) for tp in partitions]
    finally:
        await consumer.stop()


async def group_settles(bootstrap: str, group: str, members: int) -> None:
    """Return once the consumer group is Stable with ``members`` members (at most 120 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while loop.time() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            (response,) = await admin.describe_consumer_groups([group])
            (described,) = response.to_object()["groups"]
            if (described["state"], len(described["members"])) == ("Stable", members):
                return
        except KafkaError:
            pass
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
    raise RuntimeError(f"group {group} did not settle on {members} members in 120 s")


@dataclass(frozen=True)
class Usage:
    """What a process spent over a window: CPU seconds, and the sleeps of its event loop
    (each one a wake-up after)."""

    cpu_seconds: float
    sleeps: int
    system_calls: dict[str, int] | None = None  # counted by perf, with ``--syscalls``

    @classmethod
    def of(cls, pid: int) -> Usage:
        return cls(cpu_seconds(pid), sleeps(pid))

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu_seconds - other.cpu_seconds, self.sleeps - other.sleeps)

    def per_part(self, parts: int) -> dict[str, float]:
        """Sleeps and system calls (each counted one, and all of them) per part."""
        counts = {"sleeps": self.sleeps, **(self.system_calls or {})}
        return {name: round(count / max(1, parts), 2) for name, count in counts.items()}


# Where py-spy writes each sender's profile of the measured window (``--py-spy DIR``).
PY_SPY_DIR: Path | None = None
# Whether perf counts each sender's system calls over the measured window (``--syscalls``).
COUNT_SYSCALLS = False


# The system calls counted by ``--syscalls``: all of them, and those an event loop's turn
# is made of (epoll_wait; sendto and recvfrom on its sockets; epoll_ctl when a transport
# starts or stops waiting to write; getpid, which asyncio's task creation calls on 3.11).
SYSCALLS = ("epoll_wait", "sendto", "recvfrom", "epoll_ctl", "getpid")


async def count_syscalls(pid: int, out: Path) -> asyncio.subprocess.Process:
    """``perf stat`` counting the system calls of ``pid`` into ``out`` until SIGINT."""
    events = ",".join(["raw_syscalls:sys_enter", *(f"syscalls:sys_enter_{n}" for n in SYSCALLS)])
    return await asyncio.create_subprocess_exec(
        "perf",
        *("stat", "-x", ",", "-e", events, "-p", str(pid), "-o", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def counted_syscalls(out: Path) -> dict[str, int]:
    """The counts in a ``perf stat -x ,`` output, by system call ("all": every one)."""
    counts = {}
    for line in out.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            name = fields[2].removeprefix("syscalls:sys_enter_")
            counts["all" if name == "raw_syscalls:sys_enter" else name] = int(fields[0])
    return counts


def temp_file(prefix: str, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(handle)
    return Path(name)


async def cpu_between(pids: list[int], start: float, end: float, spy_as: str = "") -> list[Usage]:
    """What each process spent between ``start`` and ``end`` seconds from now; with
    ``--py-spy``, each process sampled over the same window."""
    await asyncio.sleep(start)
    spies = []
    if PY_SPY_DIR is not None:
        for k, pid in enumerate(pids):
            spies.append(await attach_py_spy(pid, PY_SPY_DIR / f"{spy_as}.{k}.txt"))
    counts = [temp_file(f"{spy_as}.{k}.", ".perf") for k in range(len(pids) * COUNT_SYSCALLS)]
    counters = [await count_syscalls(pid, out) for pid, out in zip(pids, counts, strict=False)]
    before = [Usage.of(pid) for pid in pids]
    await asyncio.sleep(end - start)
    used = [Usage.of(pid) - b for pid, b in zip(pids, before, strict=True)]
    for process in spies + counters:  # py-spy writes its profile on SIGINT, perf its count
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
    if counters:
        used = [
            dataclasses.replace(u, system_calls=counted_syscalls(out))
            for u, out in zip(used, counts, strict=True)
        ]
    return used


def shared_summary(
    seconds: list[tuple[int, int]], limit: float, allowed: list[list[float | None]]
) -> dict[str, Any]:
    """Aggregate goodput and throttling over ``seconds``; the seconds short of 95 % of the
    limit, each with its throttling answers and the replicas' summed allowed rate: short
    with no throttling and the allowed rate at the limit means the replicas did not keep
    up (a loaded machine), not that rate control held them back."""
    accepted = sum(a for a, _ in seconds)
    throttled = sum(t for _, t in seconds)
    summed = [sum(r[k] or 0.0 for r in allowed) for k in range(len(seconds))]
    short = [
        (k, a, t, round(summed[k]))
        for k, (a, t) in enumerate(seconds)
        if k < len(summed) and a < 0.95 * limit
    ]
    return {
        "limit": limit,
        "goodput_share_after_10s": accepted / len(seconds) / limit,
        "worst_second_share": min(a for a, _ in seconds) / limit,
        "throttled_share_after_10s": throttled / max(1, accepted + throttled),
        "throttled_after_10s": throttled,
        "short_seconds": short,
        "accepted_per_second": [a for a, _ in seconds],
        "allowed_per_second": [[round(x) if x else x for x in r] for r in allowed],
    }


SHARED_MODES = ("static", "adaptive")


Scenario = Callable[[RunningKafka], Coroutine[Any, Any, dict[str, Any]]]


def shared_scenario(replicas: int, mode: str) -> Scenario:
    return lambda kafka: shared(Run(kafka, f"shared{replicas}-{mode}"), replicas, mode)


SCENARIOS: dict[str, Scenario] = {
    "steady30": lambda k: steady(Run(k, "steady30"), 30, 30, 60),
    "steady1000": lambda k: steady(Run(k, "steady1000"), 1000, 1000, 60),
    "misconfigured": lambda k: steady(Run(k, "misconfigured"), 1000, 1500, 30),
    "change": lambda k: change(Run(k, "change")),
    "urgent": lambda k: urgent(Run(k, "urgent")),
    **{f"shared{n}-{mode}": shared_scenario(n, mode) for n in (2, 3) for mode in SHARED_MODES},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    parser.add_argument("--py-spy", type=Path, help="profile each sender into this directory")
    parser.add_argument("--syscalls", action="store_true", help="count them with perf stat")
    args = parser.parse_args()
    global PY_SPY_DIR, COUNT_SYSCALLS  # options read once, before any scenario runs
    PY_SPY_DIR, COUNT_SYSCALLS = args.py_spy, args.syscalls
    if PY_SPY_DIR is not None:
        PY_SPY_DIR.mkdir(parents=True, exist_ok=True)
    kafka = LocalKafka(num_partitions=3) if args.brokers == 1 else LocalKafkaCluster()
    with kafka:
        for name in args.scenarios.split(","):
            # Other work on a shared machine moves every figure; the load says how much.
            started = time.strftime("%H:%M:%S", time.gmtime())
            load_before = os.getloadavg()[0]
            result = asyncio.run(SCENARIOS[name](kafka))
            result |= {"started_utc": started, "load_1m": [load_before, os.getloadavg()[0]]}
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), flush=True)


if __name__ == "__main__":
    main()
