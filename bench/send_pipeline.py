"""Send pipeline benchmark: Kafka -> sender -> simulator -> results on Kafka.

For each SMPP window size, N send requests are produced to a fresh topic before the sender
starts; then ``smsc-gateway sender`` (its own process) drains them through
``smsc-gateway simulate`` (another process) and publishes one result per request. Measured
between the moment 10 % of the results are on Kafka and the moment all are, so process start
and the consumer group join are left out:

- throughput: results per second;
- CPU: microseconds of the sender process's CPU time (user + system, from /proc) per result.

Run: ``make bench`` or ``.venv/bin/python bench/send_pipeline.py [--count N] [--windows 1,64,512]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port
from gateway.localkafka import LocalKafka


@dataclass
class Row:
    window: int
    count: int
    per_second: float
    cpu_us_per_message: float
    simulator_cpu_us_per_message: float


async def produce(bootstrap: str, topic: str, count: int, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for i in range(count):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7902{i:07d}"],
                "text": "Benchmark message",
                "registered_delivery": False,
            }
            await producer.send(topic, orjson.dumps(request), key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def measure(
    bootstrap: str, topic: str, count: int, pids: tuple[int, int]
) -> tuple[float, float, float]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen = 0
    start: tuple[float, int, float, float] | None = None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200)
            seen += sum(len(m) for m in batch.values())
            if start is None and seen >= count // 10:
                start = (time.perf_counter(), seen, cpu_seconds(pids[0]), cpu_seconds(pids[1]))
        end = (time.perf_counter(), cpu_seconds(pids[0]), cpu_seconds(pids[1]))
    finally:
        await consumer.stop()
    assert start is not None
    n = count - start[1]
    return n / (end[0] - start[0]), (end[1] - start[2]) * 1e6 / n, (end[2] - start[3]) * 1e6 / n


async def one_window(kafka: LocalKafka, window: int, count: int, profile: str | None) -> Row:
    run = uuid.uuid4().hex[:8]
    send_topic, results_topic = f"bench.send.{run}", f"bench.results.{run}"
    priority_topic = f"bench.priority.{run}"
    kafka.create_topics([send_topic, priority_topic, results_topic], partitions=3)
    await produce(kafka.bootstrap_servers, send_topic, count, run)
    smpp_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_TOPICS_SEND": send_topic,
        "GATEWAY_TOPICS_SEND_PRIORITY": priority_topic,
        "GATEWAY_TOPICS_SEND_RESULTS": results_topic,
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
    simulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "simulate", env=env, stdout=asyncio.subprocess.PIPE
    )
    assert simulator.stdout is not None
    await simulator.stdout.readline()  # "SMPP simulator listening on ..."
    profiler = ["-m", "cProfile", "-o", f"{profile}.w{window}"] if profile else []
    sender = await asyncio.create_subprocess_exec(
        sys.executable, *profiler, "-m", "gateway", "sender", env=env
    )
    try:
        per_second, cpu, sim_cpu = await measure(
            kafka.bootstrap_servers, results_topic, count, (sender.pid, simulator.pid)
        )
    finally:
        # The sender first, so it can unbind from a simulator that is still there.
        for process in (sender, simulator):
            process.send_signal(signal.SIGTERM)
            if await process.wait() != 0:
                print(f"warning: process {process.pid} exited with {process.returncode}")
    return Row(window, count, per_second, cpu, sim_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--windows", default="1,64,512")
    parser.add_argument("--profile", help="write a cProfile of the sender to PROFILE.w<window>")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    with LocalKafka(num_partitions=3) as kafka:
        kafka.start()
        rows = [asyncio.run(one_window(kafka, w, args.count, args.profile)) for w in windows]
    print("| window | requests | results/s | sender CPU µs/result | simulator CPU µs/result |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.window} | {r.count} | {r.per_second:,.0f} | {r.cpu_us_per_message:,.0f} | "
            f"{r.simulator_cpu_us_per_message:,.0f} |"
        )
    base = rows[0].per_second
    print(
        "\nthroughput relative to window",
        rows[0].window,
        ":",
        ", ".join(f"w{r.window}={r.per_second / base:.1f}x" for r in rows),
    )


if __name__ == "__main__":
    main()
