"""Send pipeline benchmark: Kafka -> sender -> simulator -> results on Kafka, beside its floors.

For each SMPP window size, on one local broker and one ``smsc-gateway simulate`` process
(its rate limit lifted), three measurements one after the other, each over N single-part
send requests (the same JSON) on fresh 3-partition topics:

- (a) the Kafka floor: a plain aiokafka consume -> produce loop (``bench/floor_kafka.py``,
  its own process): the sender's consumer and producer settings, the request parsed, one
  result of the sender's shape and size out per request, offsets committed after the acks;
- (b) the SMPP floor: the project's ``SmppClient`` alone (``bench/smpp_clients.py project``,
  its own process) submitting the SUBMIT_SMs the sender's composition made beforehand, with
  ``window`` of them outstanding;
- (c) the pipeline: ``smsc-gateway sender`` (its own process) draining the requests through
  the simulator and publishing one result per request (composition, per-key order, guards,
  pacing with the rate gate far above the load, the exposure bound, idempotency).

Each is measured from the moment 10 % of its results (answers for (b)) are in to the moment
all are, so process start, the group join and the bind are left out:

- throughput: results (submits) per second;
- CPU: microseconds of CPU time (user + system, from /proc) per result of the one process
  doing the work: the floor process for (a), the client process for (b), the sender for
  (c). The broker, the simulator and this script's own producer and consumer are not
  counted; the simulator's CPU is shown beside (b) and (c).

The figure to watch is ``c ÷ (a + b)``: what the pipeline costs per result over what its
two hops cost on their own.

Run: ``make bench`` or ``.venv/bin/python bench/send_pipeline.py [--count N]
[--windows 1,64,512] [--brokers 1,3] [--profile PATH] [--py-spy DIR]``: ``--brokers 3`` runs
on the local three-broker cluster (replication factor 3, ``min.insync.replicas`` 2), ``1,3``
on a single broker and then on the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port
from gateway.localkafka import LocalKafka, LocalKafkaCluster, RunningKafka

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = b'"outcome":"accepted"'


@dataclass(frozen=True, slots=True)
class Measured:
    """One measurement: rate, CPU of the working process, and what came out."""

    per_second: float
    cpu_us: float
    simulator_cpu_us: float | None = None
    accepted: int | None = None
    mean_bytes: float | None = None
    gc: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    brokers: int
    window: int
    count: int
    kafka: Measured
    smpp: Measured
    pipeline: Measured

    @property
    def ratio(self) -> float:
        return self.pipeline.cpu_us / (self.kafka.cpu_us + self.smpp.cpu_us)


@dataclass(frozen=True, slots=True)
class Options:
    count: int
    profile: str | None
    py_spy: Path | None


def request(run: str, i: int, prefix: str = "+7902") -> bytes:
    """Send request ``i`` of ``run``: single-part GSM text, one recipient, no report."""
    return orjson.dumps(
        {
            "schema": "smsc.send-request/1",
            "request_id": f"{run}-{i}",
            "recipients": [f"{prefix}{i:07d}"],
            "text": "Benchmark message",
            "registered_delivery": False,
        }
    )


async def produce(
    bootstrap: str, topics: Sequence[str], count: int, run: str, prefix: str = "+7902"
) -> None:
    """The same ``count`` requests to each of ``topics``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for i in range(count):
            value = request(run, i, prefix)
            for topic in topics:
                await producer.send(topic, value, key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def measure(
    bootstrap: str,
    topic: str,
    count: int,
    pids: Sequence[int],
    at_mark: Callable[[], Awaitable[object]] | None = None,
) -> list[Measured]:
    """Read ``count`` results from ``topic``; rate and CPU of each of ``pids`` per result.

    ``at_mark`` is awaited once 10 % of the results are in, when the measurement starts."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen = accepted = size = 0
    start: tuple[float, int, list[float]] | None = None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for m in messages:
                    seen += 1
                    size += len(m.value)
                    accepted += ACCEPTED in m.value
            if start is None and seen >= count // 10:
                start = (time.perf_counter(), seen, [cpu_seconds(p) for p in pids])
                if at_mark is not None:
                    await at_mark()
        end = (time.perf_counter(), [cpu_seconds(p) for p in pids])
    finally:
        await consumer.stop()
    assert start is not None
    n = count - start[1]
    rate = n / (end[0] - start[0])
    return [
        Measured(rate, (e - s) * 1e6 / n, accepted=accepted, mean_bytes=size / seen)
        for s, e in zip(start[2], end[1], strict=True)
    ]


def gateway_env(kafka: RunningKafka, run: str, window: int, smpp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_TOPICS_SEND": f"bench.send.{run}",
        "GATEWAY_TOPICS_SEND_PRIORITY": f"bench.priority.{run}",
        "GATEWAY_TOPICS_SEND_RESULTS": f"bench.results.{run}",
        "GATEWAY_SMPP_HOSTS": f"127.0.0.1:{smpp_port}",
        "GATEWAY_SMPP_SYSTEM_ID": "gateway",
        "GATEWAY_SMPP_PASSWORD": "bench",
        "GATEWAY_SMPP_SOURCE_ADDR": "Bench",
        "GATEWAY_SMPP_WINDOW": str(window),
        "GATEWAY_SENDER_MAX_IN_FLIGHT": str(max(1000, 2 * window)),
        "GATEWAY_SENDER_GROUP_ID": f"bench-{run}",
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(free_port()),
        "GATEWAY_SIMULATOR_PORT": str(smpp_port),
        "GATEWAY_SIMULATOR_ACCOUNTS": "gateway:bench",
        "GATEWAY_SIMULATOR_RECORD_SUBMITS": "false",
        # This benchmark measures the pipeline's own cost, not the provider's rate limit.
        "GATEWAY_SIMULATOR_RATE_LIMIT_PER_SECOND": "",
        "GATEWAY_RATE_PER_SECOND": "1000000",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it is still there a minute later."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 60.0)
    except TimeoutError:
        process.kill()
        await process.wait()
    if process.returncode != 0:
        print(f"warning: process {process.pid} exited with {process.returncode}")


async def kafka_floor(kafka: RunningKafka, run: str, count: int) -> Measured:
    """(a): the plain consume -> produce loop as its own process."""
    source, target = f"bench.floor-in.{run}", f"bench.floor-out.{run}"
    floor = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "floor_kafka.py"),
        kafka.bootstrap_servers,
        source,
        target,
        f"bench-floor-{run}",
        str(count),
        stdin=asyncio.subprocess.PIPE,
    )
    assert floor.stdin is not None
    try:
        (measured,) = await measure(kafka.bootstrap_servers, target, count, [floor.pid])
        # It exits once its last offsets are committed and its standard input is closed.
        floor.stdin.close()
        await asyncio.wait_for(floor.wait(), 30.0)
    finally:
        await stop(floor)
    return measured


async def smpp_floor(
    env: dict[str, str], port: int, window: int, count: int, simulator: int
) -> Measured:
    """(b): the project's SmppClient alone, pre-composed submits, as its own process."""
    sim_before = cpu_seconds(simulator)
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "smpp_clients.py"),
        "project",
        f"--port={port}",
        f"--window={window}",
        f"--count={count}",
        "--prefix=+7903",  # not the pipeline's numbers: the simulator's duplicate rule
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await client.communicate()
    assert client.returncode == 0, f"SMPP floor exited with {client.returncode}"
    report = orjson.loads(out.splitlines()[-1])
    measured = int(report["measured"])
    return Measured(
        measured / report["seconds"],
        report["cpu_seconds"] * 1e6 / measured,
        simulator_cpu_us=(cpu_seconds(simulator) - sim_before) * 1e6 / count,
        accepted=int(report["submits"]) - int(report["refused"]),
    )


def py_spy_binary() -> str:
    for candidate in (
        Path(sys.executable).parent / "py-spy",
        ROOT / ".venv-peers" / "bin" / "py-spy",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: run `bench/peers.py --setup` (installs it)")
    return found


async def attach_py_spy(pid: int, out: Path) -> asyncio.subprocess.Process:
    """Sample ``pid`` 100 times a second, Python and C frames (--native: the garbage
    collector shows), into folded stacks with line numbers (``bench/profile_report.py``)."""
    return await asyncio.create_subprocess_exec(
        py_spy_binary(),
        "record",
        "--pid",
        str(pid),
        "--native",
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def pipeline(env: dict[str, str], options: Options, window: int, simulator: int) -> Measured:
    """(c): ``smsc-gateway sender`` as its own process (sampled by py-spy over the measured
    interval with ``--py-spy``)."""
    profiler = ["-m", "cProfile", "-o", f"{options.profile}.w{window}"] if options.profile else []
    sender = await asyncio.create_subprocess_exec(
        sys.executable, *profiler, "-m", "gateway", "sender", env=env
    )
    spies: list[asyncio.subprocess.Process] = []

    async def spy() -> None:
        assert options.py_spy is not None
        options.py_spy.mkdir(parents=True, exist_ok=True)
        out = options.py_spy / f"sender.w{window}.txt"
        spies.append(await attach_py_spy(sender.pid, out))

    bootstrap, results = env["GATEWAY_KAFKA_BOOTSTRAP_SERVERS"], env["GATEWAY_TOPICS_SEND_RESULTS"]
    at_mark = spy if options.py_spy is not None else None
    try:
        own, sim = await measure(
            bootstrap, results, options.count, [sender.pid, simulator], at_mark
        )
        collected = await gc_summary(int(env["GATEWAY_HTTP_PORT"]))
    finally:
        for process in spies:  # py-spy writes its profile on SIGINT
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 60)
        await stop(sender)  # first, so it can unbind from a simulator that is still there
    return Measured(
        own.per_second,
        own.cpu_us,
        sim.cpu_us,
        accepted=own.accepted,
        mean_bytes=own.mean_bytes,
        gc=collected,
    )


async def gc_summary(port: int) -> str:
    """The sender's garbage collections since it started (count, mean and total pause by
    generation) and its resident memory, from its ``/metrics``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("smsc_gc_pause_seconds_count", "smsc_gc_pause_seconds_sum")):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
        elif line.startswith("process_resident_memory_bytes"):
            values["rss"] = float(line.rsplit(" ", 1)[1])
    parts = []
    for generation in range(3):
        label = f'{{generation="{generation}"}}'
        count = values.get(f"smsc_gc_pause_seconds_count{label}", 0.0)
        total = values.get(f"smsc_gc_pause_seconds_sum{label}", 0.0)
        mean = total / count * 1e3 if count else 0.0
        parts.append(f"gen{generation} {count:.0f} × {mean:.2f} ms = {total * 1e3:.0f} ms")
    return "; ".join(parts) + f"; resident {values.get('rss', 0.0) / 2**20:.0f} MiB"


async def one_window(kafka: RunningKafka, brokers: int, window: int, options: Options) -> Row:
    run = uuid.uuid4().hex[:8]
    smpp_port = free_port()
    env = gateway_env(kafka, run, window, smpp_port)
    send_topics = [env["GATEWAY_TOPICS_SEND"], f"bench.floor-in.{run}"]
    outputs = [env["GATEWAY_TOPICS_SEND_RESULTS"], f"bench.floor-out.{run}"]
    kafka.create_topics([*send_topics, *outputs, env["GATEWAY_TOPICS_SEND_PRIORITY"]], 3)
    await produce(kafka.bootstrap_servers, send_topics, options.count, run)
    floor = await kafka_floor(kafka, run, options.count)
    simulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "simulate", env=env, stdout=asyncio.subprocess.PIPE
    )
    assert simulator.stdout is not None
    await simulator.stdout.readline()  # "SMPP simulator listening on ..."
    try:
        hop = await smpp_floor(env, smpp_port, window, options.count, simulator.pid)
        full = await pipeline(env, options, window, simulator.pid)
    finally:
        await stop(simulator)
    return Row(brokers, window, options.count, floor, hop, full)


def report(rows: Sequence[Row]) -> None:
    print(
        "| brokers | window | requests | (a) Kafka floor results/s | (a) µs/result "
        "| (b) SMPP floor submits/s | (b) µs/submit | (c) pipeline results/s "
        "| (c) sender µs/result | simulator µs/result in (b), (c) | c ÷ (a + b) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        a, b, c = r.kafka, r.smpp, r.pipeline
        print(
            f"| {r.brokers} | {r.window} | {r.count} | {a.per_second:,.0f} | {a.cpu_us:,.0f} "
            f"| {b.per_second:,.0f} | {b.cpu_us:,.0f} | {c.per_second:,.0f} | {c.cpu_us:,.0f} "
            f"| {b.simulator_cpu_us or 0:,.0f}, {c.simulator_cpu_us or 0:,.0f} "
            f"| {r.ratio:.2f} |"
        )
    print()
    for r in rows:
        a, b, c = r.kafka, r.smpp, r.pipeline
        print(
            f"{r.brokers} broker(s), window {r.window}: accepted (b) {b.accepted}/{r.count}, "
            f"(c) {c.accepted}/{r.count}; "
            f"mean result size (a) {a.mean_bytes or 0:.0f} B, (c) {c.mean_bytes or 0:.0f} B"
        )
        print(f"window {r.window}: the sender's garbage collections: {c.gc}")
    base = rows[0].pipeline.per_second
    print(
        "pipeline throughput relative to the first row: "
        + ", ".join(f"{r.brokers}b w{r.window}={r.pipeline.per_second / base:.2f}x" for r in rows)
    )
    print(
        "CPU counted: (a) the floor process, (b) the SmppClient process, (c) the sender "
        "process; not the broker, the simulator, nor this script."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--windows", default="1,64,512")
    parser.add_argument("--brokers", default="1", help="1, 3 (the cluster) or 1,3")
    parser.add_argument("--profile", help="write a cProfile of the sender to PROFILE.w<window>")
    parser.add_argument(
        "--py-spy", type=Path, help="sample the sender with py-spy into DIR/sender.w<window>.txt"
    )
    args = parser.parse_args()
    options = Options(args.count, args.profile, args.py_spy)
    windows = [int(w) for w in args.windows.split(",")]
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    rows = []
    for brokers in (int(b) for b in args.brokers.split(",")):
        kafka = LocalKafka(num_partitions=3) if brokers == 1 else LocalKafkaCluster()
        with kafka:
            kafka.start()
            for w in windows:
                load = Path("/proc/loadavg").read_text().strip()
                print(f"{brokers} broker(s), window {w}: load {load}", flush=True)
                rows.append(asyncio.run(one_window(kafka, brokers, w, options)))
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}\n")
    report(rows)
    if options.py_spy is not None:
        print("(py-spy was sampling the sender, pausing it 100 times a second: not a figure)")


if __name__ == "__main__":
    main()
