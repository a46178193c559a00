"""Command line: ``python -m gateway.localkafka {fetch,run}``.

``fetch`` downloads the broker jars (if not cached) and prints their directory. ``run`` starts a
broker, prints ``KAFKA_BOOTSTRAP=127.0.0.1:PORT`` on stdout and keeps it running until Ctrl-C or
SIGTERM, then stops it cleanly. Diagnostics go to stderr; errors exit with status 1.

``run --brokers 3`` starts a three-broker cluster instead and prints
``KAFKA_BOOTSTRAP=HOST:PORT,HOST:PORT,HOST:PORT``; while it runs, lines on stdin take one
broker down or bring it back: ``kill 2`` (SIGKILL), ``stop 2`` (clean shutdown), ``start 2``.
"""

from __future__ import annotations

import argparse
import select
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from gateway.localkafka import (
    PINNED_VERSION,
    LocalKafka,
    LocalKafkaCluster,
    LocalKafkaError,
    fetch,
)

_POLL_SECONDS = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.localkafka", description=__doc__)
    parser.add_argument("--kafka-version", default=PINNED_VERSION, help="Kafka release to use")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download the broker jars and print their directory")
    run = commands.add_parser("run", help="run a broker until Ctrl-C or SIGTERM")
    run.add_argument("--brokers", type=int, choices=(1, 3), default=1, help="1, or 3: a cluster")
    run.add_argument("--port", type=int, default=0, help="listener port (default: a free one)")
    run.add_argument("--partitions", type=int, default=3, help="partitions of new topics")
    run.add_argument("--data-dir", help="data directory to use and keep (default: a temp dir)")
    run.add_argument("--keep-data", action="store_true", help="keep the temporary data dir")
    run.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for ready")
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM is treated like Ctrl-C so that both unwind through the cleanup in _run.
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> None:
    if args.brokers == 3:
        _run_cluster(args)
        return
    kafka = LocalKafka(
        num_partitions=args.partitions,
        port=args.port,
        data_dir=args.data_dir,
        keep_data=args.keep_data,
        version=args.kafka_version,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        kafka.start(args.timeout)
        # The diagnostic first: a caller may act (even interrupt) as soon as it reads stdout.
        print(f"Kafka {kafka.version} running, data in {kafka.data_dir}", file=sys.stderr)
        print(f"KAFKA_BOOTSTRAP={kafka.bootstrap_servers}", flush=True)
        while kafka.is_running():
            time.sleep(_POLL_SECONDS)
        raise LocalKafkaError(f"the Kafka broker exited unexpectedly\n{kafka.log_tail()}")
    except KeyboardInterrupt:
        print("stopping Kafka", file=sys.stderr)
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave the JVM behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kafka.close()


def _run_cluster(args: argparse.Namespace) -> None:
    cluster = LocalKafkaCluster(
        num_partitions=args.partitions,
        data_dir=args.data_dir,
        keep_data=args.keep_data,
        version=args.kafka_version,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cluster.start(args.timeout)
        pids = ", ".join(f"broker {i} pid {cluster.pid(i)}" for i in cluster.broker_ids)
        print(
            f"Kafka {cluster.version} cluster running ({pids}), data in {cluster.data_dir}",
            file=sys.stderr,
        )
        print("stdin takes: kill ID | stop ID | start ID", file=sys.stderr)
        print(f"KAFKA_BOOTSTRAP={cluster.bootstrap_servers}", flush=True)
        _serve_commands(cluster)
    except KeyboardInterrupt:
        print("stopping the Kafka cluster", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.close()


def _serve_commands(cluster: LocalKafkaCluster) -> None:
    """Act on ``kill|stop|start ID`` lines from stdin until interrupted or a broker dies on its
    own; once stdin ends, just keep running."""
    reading = True
    while True:
        crashed = cluster.crashed()
        if crashed:
            raise LocalKafkaError(
                f"Kafka broker {crashed[0]} exited unexpectedly\n{cluster.log_tail(crashed[0])}"
            )
        if not reading:
            time.sleep(_POLL_SECONDS)
            continue
        ready, _, _ = select.select([sys.stdin], [], [], _POLL_SECONDS)
        if ready:
            line = sys.stdin.readline()
            reading = bool(line)
            if line.strip():
                print(_command(cluster, line.split()), file=sys.stderr, flush=True)


def _command(cluster: LocalKafkaCluster, words: list[str]) -> str:
    actions = {
        "kill": cluster.kill_broker,
        "stop": cluster.stop_broker,
        "start": cluster.start_broker,
    }
    if len(words) != 2 or words[0] not in actions or not words[1].isdigit():
        return f"unknown command {' '.join(words)!r}: kill ID | stop ID | start ID"
    try:
        actions[words[0]](int(words[1]))
    except LocalKafkaError as exc:
        return f"{words[0]} {words[1]} failed: {exc}"
    return f"{words[0]} {words[1]}: done (pid {cluster.pid(int(words[1]))})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch(args.kafka_version), flush=True)
        else:
            _run(args)
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
