"""Command line: ``python -m gateway.localkafka {fetch,run}``.

``fetch`` downloads the broker jars (if not cached) and prints their directory. ``run`` starts a
broker, prints ``KAFKA_BOOTSTRAP=127.0.0.1:PORT`` on stdout and keeps it running until Ctrl-C or
SIGTERM, then stops it cleanly. Diagnostics go to stderr; errors exit with status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from gateway.localkafka import PINNED_VERSION, LocalKafka, LocalKafkaError, fetch

_POLL_SECONDS = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.localkafka", description=__doc__)
    parser.add_argument("--kafka-version", default=PINNED_VERSION, help="Kafka release to use")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download the broker jars and print their directory")
    run = commands.add_parser("run", help="run a broker until Ctrl-C or SIGTERM")
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
