"""Peers benchmark: the project's SMPP client and the gateway beside other SMPP software.

Against one ``smsc-gateway simulate`` process (its own process; its rate limit, duplicate and
flood rules off, so nothing is refused or held back: check the "refused" columns):

1. SMPP clients: N single-part messages at window W through the project's ``SmppClient``,
   smpp34, python-smpplib (pipelined) and aiosmpplib (receipt store off), each in its own
   process (``bench/smpp_clients.py``, which says how each is driven); client CPU
   µs/submit (user + system from /proc, every thread) and submits/s, from 10 % of the
   answers to all of them.
2. End to end, N messages at window W:
   - Kannel (Debian's 1.4.5): ``sendsms`` over HTTP -> smsbox -> bearerbox -> SMPP to the
     simulator (``max-pending-submits`` = W, see ``bench/kannel.py``), once with messages
     queued in memory only and once with bearerbox's file store; measured from 10 % of the
     messages accepted by the simulator to all of them (bearerbox's ``status.xml``); CPU of
     bearerbox + smsbox;
   - the gateway: requests produced to Kafka while ``smsc-gateway sender`` runs -> SMPP to
     the simulator -> one result per request on Kafka (acks=all, offsets committed after);
     measured from 10 % of the results on Kafka to all; CPU of the sender process.
   In both the client producing the load (this script's HTTP client, its Kafka producer)
   is not counted, nor the broker, nor the simulator (shown apart).

The peers are not project dependencies and are never committed: ``--setup`` installs them
(a ``.venv-peers`` virtualenv with the project, smpp34, smpplib, aiosmpplib and py-spy from
PyPI; ``apt-get install kannel``).

Run: ``.venv/bin/python bench/peers.py --setup`` once, then
``.venv/bin/python bench/peers.py [--count N] [--window W] [--skip-kannel] [--skip-gateway]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kannel
from bench.benchkit import cpu_seconds, free_port
from bench.send_pipeline import gateway_env, measure, produce, stop
from gateway.localkafka import LocalKafka

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".venv-peers"
PEER_PACKAGES = ("smpp34==1.5.0", "smpplib==2.2.4", "aiosmpplib==0.7.4", "py-spy==0.4.3")
CLIENTS = ("project", "smpp34", "smpplib", "aiosmpplib")
SYSTEM_ID, PASSWORD = "gateway", "bench"


@dataclass(frozen=True, slots=True)
class ClientRow:
    client: str
    version: str
    per_second: float
    cpu_us: float
    refused: int
    simulator_cpu_us: float


@dataclass(frozen=True, slots=True)
class EndToEnd:
    system: str
    per_second: float
    cpu_us: float
    refused: int
    simulator_cpu_us: float
    counted: str
    script_cpu_us: float  # this script: the load it generates and what it reads to measure


# -- setup -----------------------------------------------------------------------------------


def setup() -> None:
    """Install the peers: a virtualenv from PyPI, and Kannel from Debian."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    constraints = ["-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, *constraints, "-e", str(ROOT), *PEER_PACKAGES], check=True)
    if not kannel.installed():
        apt = ["apt-get", "install", "-y", "-q", "kannel"]
        environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(apt, env=environment, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(apt, env=environment, check=True)


# -- the simulator ---------------------------------------------------------------------------


def simulator_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "GATEWAY_SIMULATOR_PORT": str(port),
        "GATEWAY_SIMULATOR_ACCOUNTS": f"{SYSTEM_ID}:{PASSWORD}",
        "GATEWAY_SIMULATOR_RECORD_SUBMITS": "false",
        # Nothing anyone sends here may be held back or refused by the provider's rules.
        "GATEWAY_SIMULATOR_RATE_LIMIT_PER_SECOND": "",
        "GATEWAY_SIMULATOR_DUPLICATE_WINDOW_SECONDS": "",
        "GATEWAY_SIMULATOR_FLOOD_LIMIT": "",
        "GATEWAY_SIMULATOR_INACTIVITY_TIMEOUT_SECONDS": "",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }


async def start_simulator(port: int) -> asyncio.subprocess.Process:
    simulator = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "simulate",
        env=simulator_env(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert simulator.stdout is not None
    await simulator.stdout.readline()  # "SMPP simulator listening on ..."
    return simulator


# -- 1. SMPP clients -------------------------------------------------------------------------


async def one_client(
    client: str, prefix: str, port: int, simulator: int, args: argparse.Namespace
) -> ClientRow:
    python = sys.executable if client == "project" else str(PEERS_VENV / "bin" / "python")
    before = cpu_seconds(simulator)
    process = await asyncio.create_subprocess_exec(
        python,
        str(ROOT / "bench" / "smpp_clients.py"),
        client,
        f"--port={port}",
        f"--count={args.count}",
        f"--window={args.window}",
        f"--prefix={prefix}",
        f"--system-id={SYSTEM_ID}",
        f"--password={PASSWORD}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    if process.returncode != 0:
        raise RuntimeError(f"{client} exited with {process.returncode}")
    r = orjson.loads(out.splitlines()[-1])
    return ClientRow(
        client,
        r["version"],
        r["measured"] / r["seconds"],
        r["cpu_seconds"] * 1e6 / r["measured"],
        r["refused"],
        (cpu_seconds(simulator) - before) * 1e6 / args.count,
    )


# -- 2. end to end ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    kannel_cpu: float
    script_cpu: float
    sent: int


async def kannel_end_to_end(
    port: int, simulator: int, args: argparse.Namespace, *, store: bool
) -> EndToEnd:
    box = kannel.Kannel(port, SYSTEM_ID, PASSWORD, args.window, store=store)
    async with box:
        sim_before = cpu_seconds(simulator)
        phones = [f"+7920{i:07d}" for i in range(args.count)]
        load = asyncio.create_task(kannel.sendsms_load(box.ports.sendsms, phones))
        mark, end = await _follow_kannel(box, args.count, load)
        refused = await load
        sim = (cpu_seconds(simulator) - sim_before) * 1e6 / args.count
    n = end.sent - mark.sent
    return EndToEnd(
        f"Kannel {kannel_version()}, " + ("file store" if store else "no store"),
        n / (end.at - mark.at),
        (end.kannel_cpu - mark.kannel_cpu) * 1e6 / n,
        refused,
        sim,
        "bearerbox + smsbox",
        (end.script_cpu - mark.script_cpu) * 1e6 / n,
    )


async def _follow_kannel(
    box: kannel.Kannel, count: int, load: asyncio.Task[int]
) -> tuple[Sample, Sample]:
    """Samples at 10 % of the messages sent and at all of them."""
    mark: Sample | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = await kannel.sent(box.ports.admin)
        now = Sample(
            time.perf_counter(),
            sum(cpu_seconds(p) for p in box.pids),
            cpu_seconds(os.getpid()),
            done,
        )
        if mark is None and done >= count // 10:
            mark = now
        if done >= count:
            assert mark is not None
            return mark, now
        if load.done() and load.exception() is not None:
            raise RuntimeError("the sendsms load failed") from load.exception()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"Kannel sent {done} of {count} messages in 600 s")


def kannel_version() -> str:
    out = subprocess.run(
        [str(kannel.BEARERBOX), "--version"], capture_output=True, text=True, check=False
    )
    first = (out.stdout or out.stderr).splitlines()[0]
    return first.split("`")[-1].rstrip("'.")


async def gateway_end_to_end(
    kafka: LocalKafka, port: int, simulator: int, args: argparse.Namespace
) -> EndToEnd:
    run = uuid.uuid4().hex[:8]
    env = gateway_env(kafka, run, args.window, port)
    topics = ["GATEWAY_TOPICS_SEND", "GATEWAY_TOPICS_SEND_PRIORITY", "GATEWAY_TOPICS_SEND_RESULTS"]
    kafka.create_topics([env[t] for t in topics], 3)
    sim_before = cpu_seconds(simulator)
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "sender", env=env
    )
    bootstrap = kafka.bootstrap_servers
    try:
        load = asyncio.create_task(
            produce(bootstrap, [env["GATEWAY_TOPICS_SEND"]], args.count, run, "+7930")
        )
        own, _, script = await measure(
            bootstrap,
            env["GATEWAY_TOPICS_SEND_RESULTS"],
            args.count,
            [sender.pid, simulator, os.getpid()],
        )
        await load
    finally:
        await stop(sender)
    return EndToEnd(
        "smsc-gateway sender",
        own.per_second,
        own.cpu_us,
        args.count - (own.accepted or 0),
        (cpu_seconds(simulator) - sim_before) * 1e6 / args.count,
        "sender",
        script.cpu_us,
    )


# -- the run ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, kafka: LocalKafka | None) -> None:
    port = free_port()
    simulator = await start_simulator(port)
    try:
        rows = [
            await one_client(client, f"+79{10 + i}", port, simulator.pid, args)
            for i, client in enumerate(args.clients.split(","))
        ]
        report_clients(rows, args)
        ends = []
        if not args.skip_kannel:
            for store in (False, True):
                ends.append(await kannel_end_to_end(port, simulator.pid, args, store=store))
        if kafka is not None:
            ends.append(await gateway_end_to_end(kafka, port, simulator.pid, args))
        report_end_to_end(ends, args)
    finally:
        await stop(simulator)


def report_clients(rows: list[ClientRow], args: argparse.Namespace) -> None:
    project = next((r.cpu_us for r in rows if r.client == "project"), None)
    print(f"\nSMPP clients: {args.count} single-part submits each, window {args.window}")
    print(
        "| client | version | submits/s | client CPU µs/submit | × project's CPU "
        "| refused | simulator CPU µs/submit |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        times = f"{r.cpu_us / project:.2f}" if project else "-"
        print(
            f"| {r.client} | {r.version} | {r.per_second:,.0f} | {r.cpu_us:,.1f} | {times} "
            f"| {r.refused} | {r.simulator_cpu_us:,.1f} |",
            flush=True,
        )


def report_end_to_end(ends: list[EndToEnd], args: argparse.Namespace) -> None:
    if not ends:
        return
    print(f"\nEnd to end: {args.count} messages, window {args.window}")
    print(
        "| system | messages/s | CPU µs/message | CPU of | not answered 202 / not accepted "
        "| simulator CPU µs/message | load generator CPU µs/message (not counted) |"
    )
    print("|---|---:|---:|---|---:|---:|---:|")
    for e in ends:
        print(
            f"| {e.system} | {e.per_second:,.0f} | {e.cpu_us:,.0f} | {e.counted} "
            f"| {e.refused} | {e.simulator_cpu_us:,.0f} | {e.script_cpu_us:,.0f} |"
        )
    gateway = [e for e in ends if not e.system.startswith("Kannel")]
    for peer in (e for e in ends if e.system.startswith("Kannel")):
        for own in gateway:
            print(
                f"\ngateway ÷ {peer.system}: {own.per_second / peer.per_second:.2f}× the "
                f"messages/s, {own.cpu_us / peer.cpu_us:.2f}× the CPU per message"
            )
    print(
        "The load generators (HTTP client, Kafka producer: this script, whose CPU also covers "
        "reading the status or the results) are not counted in either."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="install the peers, then exit")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--skip-kannel", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    if not (PEERS_VENV / "bin" / "python").exists() or not kannel.installed():
        raise SystemExit("peers not installed: run `.venv/bin/python bench/peers.py --setup`")
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    if args.skip_gateway:
        asyncio.run(run(args, None))
    else:
        with LocalKafka(num_partitions=3) as kafka:
            kafka.start()
            asyncio.run(run(args, kafka))
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
