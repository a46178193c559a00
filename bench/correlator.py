"""Correlator benchmark: one worker under live traffic, against the plain-aiokafka floor in the
same run; and the time to recover a table of a million entries.

Live traffic: send results and their delivery reports are produced at a steady rate while
the worker runs, as the sender produces them: each report about ``--lag`` seconds after its
result, and a few (``--early``, 5 %) 20 ms *before* it, so both stages work all the time and
some reports wait in the held table. One single-part recipient per request, so one report is
one join (a ``part`` status, then the ``message`` status). The worker is a process of its
own; this process generates the load and reads the statuses.

Two implementations, in turn, on fresh topics each time, with the same load:

- ``faust``: ``smsc-gateway correlator``, the product (``--store``, RocksDB by default);
- ``floor``: ``bench/correlator_floor.py``, the same topology as plain aiokafka loops: the
  same route stage, and a join loop with a changelog produce per table change, dict tables,
  one producer with the settings of faust's.

Each at two rates: ``--rate`` (500 reports/s by default), where it keeps up, and
``--saturate`` (offered above what one worker can do), where what it joins is its capacity.
After ``--warmup`` seconds, over ``--seconds``:

- joins/s: part statuses that arrived on ``smsc.status.v1`` in the window;
- CPU µs per join: the worker process's user+system CPU (from /proc) over the window,
  divided by the joins; the share of a core it used (by thread), and its resident memory;
- how long the worker's main thread (its event loop) was runnable but waiting for a CPU,
  as a share of the window (``schedstat`` in /proc): on a shared machine, a worker that uses
  a fifth of a core while it waits for a CPU most of the time is short of CPU, not idle;
- latency (at ``--rate`` only): from the later of a report's and its result's
  acknowledgement by Kafka (a report cannot be joined before its result is there) to its part
  status arriving here, p50 and p99, over the reports produced in the window.

The ratio printed is faust CPU per join ÷ floor CPU per join at the same rate. The 1-minute
load average is printed at the start and end of every window: the machine is shared.

Recovery (``--entries``, 1,000,000 by default): a parts changelog of that many entries is
written straight to Kafka, then a worker is started on it and timed until its tables are
recovered and indexed: memory store (the whole changelog read), RocksDB on an empty
directory (the same), RocksDB on the directory the previous run left (only the tail read).

``--baseline DIR`` runs a third worker, ``baseline``: the correlator of another checkout of
the product (``git archive main | tar -x -C DIR``), for a before-and-after in one run.

``--nice N`` runs the workers at that scheduling priority (a negative N needs root): on a
machine shared with other jobs, the way to see what a worker does when it has a CPU.

Run: ``.venv/bin/python bench/correlator.py [--rate 500] [--saturate 2500] [--seconds 20]
[--rounds 1] [--partitions 12] [--entries 1000000] [--baseline DIR] [--profile DIR]
[--nice N]``
(``--profile`` records
each worker with py-spy over each window, ``--format raw``, for ``bench/profile_summary.py``;
the CPU figures of such a run include py-spy's pauses).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port, rss_megabytes, thread_cpu_seconds
from gateway.correlator.faustapp import CorrelatorApp
from gateway.correlator.model import PartEntry, encode_entry, part_key
from gateway.correlator.topology import prepare_topics
from gateway.events.delivery import DeliveryReport, dlr_event
from gateway.events.send_result import RecipientOutcome, send_result_event
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import HttpSettings, KafkaSettings, Settings, TopicSettings
from gateway.settings.correlator import CorrelatorSettings

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "faust": [sys.executable, "-m", "gateway", "correlator"],
    "floor": [sys.executable, str(ROOT / "bench" / "correlator_floor.py")],
}
INPUT_PARTITIONS = 3
EARLY_SECONDS = 0.02
PRIME_SECONDS = 240.0


@dataclass(frozen=True, slots=True)
class Options:
    partitions: int
    store: str
    event_loop: str
    lag: float
    early: float
    warmup: float
    seconds: float
    profile: Path | None
    logs: Path | None
    env: dict[str, str]
    baseline: Path | None = None
    nice: int = 0


@dataclass(frozen=True, slots=True)
class Measured:
    impl: str
    offered: int
    joins_per_second: float
    cpu_us_per_join: float
    core_share: float
    cpu_wait_share: float
    p50: float | None
    p99: float | None
    missing: int
    load: tuple[float, float]
    threads: str
    rss: float


def _topics(run: str) -> TopicSettings:
    return TopicSettings(
        **{
            f.name: f"{getattr(TopicSettings(), f.name)}.{run}"
            for f in dataclasses.fields(TopicSettings)
        }
    )


# --- traffic ----------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Records to produce at their times (seconds from the start), and when Kafka had them."""

    run: str
    schedule: list[tuple[float, int, int, str, bytes, bytes]]  # at, index, kind, topic, key, value
    acked: list[list[float]]  # [kind][index]: monotonic time of the produce acknowledgement

    @classmethod
    def build(
        cls, topics: TopicSettings, run: str, rate: int, seconds: float, opts: Options
    ) -> Traffic:
        count = int(rate * seconds)
        now = datetime.now(UTC)
        schedule = []
        for i in range(count):
            at = i / rate
            request_id, phone, message_id = f"{run}-{i}", f"79{i:09d}", str(10_000_000 + i)
            result = _result(request_id, phone, message_id, now)
            report = _report(message_id, phone, now)
            early = (i * 7919) % 1000 < opts.early * 1000
            report_at = at - EARLY_SECONDS if early else at + opts.lag
            schedule.append((at, i, 0, topics.send_results, request_id.encode(), result))
            schedule.append((max(0.0, report_at), i, 1, topics.dlr, message_id.encode(), report))
        schedule.sort(key=lambda s: s[0])
        return cls(run, schedule, [[0.0] * count, [0.0] * count])


def _result(request_id: str, phone: str, message_id: str, now: datetime) -> bytes:
    event = send_result_event(
        request_id=request_id,
        outcome="accepted",
        occurred_at=now,
        received_at=now,
        transport="smpp",
        recipients=[RecipientOutcome(phone=phone, status="accepted", message_ids=(message_id,))],
        tags={"campaign": "bench"},
    )
    return orjson.dumps(event)


def _report(message_id: str, phone: str, now: datetime) -> bytes:
    report = DeliveryReport(
        source="smpp",
        message_id=message_id,
        phone=phone,
        status="delivered",
        final=True,
        stat="DELIVRD",
        received_at=now,
        err=0,
        raw={"text": f"id:{message_id} stat:DELIVRD"},
    )
    return orjson.dumps(dlr_event(report))


async def produce_live(producer: AIOKafkaProducer, traffic: Traffic, started: float) -> None:
    """Produce every record at its time (checked every few milliseconds)."""

    def acked(kind: int, index: int, _: asyncio.Future[object]) -> None:
        traffic.acked[kind][index] = time.monotonic()

    for at, index, kind, topic, key, value in traffic.schedule:
        delay = started + at - time.monotonic()
        if delay > 0.002:
            await asyncio.sleep(delay)
        sent = await producer.send(topic, value, key=key)
        sent.add_done_callback(functools.partial(acked, kind, index))


@dataclass
class Statuses:
    """When the first status (the part status) of each request arrived here."""

    prefix: bytes
    first: dict[int, float] = field(default_factory=dict)
    primed: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, bootstrap: str, topic: str, done: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=50
        )
        await consumer.start()
        first, cut = self.first, len(self.prefix)
        try:
            while not done.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=10000)
                now = time.monotonic()
                for message in (m for ms in batches.values() for m in ms):
                    key = message.key or b""
                    if key.startswith(self.prefix):
                        first.setdefault(int(key[cut:]), now)
                    else:
                        self.primed.set()
        finally:
            await consumer.stop()


async def prime(bootstrap: str, topics: TopicSettings, run: str, statuses: Statuses) -> None:
    """Until the worker answers: one request and its report per second."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        deadline = time.monotonic() + PRIME_SECONDS
        for k in range(int(PRIME_SECONDS)):
            now, phone, message_id = datetime.now(UTC), f"78{k:09d}", str(5_000_000 + k)
            request_id = f"prime-{run}-{k}"
            await producer.send(topics.send_results, _result(request_id, phone, message_id, now))
            await producer.send(topics.dlr, _report(message_id, phone, now))
            try:
                await asyncio.wait_for(statuses.primed.wait(), 1.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    break
        raise RuntimeError("the worker did not answer")
    finally:
        await producer.stop()


# --- one measurement --------------------------------------------------------------------------


def worker_env(
    kafka: LocalKafka, topics: TopicSettings, run: str, data_dir: str, opts: Options
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        f"GATEWAY_TOPICS_{f.name.upper()}": getattr(topics, f.name)
        for f in dataclasses.fields(topics)
    }
    env |= {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(free_port()),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_CORRELATOR_APP_ID": f"bench-{run}",
        "GATEWAY_CORRELATOR_ROUTE_TOPIC": f"bench-route-{run}",
        "GATEWAY_CORRELATOR_PARTITIONS": str(opts.partitions),
        "GATEWAY_CORRELATOR_REPLICATION_FACTOR": "1",
        "GATEWAY_CORRELATOR_STORE": opts.store,
        "GATEWAY_CORRELATOR_DATA_DIR": data_dir,
        "GATEWAY_CORRELATOR_EVENT_LOOP": opts.event_loop,
    }
    return env | opts.env


async def measure(kafka: LocalKafka, impl: str, rate: int, opts: Options, label: str) -> Measured:
    run = uuid.uuid4().hex[:8]
    topics = _topics(run)
    kafka.create_topics(
        [topics.send_results, topics.dlr, topics.status, topics.dead_letter], INPUT_PARTITIONS
    )
    data_dir = tempfile.mkdtemp(prefix="bench-correlator-")
    log = Path(data_dir) / "worker.log"
    total = opts.warmup + opts.seconds + opts.lag + 1.0
    traffic = Traffic.build(topics, run, rate, total, opts)
    statuses, done = Statuses(f"{run}-".encode()), asyncio.Event()
    reader = asyncio.create_task(statuses.follow(kafka.bootstrap_servers, topics.status, done))
    with log.open("wb") as out:
        env = worker_env(kafka, topics, run, data_dir, opts)
        cwd = None
        if impl == "baseline" and opts.baseline is not None:
            # ``python -m`` puts the working directory first on the path, before PYTHONPATH.
            cwd = env["PYTHONPATH"] = str(opts.baseline.resolve())
        command = COMMANDS["faust" if impl == "baseline" else impl]
        worker = subprocess.Popen(  # noqa: ASYNC220
            command,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=out,
            preexec_fn=functools.partial(os.nice, opts.nice) if opts.nice else None,  # noqa: PLW1509
        )
    try:
        await prime(kafka.bootstrap_servers, topics, run, statuses)
        return await _window(
            kafka,
            impl=impl,
            rate=rate,
            opts=opts,
            label=label,
            pid=worker.pid,
            traffic=traffic,
            statuses=statuses,
        )
    except BaseException:
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        _stop(worker)
        done.set()
        await reader
        if opts.logs is not None:
            opts.logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, opts.logs / f"{impl}-{label}-{run}.log")
        shutil.rmtree(data_dir, ignore_errors=True)


async def _window(
    kafka: LocalKafka,
    *,
    impl: str,
    rate: int,
    opts: Options,
    label: str,
    pid: int,
    traffic: Traffic,
    statuses: Statuses,
) -> Measured:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=2)
    await producer.start()
    started = time.monotonic()
    feeding = asyncio.create_task(produce_live(producer, traffic, started))
    try:
        await asyncio.sleep(opts.warmup)
        begin, cpu0, load0 = time.monotonic(), cpu_seconds(pid), os.getloadavg()[0]
        threads0, waited0 = thread_cpu_seconds(pid), runqueue_seconds(pid)
        spy = _profile(pid, opts, f"{impl}-{label}")
        await asyncio.sleep(opts.seconds)
        end, cpu1, load1 = time.monotonic(), cpu_seconds(pid), os.getloadavg()[0]
        threads = _thread_shares(threads0, thread_cpu_seconds(pid), cpu1 - cpu0)
        waited = runqueue_seconds(pid) - waited0
        rss = rss_megabytes(pid)
        if spy is not None:
            spy.wait(60)
        if label != "saturated":
            await _settle(traffic, statuses, begin, end)
    finally:
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        await producer.stop()
    joins = sum(begin <= t <= end for t in statuses.first.values())
    latencies, missing = _latencies(traffic, statuses, begin, end)
    return Measured(
        impl=impl,
        offered=rate,
        joins_per_second=joins / (end - begin),
        cpu_us_per_join=(cpu1 - cpu0) * 1e6 / max(joins, 1),
        core_share=(cpu1 - cpu0) / (end - begin),
        cpu_wait_share=waited / (end - begin),
        p50=_quantile(latencies, 0.50) if label != "saturated" else None,
        p99=_quantile(latencies, 0.99) if label != "saturated" else None,
        missing=missing if label != "saturated" else 0,
        load=(load0, load1),
        threads=threads,
        rss=rss,
    )


def runqueue_seconds(pid: int) -> float:
    """How long the main thread of ``pid`` has been runnable but waiting for a CPU, in
    seconds (the second field of /proc/PID/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def _thread_shares(before: dict[str, float], after: dict[str, float], total: float) -> str:
    """The threads that used at least 2 % of the process's CPU, by name."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    shown = sorted(((s, n) for n, s in used.items() if s >= 0.02 * total), reverse=True)
    return ", ".join(f"{name} {100 * s / max(total, 1e-9):.0f} %" for s, name in shown)


async def _settle(traffic: Traffic, statuses: Statuses, begin: float, end: float) -> None:
    """Give the reports of the window up to 10 s to come out."""
    wanted = [i for i, t in enumerate(traffic.acked[1]) if begin <= t <= end]
    for _ in range(100):
        if all(i in statuses.first for i in wanted):
            return
        await asyncio.sleep(0.1)


def _latencies(
    traffic: Traffic, statuses: Statuses, begin: float, end: float
) -> tuple[list[float], int]:
    latencies, missing = [], 0
    for i, report_acked in enumerate(traffic.acked[1]):
        if not begin <= report_acked <= end:
            continue
        arrived = statuses.first.get(i)
        if arrived is None:
            missing += 1
        else:
            latencies.append(arrived - max(report_acked, traffic.acked[0][i]))
    return latencies, missing


def _quantile(values: list[float], q: float) -> float | None:
    if len(values) < 2:
        return None
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def _profile(pid: int, opts: Options, name: str) -> subprocess.Popen[bytes] | None:
    if opts.profile is None:
        return None
    opts.profile.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--duration", str(int(opts.seconds))]
    command += ["--format", "raw", "--output", str(opts.profile / f"{name}.txt")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


# --- recovery ---------------------------------------------------------------------------------


def recovery_settings(kafka: LocalKafka, run: str, data_dir: str, partitions: int) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
        topics=_topics(run),
        http=HttpSettings(host="127.0.0.1", port=0),
        correlator=CorrelatorSettings(
            app_id=f"bench-{run}",
            route_topic=f"bench-route-{run}",
            partitions=partitions,
            replication_factor=1,
            store="memory",
            data_dir=data_dir,
        ),
    )


async def produce_changelog(bootstrap: str, topic: str, entries: int, partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    now = time.time()
    try:
        for i in range(entries):
            phone, message_id = f"7900{i:07d}", str(50_000_000 + i)
            entry = PartEntry(
                request_id=f"bench-{i}",
                phone=phone,
                tags={"campaign": "bench"},
                submitted_at=now,
                message_ids=(message_id,),
                index=1,
                partition=i % partitions,
                expires_at=now + 86400,
            )
            key = part_key(message_id, phone).encode()
            await producer.send(topic, encode_entry(entry), key=key, partition=i % partitions)
        await producer.flush()
    finally:
        await producer.stop()


async def recovery(kafka: LocalKafka, entries: int, partitions: int) -> None:
    run = uuid.uuid4().hex[:6]
    data_dir = tempfile.mkdtemp(prefix="bench-correlator-")
    settings = recovery_settings(kafka, run, data_dir, partitions)
    kafka.create_topics([settings.topics.send_results, settings.topics.dlr], INPUT_PARTITIONS)
    probe = CorrelatorApp(settings, Metrics())
    stop = asyncio.Event()
    await prepare_topics(
        settings.kafka, settings.correlator, probe.changelog_topics, [settings.topics.dlr], stop
    )
    started = time.monotonic()
    await produce_changelog(kafka.bootstrap_servers, probe.changelog_topics[0], entries, partitions)
    print(f"wrote a {entries:,}-entry parts changelog in {time.monotonic() - started:.1f} s")
    for store, label in (
        ("memory", "memory"),
        ("rocksdb", "rocksdb, empty dir"),
        ("rocksdb", "rocksdb, dir kept"),
    ):
        load = os.getloadavg()[0]
        seconds, count = await _recover(settings, store)
        print(f"recovery, {label}: {count:,} entries in {seconds:.1f} s (load {load:.1f})")
    shutil.rmtree(data_dir, ignore_errors=True)


async def _recover(settings: Settings, store: str) -> tuple[float, int]:
    correlator = dataclasses.replace(settings.correlator, store=store)
    worker = CorrelatorApp(dataclasses.replace(settings, correlator=correlator), Metrics())
    started = time.monotonic()
    await worker.start()
    try:
        await worker.recovered.wait()
        return time.monotonic() - started, worker.reports.correlator.part_count
    finally:
        await worker.stop()


# --- report -----------------------------------------------------------------------------------


def print_row(m: Measured, label: str) -> None:
    latency = (
        ""
        if m.p50 is None or m.p99 is None
        else f"  p50 {m.p50 * 1000:6.0f} ms  p99 {m.p99 * 1000:6.0f} ms"
    )
    missing = f"  ({m.missing} not out in time)" if m.missing else ""
    print(
        f"{m.impl:8} {label:9} offered {m.offered:5}/s: {m.joins_per_second:7.0f} joins/s  "
        f"{m.cpu_us_per_join:6.0f} µs CPU/join  {m.core_share * 100:3.0f} % of a core"
        f" (waited for one {m.cpu_wait_share * 100:3.0f} %)"
        f"{latency}{missing}  load {m.load[0]:.1f}-{m.load[1]:.1f}",
        flush=True,
    )
    print(f"      CPU by thread: {m.threads}; resident memory {m.rss:.0f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--saturate", type=int, default=2500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--lag", type=float, default=1.0)
    parser.add_argument("--early", type=float, default=0.05)
    parser.add_argument("--partitions", type=int, default=CorrelatorSettings().partitions)
    parser.add_argument("--store", default="rocksdb")
    parser.add_argument("--event-loop", default=CorrelatorSettings().event_loop)
    parser.add_argument("--impls", default="floor,faust")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--logs", type=Path, help="keep each worker's log here")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of the product: its correlator runs too, as 'baseline'",
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the workers")
    parser.add_argument("--nice", type=int, default=0, help="the workers' niceness")
    args = parser.parse_args()
    opts = Options(
        partitions=args.partitions,
        store=args.store,
        event_loop=args.event_loop,
        lag=args.lag,
        early=args.early,
        warmup=args.warmup,
        seconds=args.seconds,
        profile=args.profile,
        logs=args.logs,
        env=dict(item.split("=", 1) for item in args.env),
        baseline=args.baseline,
        nice=args.nice,
    )
    print(
        f"store={opts.store} loop={opts.event_loop} partitions={opts.partitions} "
        f"nice={opts.nice} {opts.env}"
    )
    with LocalKafka(num_partitions=INPUT_PARTITIONS) as kafka:
        results: dict[tuple[str, str], list[Measured]] = {}
        impls = args.impls.split(",") + (["baseline"] if args.baseline else [])
        for _ in range(args.rounds):
            for label, rate in (("steady", args.rate), ("saturated", args.saturate)):
                if not rate:
                    continue
                for impl in impls:
                    m = await measure(kafka, impl, rate, opts, label)
                    results.setdefault((impl, label), []).append(m)
                    print_row(m, label)
        _print_ratios(results)
        if args.entries:
            await recovery(kafka, args.entries, opts.partitions)


def _print_ratios(results: dict[tuple[str, str], list[Measured]]) -> None:
    for label in ("steady", "saturated"):
        floor = results.get(("floor", label))
        for impl in ("faust", "baseline"):
            worker = results.get((impl, label))
            if not worker or not floor:
                continue
            ratio = statistics.median(m.cpu_us_per_join for m in worker) / statistics.median(
                m.cpu_us_per_join for m in floor
            )
            print(f"{label}: CPU per join, {impl} worker / floor = {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
