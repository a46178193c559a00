"""Ingress benchmark: webhook callbacks per second with real publishing, against a bare
aiohttp handler that publishes nothing, side by side in one run; and latency at a fixed rate.

Every server is its own process; the load comes from other processes:

- throughput: ``wrk`` (one thread, N connections, a Lua script cycling through signed status
  callbacks) against the bare handler, ``smsc-gateway ingress``, and the ingress's HTTP
  server and handler with a publisher that does nothing ("kafkaless"), in turn, several
  rounds, alternating; each on every event loop of ``--loops`` (uvloop, the ingress's
  default, and asyncio's), so the ratio is given against the bare handler on both; the
  median requests/s of each and their ratios;
- latency: an open-loop generator (a separate Python process: a minimal HTTP/1.1 client on
  keep-alive connections, so that its own cost stays small) sends at a fixed rate (1,000
  requests/s by default), each request at its scheduled time, and measures from that
  scheduled time to the answer, so a stall is not hidden by the generator waiting for it
  (no coordinated omission); the first two seconds are warm-up;
- where the time goes: the server processes' CPU per request during the wrk runs (from
  /proc), and in this process the CPU per callback of the handler with a publisher that
  does nothing, and of one acknowledged publish.

The ingress runs with its defaults (sha1 signature checked, idempotent producer, acks=all)
against a local single-node broker (``gateway.localkafka``) on the same machine.

Run: ``.venv/bin/python bench/ingress.py [--seconds 10] [--rounds 3] [--connections 64]
[--rate 1000] [--latency-seconds 20] [--loops uvloop,asyncio]`` (needs ``wrk``:
``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port
from gateway.config import Settings
from gateway.ingress.handler import CallbackHandler
from gateway.ingress.health import WriteHealth
from gateway.ingress.loop import loop_factory
from gateway.ingress.metrics import IngressMetrics
from gateway.ingress.params import CallbackRequest
from gateway.ingress.server import IngressServer
from gateway.kafka.batching import BatchingPublisher
from gateway.kafka.client import KafkaPublisher
from gateway.kafka.records import Publisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.simulator.webhook_request import HandlerUrl, build_request, status_notice

SECRET = "bench-secret"  # noqa: S105 - a benchmark's own test secret
PATH = "/smsc/callback"
CONTENT_TYPE = "application/x-www-form-urlencoded"
WARM_UP_SECONDS = 2.0
LUA = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end
"""


def signed_bodies(count: int) -> list[str]:
    """Status callbacks as the provider posts them (windows-1251, sha1), distinct ids."""
    handler = HandlerUrl.parse(f"http://bench{PATH}?sha1={SECRET}")
    notices = (
        status_notice(str(200_000_000 + i), f"7916{i:07d}", 1, ts=1_700_000_000 + i,
                      cost="1.95", cnt=1, flag=0, type=0)
        for i in range(count)
    )  # fmt: skip
    return [build_request(handler, n).body.decode("ascii") for n in notices]


# --- the bare handler --------------------------------------------------------------------


def serve_bare(port: int, loop_name: str) -> None:
    """An aiohttp handler that reads the body and answers 200; nothing else. On the named
    event loop, chosen as the ingress chooses its own."""

    async def callback(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="OK\n")

    app = web.Application()
    app.router.add_post(PATH, callback)
    factory = loop_factory(loop_name) or asyncio.new_event_loop
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=factory())


def serve_kafkaless(port: int, loop_name: str) -> None:
    """The ingress's own HTTP server and handler (sha1 checked, event built and serialized)
    with a publisher that does nothing: the ingress's cost without Kafka, over HTTP."""

    async def serve() -> None:
        settings = Settings()
        metrics = Metrics()
        health = WriteHealth(5.0)
        health.succeeded(time.monotonic())
        ingress = dataclasses.replace(settings.ingress, secret=SECRET, host="127.0.0.1", port=port)
        handler = CallbackHandler(
            ingress,
            settings.topics,
            NullPublisher(),
            metrics=metrics,
            ingress_metrics=IngressMetrics(metrics.registry),
            health=health,
        )
        server = IngressServer(ingress, handler, metrics, lambda: (True, "ready"))
        await server.start()
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
        runner.run(serve())


# --- the open-loop generator -------------------------------------------------------------


async def open_loop(url: str, rate: float, seconds: float, bodies: list[str]) -> dict[str, Any]:
    """Requests at fixed times over a pool of keep-alive connections (a new one when none is
    idle); latency from each request's scheduled time to its answer."""
    host, port, path = parse_url(url)
    pool = Pool(host, port, path)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    tasks = []
    cpu_before = time.process_time()
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pool.request(bodies[i % len(bodies)].encode(), scheduled)))
    results = await asyncio.gather(*tasks)
    cpu_us = (time.process_time() - cpu_before) * 1e6 / len(results)
    pool.close()
    kept = [r for r in results if r[0] >= start + WARM_UP_SECONDS]
    return summarize(kept, seconds) | {"connections": pool.opened, "generator_cpu_us": cpu_us}


def parse_url(url: str) -> tuple[str, int, str]:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path


class Pool:
    """A minimal HTTP/1.1 client: cheap enough not to be what is measured."""

    def __init__(self, host: str, port: int, path: str, limit: int = 64) -> None:
        self._address = (host, port)
        self._slots = asyncio.Semaphore(limit)  # requests beyond it wait, their clock running
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        )
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []
        self.opened = 0

    async def request(self, body: bytes, scheduled: float) -> tuple[float, float, int]:
        async with self._slots:
            status = await self._exchange(body)
        return scheduled, asyncio.get_running_loop().time() - scheduled, status

    async def _exchange(self, body: bytes) -> int:
        try:
            reader, writer = self._idle.pop() if self._idle else await self._connect()
            writer.write(f"{self._head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            status = int(head.split(b" ", 2)[1])
            self._idle.append((reader, writer))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status = 0
        return status

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(*self._address)
        self._all.append(writer)
        self.opened += 1
        return reader, writer

    def close(self) -> None:
        for writer in self._all:
            writer.close()


def summarize(results: list[tuple[float, float, int]], seconds: float) -> dict[str, Any]:
    latencies = sorted(r[1] * 1000 for r in results)
    q = statistics.quantiles(latencies, n=1000, method="inclusive")
    return {
        "requests": len(results),
        "not_200": sum(1 for r in results if r[2] != 200),
        "rate": len(results) / (seconds - WARM_UP_SECONDS),
        "p50_ms": q[499],
        "p99_ms": q[989],
        "p999_ms": q[998],
        "max_ms": latencies[-1],
    }


# --- where the time goes (in this process, no HTTP) -------------------------------------


class NullPublisher:
    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        return None


async def components(kafka: LocalKafka, bodies: list[str]) -> dict[str, float]:
    """CPU microseconds per callback of the handler alone (a publisher that does nothing) and
    of one acknowledged publish to the broker (64 at a time, as wrk's connections)."""
    settings = Settings()
    metrics = Metrics()
    health = WriteHealth(5.0)
    health.succeeded(time.monotonic())
    handler = CallbackHandler(
        dataclasses.replace(settings.ingress, secret=SECRET),
        settings.topics,
        NullPublisher(),
        metrics=metrics,
        ingress_metrics=IngressMetrics(metrics.registry),
        health=health,
    )
    requests = [CallbackRequest("POST", b"", body.encode(), CONTENT_TYPE) for body in bodies]
    started = time.process_time()
    for request in requests:
        await handler.handle(request, "127.0.0.1")
    handler_us = (time.process_time() - started) * 1e6 / len(requests)
    kafka_settings = dataclasses.replace(settings.kafka, bootstrap_servers=kafka.bootstrap_servers)
    result = {"handler_us": handler_us}
    plain = KafkaPublisher(kafka_settings, metrics, linger_ms=0)
    batching = BatchingPublisher(kafka_settings, metrics, linger_ms=0)  # as the ingress role
    for name, publisher in (("plain_us", plain), ("batching_us", batching)):
        await publisher.start()
        try:
            result[name] = await publish_cost(publisher, len(requests))
        finally:
            await publisher.stop()
    result["records_per_batch"] = batching.records / max(batching.batches, 1)
    return result


async def publish_cost(publisher: Publisher, count: int) -> float:
    value = b'{"event": "' + b"x" * 700 + b'"}'  # about the size of a dlr event
    window = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with window:
            await publisher.publish("smsc.dlr.v1", str(i).encode(), value)

    await asyncio.gather(*(one(i) for i in range(count // 4)))  # warm-up
    started = time.process_time()
    await asyncio.gather(*(one(i) for i in range(count)))
    return (time.process_time() - started) * 1e6 / count


# --- the orchestration -------------------------------------------------------------------


def wrk(url: str, seconds: int, connections: int, script: Path, bodies: Path) -> tuple[float, int]:
    """Requests/s and the count of answers other than 2xx/3xx."""
    env = os.environ | {"BENCH_BODIES": str(bodies)}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def start_ingress(
    kafka: LocalKafka, port: int, linger: float, loop_name: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_INGRESS_HOST": "127.0.0.1",
        "GATEWAY_INGRESS_PORT": str(port),
        "GATEWAY_INGRESS_SECRET": SECRET,
        "GATEWAY_INGRESS_PUBLISH_LINGER_SECONDS": str(linger),
        "GATEWAY_INGRESS_EVENT_LOOP": loop_name,
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "gateway", "ingress"], env=env)


def start_helper(kind: str, port: int, loop_name: str) -> subprocess.Popen[bytes]:
    """The bare handler, or the ingress without Kafka, in a process of its own."""
    command = [sys.executable, __file__, f"--{kind}-server", str(port), "--loop", loop_name]
    return subprocess.Popen(command)


def wait_until_up(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port)):
                time.sleep(0.5)
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def latency(url: str, rate: float, seconds: float, bodies: Path) -> dict[str, Any]:
    """The open-loop run against ``url``; for the ingress also how long its publishes took
    in that run (from its own histogram), to tell Kafka's share of the tail."""
    command = [sys.executable, __file__, "--load", url, "--rate", str(rate)]
    command += ["--latency-seconds", str(seconds), "--bodies", str(bodies)]
    before = publish_buckets(url)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = dict(json.loads(out))
    after = publish_buckets(url)
    if after:
        total = after["+Inf"] - before["+Inf"]
        result["publishes_over_ms"] = {
            le: 1 - (after[le] - before[le]) / total for le in ("0.01", "0.05", "0.1")
        }
    return result


def publish_buckets(url: str) -> dict[str, float]:
    """The ingress's publish latency histogram (cumulative counts by bucket), {} elsewhere."""
    metrics_url = url.replace(PATH, "/metrics")
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return {}
    found = re.findall(
        r'smsc_ingress_publish_latency_seconds_bucket\{kind="status",le="([^"]+)"\} (\S+)', text
    )
    return {le: float(count) for le, count in found}


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-ingress-"))
    bodies, script = work / "bodies.txt", work / "post.lua"
    bodies.write_text("\n".join(signed_bodies(args.bodies)) + "\n")
    script.write_text(LUA)
    with LocalKafka(num_partitions=3) as kafka:
        kafka.start()
        kafka.create_topics(["smsc.dlr.v1", "smsc.dead-letter.v1"], partitions=3)
        processes: dict[str, subprocess.Popen[bytes]] = {}
        ports: dict[str, int] = {}
        for loop_name in args.loops.split(","):
            for kind in ("bare", "ingress", "kafkaless"):
                name = f"{kind}-{loop_name}"
                ports[name] = free_port()
                processes[name] = (
                    start_ingress(kafka, ports[name], args.linger, loop_name)
                    if kind == "ingress"
                    else start_helper(kind, ports[name], loop_name)
                )
        try:
            for port in ports.values():
                wait_until_up(port)
            servers = [
                Server(n, f"http://127.0.0.1:{ports[n]}{PATH}", p.pid) for n, p in processes.items()
            ]
            result = measure(args, servers, script, bodies)
            if args.rounds:
                sample = signed_bodies(args.bodies)[:5000]
                result["components"] = asyncio.run(components(kafka, sample))
            report(result, args)
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(30)


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int


def measure(
    args: argparse.Namespace, servers: list[Server], script: Path, bodies: Path
) -> dict[str, Any]:
    """wrk rounds alternating between the servers, then the open-loop latency of each."""
    for server in servers:  # warm-up: connections, the producer's first batches
        wrk(server.url, 3, args.connections, script, bodies)
    if args.rounds == 0:
        lat = {
            s.name: latency(s.url, args.rate, args.latency_seconds, bodies)
            for s in servers
            if not s.name.startswith("kafkaless-")
        }
        return {"rps": {}, "cpu": {}, "not_2xx": 0, "latency": lat}
    rps: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    bad = 0
    for _ in range(args.rounds):
        for server in servers:
            before = cpu_seconds(server.pid)
            value, not_ok = wrk(server.url, args.seconds, args.connections, script, bodies)
            used = cpu_seconds(server.pid) - before
            cpu[server.name].append(used * 1e6 / (value * args.seconds))
            rps[server.name].append(value)
            bad += not_ok
    lat = {
        s.name: latency(s.url, args.rate, args.latency_seconds, bodies)
        for s in servers
        if not s.name.startswith("kafkaless-")
    }
    return {"rps": rps, "cpu": cpu, "not_2xx": bad, "latency": lat}


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    if result["rps"]:
        report_throughput(result, args)
    print(f"open loop at {args.rate:,.0f} req/s for {args.latency_seconds:.0f} s (2 s warm-up):")
    for name, lat in result["latency"].items():
        print(
            f"  {name}: {lat['requests']} requests ({lat['rate']:,.0f}/s), not 200: "
            f"{lat['not_200']}, p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
            f"p99.9 {lat['p999_ms']:.2f} ms, max {lat['max_ms']:.2f} ms "
            f"({lat['connections']} connections, "
            f"generator CPU {lat['generator_cpu_us']:.0f} us/request)"
        )
        if "publishes_over_ms" in lat:
            over = lat["publishes_over_ms"]
            print(
                f"    its Kafka publishes in that run: {over['0.01']:.1%} took over 10 ms, "
                f"{over['0.05']:.1%} over 50 ms, {over['0.1']:.1%} over 100 ms"
            )


def report_throughput(result: dict[str, Any], args: argparse.Namespace) -> None:
    rps, cpu = result["rps"], result["cpu"]
    medians = {name: statistics.median(values) for name, values in rps.items()}
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds alternating "
        f"(ingress linger {args.linger * 1000:g} ms):"
    )
    for name, values in rps.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        per_request = statistics.median(cpu[name])
        print(f"  {name}: {shown} req/s; median {medians[name]:,.0f}; "
              f"server CPU {per_request:,.0f} us/request")  # fmt: skip
    for ingress in (n for n in medians if not n.startswith("bare-")):
        ratios = ", ".join(
            f"/{bare} {medians[ingress] / medians[bare]:.2f}"
            for bare in medians
            if bare.startswith("bare-")
        )
        print(f"  ratio {ingress}{ratios}")
    print(f"  answers other than 2xx: {result['not_2xx']}")
    parts = result["components"]
    print(
        f"  in-process CPU per callback (asyncio loop): handler without Kafka "
        f"{parts['handler_us']:.0f} us; one acknowledged publish, 64 at a time: "
        f"KafkaPublisher {parts['plain_us']:.0f} us, BatchingPublisher "
        f"{parts['batching_us']:.0f} us ({parts['records_per_batch']:.1f} records/batch)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="0: the latency test only")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--linger", type=float, default=0.0, help="the ingress's linger, s")
    parser.add_argument("--bodies", default=20000, help="distinct callbacks (a file in --load)")
    parser.add_argument(
        "--loops", default="uvloop,asyncio", help="event loops to run both servers on"
    )
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kafkaless-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        serve_bare(args.bare_server, args.loop)
    elif args.kafkaless_server:
        serve_kafkaless(args.kafkaless_server, args.loop)
    elif args.load:
        lines = Path(args.bodies).read_text().split()
        print(json.dumps(asyncio.run(open_loop(args.load, args.rate, args.latency_seconds, lines))))
    else:
        args.bodies = int(args.bodies)
        run(args)


if __name__ == "__main__":
    main()
