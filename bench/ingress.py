"""Ingress benchmark: the webhook ingress against the handler a developer would write by hand
and against a bare aiohttp handler, side by side in one run; closed loop and open loop.

Three servers, each its own process on the same event loop (``--loops``, uvloop by default,
the ingress's own default), all on the same machine as the local broker:

- **bare**: an aiohttp ``web.Application`` route that reads the body and answers 200. It
  publishes nothing: the floor any aiohttp server pays per request.
- **naive**: what a developer writes by hand: an aiohttp route, ``await request.post()``,
  the sha1 signature checked with hashlib, the form as JSON, ``await
  producer.send_and_wait()`` per request (aiokafka, idempotent, acks=all). aiohttp decodes
  the form as UTF-8, so the windows-1251 text of real callbacks comes out garbled (and a
  signature over it fails): left as it is, it is the peer, not a reference.
- **ingress**: ``smsc-gateway ingress`` with its defaults (sha1 checked, idempotent
  producer, acks=all, linger 0).
- **baseline** (with ``--baseline DIR``): the same ingress run from another checkout (say
  the main branch's work tree), for a before/after in the same run.

Both publishing servers write to the same 3-partition topic layout. The callbacks are
realistic signed status callbacks, form-encoded in windows-1251, as the provider posts them
(``gateway.simulator.webhook_request``), with distinct message ids.

- Closed loop: ``wrk -t1 -c64`` (installed with apt-get if missing) with a Lua script cycling
  through the callbacks, the servers in turn, several rounds; each server's CPU per request
  from /proc (user + system), and the broker's. CPU efficiency is requests per CPU second of
  the server process; the ratios of the ingress's to the others' are the result.
- Open loop: a separate Python process (a minimal HTTP/1.1 client on at most 64 keep-alive
  connections) sends ``--rate`` requests/s (1,000 by default) at fixed times, measuring from
  each request's scheduled time to its answer (no coordinated omission); the first two
  seconds are warm-up. Per server: p50/p99/p99.9, answers other than 200, the server's CPU
  per callback at that rate.

The 1-minute load average is printed with every figure: this machine is shared, and only
same-run ratios mean anything.

Run: ``.venv/bin/python bench/ingress.py [--seconds 10] [--rounds 3] [--connections 64]
[--rate 1000] [--latency-seconds 20] [--loops uvloop] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds, free_port
from gateway.ingress.loop import loop_factory
from gateway.localkafka import LocalKafka
from gateway.simulator.webhook_request import HandlerUrl, build_request, status_notice

SECRET = "bench-secret"  # noqa: S105 - a benchmark's own test secret
PATH = "/smsc/callback"
NAIVE_TOPIC = "naive.dlr"
CONTENT_TYPE = "application/x-www-form-urlencoded"
WARM_UP_SECONDS = 2.0
KINDS = ("bare", "naive", "ingress")
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


def load() -> float:
    return os.getloadavg()[0]


# --- the peers ---------------------------------------------------------------------------


def serve_bare(port: int, loop_name: str) -> None:
    """An aiohttp handler that reads the body and answers 200; nothing else."""

    async def callback(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="OK\n")

    app = web.Application()
    app.router.add_post(PATH, callback)
    factory = loop_factory(loop_name) or asyncio.new_event_loop
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=factory())


def serve_naive(port: int, loop_name: str, bootstrap: str) -> None:
    """The handler a developer would write by hand (see the module's docstring)."""
    producer: AIOKafkaProducer | None = None

    async def callback(request: web.Request) -> web.Response:
        form = await request.post()  # decodes the cp1251 values as UTF-8: the peer's bug
        signed = f"{form.get('id', '')}:{form.get('phone', '')}:{form.get('status', '')}:{SECRET}"
        expected = hashlib.sha1(signed.encode()).hexdigest()  # noqa: S324 - the provider's
        if not hmac.compare_digest(expected, str(form.get("sha1", ""))):
            return web.Response(status=403, text="forbidden\n")
        event = {k: str(v) for k, v in form.items() if k != "sha1"}
        event["received_at"] = datetime.now(UTC).isoformat()
        value = json.dumps(event).encode()
        assert producer is not None
        await producer.send_and_wait(NAIVE_TOPIC, value, key=str(form["id"]).encode())
        return web.Response(text="OK\n")

    async def start_producer(_: web.Application) -> None:
        nonlocal producer
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()

    async def stop_producer(_: web.Application) -> None:
        if producer is not None:
            await producer.stop()

    app = web.Application()
    app.router.add_post(PATH, callback)
    app.on_startup.append(start_producer)
    app.on_cleanup.append(stop_producer)
    factory = loop_factory(loop_name) or asyncio.new_event_loop
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=factory())


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


# --- the orchestration -------------------------------------------------------------------


def ensure_wrk() -> None:
    """wrk from Debian's packages, installed when missing (the benchmark runs as root)."""
    if shutil.which("wrk"):
        return
    print("wrk is missing: installing it with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def wrk(url: str, seconds: int, connections: int, script: Path, bodies: Path) -> tuple[float, int]:
    """Requests/s and the count of answers other than 2xx/3xx."""
    env = os.environ | {"BENCH_BODIES": str(bodies)}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"    wrk socket errors against {url}: {errors.group(1)}")
    return rps, int(bad.group(1)) if bad else 0


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int


def start_server(
    kind: str, kafka: LocalKafka, port: int, loop_name: str, baseline: str | None = None
) -> subprocess.Popen[bytes]:
    if kind in ("ingress", "baseline"):
        # The baseline is the ingress of another checkout: its own tree first on the path.
        tree = str(Path(baseline).resolve()) if kind == "baseline" and baseline else None
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "GATEWAY_INGRESS_HOST": "127.0.0.1",
            "GATEWAY_INGRESS_PORT": str(port),
            "GATEWAY_INGRESS_SECRET": SECRET,
            "GATEWAY_INGRESS_EVENT_LOOP": loop_name,
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        if tree is not None:
            env["PYTHONPATH"] = tree
        return subprocess.Popen([sys.executable, "-m", "gateway", "ingress"], env=env, cwd=tree)
    command = [sys.executable, __file__, f"--{kind}-server", str(port), "--loop", loop_name]
    command += ["--bootstrap", kafka.bootstrap_servers]
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


def closed_loop(
    args: argparse.Namespace, servers: list[Server], broker: int, files: tuple[Path, Path]
) -> dict[str, Any]:
    """wrk rounds alternating between the servers; CPU per request of each and the broker."""
    script, bodies = files
    rps: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    broker_cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    bad = 0
    for _ in range(args.rounds):
        for server in servers:
            before, broker_before = cpu_seconds(server.pid), cpu_seconds(broker)
            value, not_ok = wrk(server.url, args.seconds, args.connections, script, bodies)
            requests = value * args.seconds
            cpu[server.name].append((cpu_seconds(server.pid) - before) * 1e6 / requests)
            broker_cpu[server.name].append((cpu_seconds(broker) - broker_before) * 1e6 / requests)
            rps[server.name].append(value)
            bad += not_ok
    return {"rps": rps, "cpu": cpu, "broker_cpu": broker_cpu, "not_2xx": bad}


def open_loop_run(args: argparse.Namespace, server: Server, bodies: Path) -> dict[str, Any]:
    """The open-loop run against one server, with the server's CPU per callback meanwhile."""
    command = [sys.executable, __file__, "--load", server.url, "--rate", str(args.rate)]
    command += ["--latency-seconds", str(args.latency_seconds), "--bodies", str(bodies)]
    load_before = load()
    before = cpu_seconds(server.pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(server.pid) - before
    result = dict(json.loads(out))
    sent = args.rate * args.latency_seconds
    return result | {"cpu_us": used * 1e6 / sent, "load": (load_before, load())}


def run(args: argparse.Namespace) -> None:
    ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bench-ingress-"))
    bodies, script = work / "bodies.txt", work / "post.lua"
    bodies.write_text("\n".join(signed_bodies(args.bodies)) + "\n")
    script.write_text(LUA)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"run of {started}, load average (1 min) {load():.1f}", flush=True)
    with LocalKafka(num_partitions=3) as kafka:
        kafka.start()
        kafka.create_topics(["smsc.dlr.v1", "smsc.dead-letter.v1", NAIVE_TOPIC], partitions=3)
        assert kafka.pid is not None
        processes: dict[str, subprocess.Popen[bytes]] = {}
        ports: dict[str, int] = {}
        kinds = (*KINDS, "baseline") if args.baseline else KINDS
        for loop_name in args.loops.split(","):
            for kind in kinds:
                name = f"{kind}-{loop_name}"
                ports[name] = free_port()
                processes[name] = start_server(kind, kafka, ports[name], loop_name, args.baseline)
        try:
            for port in ports.values():
                wait_until_up(port)
            servers = [
                Server(n, f"http://127.0.0.1:{ports[n]}{PATH}", p.pid) for n, p in processes.items()
            ]
            for server in servers:  # warm-up: connections, producers, the broker's caches
                wrk(server.url, 3, args.connections, script, bodies)
            if args.rounds:
                report_closed(closed_loop(args, servers, kafka.pid, (script, bodies)), args)
            report_open({s.name: open_loop_run(args, s, bodies) for s in servers}, args)
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(30)
    shutil.rmtree(work, ignore_errors=True)


def report_closed(result: dict[str, Any], args: argparse.Namespace) -> None:
    rps, cpu = result["rps"], result["cpu"]
    print(
        f"closed loop: wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds "
        f"alternating; load average now {load():.1f}"
    )
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, values in rps.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        per_request = ", ".join(f"{v:.0f}" for v in cpu[name])
        broker = statistics.median(result["broker_cpu"][name])
        print(
            f"  {name}: {shown} req/s; server CPU {per_request} us/request "
            f"(median {medians[name]:.0f}); broker CPU {broker:.0f} us/request"
        )
    for loop_name in args.loops.split(","):
        ingress = medians[f"ingress-{loop_name}"]
        for peer in ("naive", "bare", "baseline") if args.baseline else ("naive", "bare"):
            pairs = zip(cpu[f"{peer}-{loop_name}"], cpu[f"ingress-{loop_name}"], strict=True)
            rounds = ", ".join(f"{p / i:.2f}" for p, i in pairs)
            print(
                f"  CPU efficiency, ingress / {peer} ({loop_name}): "
                f"{medians[f'{peer}-{loop_name}'] / ingress:.2f} (rounds: {rounds})"
            )
    print(f"  answers other than 2xx: {result['not_2xx']}")


def report_open(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    seconds = args.latency_seconds
    print(f"open loop at {args.rate:,.0f} callbacks/s for {seconds:.0f} s (2 s warm-up):")
    for name, lat in results.items():
        print(
            f"  {name}: {lat['requests']} requests ({lat['rate']:,.0f}/s), not 200: "
            f"{lat['not_200']}, p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
            f"p99.9 {lat['p999_ms']:.2f} ms, max {lat['max_ms']:.2f} ms; server CPU "
            f"{lat['cpu_us']:.0f} us/callback; load {lat['load'][0]:.1f} -> {lat['load'][1]:.1f} "
            f"({lat['connections']} connections)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="0: the open loop only")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--bodies", default=20000, help="distinct callbacks (a file in --load)")
    parser.add_argument("--loops", default="uvloop", help="event loops to run the servers on")
    parser.add_argument("--baseline", help="a checkout whose ingress runs beside, for comparison")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--naive-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        serve_bare(args.bare_server, args.loop)
    elif args.naive_server:
        serve_naive(args.naive_server, args.loop, args.bootstrap)
    elif args.load:
        lines = Path(args.bodies).read_text().split()
        print(json.dumps(asyncio.run(open_loop(args.load, args.rate, args.latency_seconds, lines))))
    else:
        args.bodies = int(args.bodies)
        run(args)


if __name__ == "__main__":
    main()
