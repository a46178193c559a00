"""``smsc-gateway``: one subcommand per role, plus ``demo`` and the account commands
(``numbers``, ``downloads``, ``contacts``: see ``smsc-gateway <command> --help``).

Settings come from the environment (``GATEWAY_<SECTION>_<FIELD>``, see docs/configuration.md);
the garbage collector is set up the same way for every role (:mod:`gateway.gcsetup`);
SIGTERM and SIGINT start a clean shutdown, which ends within the role's drain timeout and the
close allowance (:mod:`gateway.shutdown`). A library task still waiting for the network after
the role returned (a clean-up cut short at its deadline) is cancelled, given a moment, and
then abandoned; so is a library thread (faust's consumer runs in one): the process exits
anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from gateway.account import cli as account_cli
from gateway.errors import GatewayError
from gateway.gcsetup import GcPauses, configure_gc
from gateway.ingress.loop import loop_factory
from gateway.logsetup import configure_logging, secret_values
from gateway.metrics import Metrics
from gateway.roles.all import RoleRunner, run_all
from gateway.roles.correlator import run_correlator
from gateway.roles.ingress import run_ingress
from gateway.roles.poller import run_poller
from gateway.roles.receiver import run_receiver
from gateway.roles.sender import run_sender
from gateway.roles.simulator import run_simulator
from gateway.settings import Settings, load_settings

# One module of gateway/roles/ per role; the settings sections each needs are in
# gateway.settings.ROLE_SECTIONS.
ROLES: dict[str, RoleRunner] = {
    "sender": run_sender,
    "ingress": run_ingress,
    "receiver": run_receiver,
    "correlator": run_correlator,
    "poller": run_poller,
    "simulate": run_simulator,
    "all": run_all,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smsc-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, runner in ROLES.items():
        commands.add_parser(name, help=(runner.__doc__ or "").strip().splitlines()[0])
    demo = commands.add_parser("demo", help="Run the whole path locally and print a summary")
    demo.add_argument("--count", type=int, default=200, help="send requests to produce")
    account_cli.register(commands)
    args = parser.parse_args(argv)
    if args.command in account_cli.COMMANDS:
        return account_cli.run_command(args)
    if args.command == "demo":
        from gateway.demo import run_demo  # noqa: PLC0415 - pulls in the local Kafka tooling

        return run_demo(args.count)
    try:
        settings = load_settings(os.environ, roles=frozenset({args.command}))
    except GatewayError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log.level, secrets=secret_values(settings))
    configure_gc()
    # The ingress and the correlator run on uvloop unless told otherwise (gateway/ingress/loop.py).
    loops = {"ingress": settings.ingress.event_loop, "correlator": settings.correlator.event_loop}
    factory = loop_factory(loops[args.command]) if args.command in loops else None
    loop_runner = asyncio.Runner(loop_factory=factory)
    try:
        code, abandoned = loop_runner.run(_serve(ROLES[args.command], settings))
    except BaseException:
        loop_runner.close()
        raise
    if abandoned or _threads_left():
        # Closing the loop, and the interpreter's exit, would wait for them without a bound.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    loop_runner.close()
    return code


def _threads_left() -> bool:
    """Whether a library thread (not the event loop's executor) is still running after the
    grace; the interpreter would wait for it at exit."""
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        if thread.name.startswith("asyncio_"):
            continue  # the loop's default executor: closing the loop shuts it down
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logging.getLogger(__name__).warning("shutdown: abandoning thread %s", thread.name)
            return True
    return False


async def _serve(runner: RoleRunner, settings: Settings) -> tuple[int, bool]:
    """The role's exit code, and whether tasks it left behind had to be abandoned."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    code = 0
    metrics = Metrics()
    pauses = GcPauses(metrics.registry)
    pauses.install()
    try:
        await runner(settings, metrics, stop)
    except GatewayError as exc:
        print(f"smsc-gateway: {exc}", file=sys.stderr)
        code = 1
    finally:
        pauses.remove()
    return code, await _cancel_leftovers()


# How long tasks left running after the role returned get to take their cancellation.
LEFTOVER_GRACE_SECONDS = 0.5


async def _cancel_leftovers() -> bool:
    """Cancel the tasks still running; True if some did not end within the grace."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    if not leftovers:
        return False
    for task in leftovers:
        task.cancel()
    _, pending = await asyncio.wait(leftovers, timeout=LEFTOVER_GRACE_SECONDS)
    for task in pending:
        logging.getLogger(__name__).warning(
            "shutdown: abandoning task %s (%s)", task.get_name(), task.get_coro()
        )
    return bool(pending)


if __name__ == "__main__":
    raise SystemExit(main())
