"""SMPP clients submitting single-part messages to a simulator, each measured in its own process.

Run as ``python bench/smpp_clients.py CLIENT --host H --port P --count N --window W``; prints
one JSON line: submits answered, how many were refused, and from the moment 10 % of the
answers are in to the moment all are, the seconds and this process's CPU time (user +
system, from /proc, every thread of the process included).

Clients, each driven as its own documentation says it is driven with several submits
outstanding, and never more than ``window`` of them:

- ``project``: the gateway's :class:`~gateway.smpp_io.smpp_client.SmppClient`; the SUBMIT_SMs
  are composed beforehand by the sender's own composition from send requests (settings from
  ``GATEWAY_SMPP_*``), ``window`` tasks submit them;
- ``smpp34``: ``Client(window_size=W).connect()`` and ``window`` tasks awaiting
  ``submit_sm``, as its own loopback benchmark does;
- ``smpplib``: python-smpplib, blocking socket, PDUs built beforehand; ``send_pdu`` while
  fewer than ``window`` are unanswered, ``read_once`` otherwise (its maintainers: the client
  sends at once and responses may be read asynchronously);
- ``aiosmpplib``: the ESME's broker holds the messages built beforehand; a hook holds
  ``sending`` while ``window`` submits are unanswered (the library has no window of its own);
  the correlator's receipt store (submit kept 72 h per message id for delivery reports) is
  switched off.

The peer libraries are not project dependencies: ``bench/peers.py --setup`` installs them in
``.venv-peers``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchkit import cpu_seconds
from gateway.compose import compose_recipients
from gateway.events.envelope import utc_now
from gateway.events.send_request import SendRequest, parse_send_request
from gateway.metrics import Metrics
from gateway.roles.sender import bind_profile
from gateway.settings import Settings, load_settings
from gateway.smpp.errors import CommandStatusError
from gateway.smpp.pdu import SubmitSm as ProjectSubmitSm
from gateway.smpp_io.smpp_client import SmppClient

TEXT = "Benchmark message"
SOURCE = "Bench"
SOURCE_TON, SOURCE_NPI, DEST_TON, DEST_NPI = 5, 1, 1, 1
SUBMIT_SM_RESP = 0x80000004
DISTRIBUTIONS = {
    "project": "smsc-gateway",
    "smpp34": "smpp34",
    "smpplib": "smpplib",
    "aiosmpplib": "aiosmpplib",
}


@dataclass
class Meter:
    """Counts answers; notes time and CPU at 10 % of them and at the last one."""

    count: int
    done: int = 0
    refused: int = 0
    mark: tuple[float, float, int] | None = None
    end: tuple[float, float] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def tick(self, ok: bool) -> None:
        self.done += 1
        if not ok:
            self.refused += 1
        if self.mark is None and self.done >= max(1, self.count // 10):
            self.mark = (time.perf_counter(), cpu_seconds(os.getpid()), self.done)
        if self.done == self.count:
            self.end = (time.perf_counter(), cpu_seconds(os.getpid()))
            self.finished.set()

    def report(self, client: str) -> dict[str, Any]:
        """The measured interval, and the client library's version."""
        assert self.mark is not None, "not every submit was answered"
        assert self.end is not None, "not every submit was answered"
        measured = self.count - self.mark[2]
        return {
            "client": client,
            "version": version(DISTRIBUTIONS[client]),
            "submits": self.done,
            "refused": self.refused,
            "measured": measured,
            "seconds": self.end[0] - self.mark[0],
            "cpu_seconds": self.end[1] - self.mark[1],
        }


def destinations(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(count)]


# -- the project's client --------------------------------------------------------------------


def project_settings(args: argparse.Namespace) -> Settings:
    """The gateway's settings from ``GATEWAY_*``, with the bind of the command line."""
    settings = load_settings(os.environ)
    smpp = dataclasses.replace(
        settings.smpp,
        hosts=(f"{args.host}:{args.port}",),
        system_id=args.system_id,
        password=args.password,
        window=args.window,
        source_addr=settings.smpp.source_addr or SOURCE,
    )
    return dataclasses.replace(settings, smpp=smpp)


def composed_submits(settings: Settings, count: int, prefix: str) -> list[ProjectSubmitSm]:
    """The SUBMIT_SMs the sender would compose for ``count`` single-part requests."""
    pdus: list[ProjectSubmitSm] = []
    for i, phone in enumerate(destinations(count, prefix)):
        raw = {
            "schema": "smsc.send-request/1",
            "request_id": f"floor-{i}",
            "text": TEXT,
            "registered_delivery": False,
        }
        request = parse_send_request(orjson.dumps(raw | {"recipients": [phone]}))
        assert isinstance(request, SendRequest), request
        composed = compose_recipients(
            request, bind_profile(settings.smpp), settings.compose, priority=False, now=utc_now()
        )
        pdus.extend(composed[0].parts)
    return pdus


async def run_project(args: argparse.Namespace, meter: Meter) -> None:
    settings = project_settings(args)
    pdus = iter(composed_submits(settings, args.count, args.prefix))
    client = SmppClient(settings.smpp, Metrics(), lambda _c, _p: None)
    runner = asyncio.create_task(client.run())
    await client.wait_bound(10.0)

    async def worker() -> None:
        for pdu in pdus:
            try:
                await client.submit(pdu)
            except CommandStatusError:
                meter.tick(False)
            else:
                meter.tick(True)

    await asyncio.gather(*(worker() for _ in range(args.window)))
    await client.stop()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


# -- smpp34 ----------------------------------------------------------------------------------


async def run_smpp34(args: argparse.Namespace, meter: Meter) -> None:
    import smpp34  # noqa: PLC0415 (a peer, not a dependency)

    client = smpp34.Client(
        args.host,
        args.port,
        args.system_id,
        args.password,
        bind_type="TRX",
        window_size=args.window,
    )
    smsc = await client.connect()
    phones = iter(destinations(args.count, args.prefix))
    text = TEXT.encode()

    async def worker() -> None:
        for phone in phones:
            response = await smsc.submit_sm(
                phone,
                text,
                source_addr=SOURCE,
                source_addr_ton=SOURCE_TON,
                source_addr_npi=SOURCE_NPI,
                dest_addr_ton=DEST_TON,
                dest_addr_npi=DEST_NPI,
            )
            meter.tick(bool(response.is_success))

    await asyncio.gather(*(worker() for _ in range(args.window)))
    await smsc.unbind()
    await client.stop()


# -- python-smpplib --------------------------------------------------------------------------


def run_smpplib(args: argparse.Namespace, meter: Meter) -> None:
    import smpplib.client  # noqa: PLC0415 (a peer, not a dependency)
    import smpplib.smpp  # noqa: PLC0415 (a peer, not a dependency)

    client = smpplib.client.Client(args.host, args.port, timeout=30)
    outstanding = [0]

    def answered(pdu: Any, **_: Any) -> None:
        outstanding[0] -= 1
        meter.tick(int(pdu.status) == 0)

    client.set_message_sent_handler(answered)
    client.connect()
    client.bind_transmitter(system_id=args.system_id, password=args.password)
    pdus = [
        smpplib.smpp.make_pdu(
            "submit_sm",
            client=client,
            source_addr_ton=SOURCE_TON,
            source_addr_npi=SOURCE_NPI,
            source_addr=SOURCE,
            dest_addr_ton=DEST_TON,
            dest_addr_npi=DEST_NPI,
            destination_addr=phone,
            short_message=TEXT.encode(),
        )
        for phone in destinations(args.count, args.prefix)
    ]
    for pdu in pdus:
        while outstanding[0] >= args.window:
            client.read_once()
        client.send_pdu(pdu)
        outstanding[0] += 1
    while meter.done < args.count:
        client.read_once()
    client.unbind()
    client.disconnect()


# -- aiosmpplib ------------------------------------------------------------------------------


async def run_aiosmpplib(args: argparse.Namespace, meter: Meter) -> None:
    from aiosmpplib import ESME, PhoneNumber, SubmitSm  # noqa: PLC0415 (a peer, not a dependency)
    from aiosmpplib.broker import SimpleBroker  # noqa: PLC0415 (a peer, not a dependency)
    from aiosmpplib.state import NPI, TON  # noqa: PLC0415 (a peer, not a dependency)

    hook = _aiosmpplib_window_hook(args.window, meter)
    esme = ESME(
        smsc_host=args.host,
        smsc_port=args.port,
        system_id=args.system_id,
        password=args.password,
        log_level="WARNING",
        hook=hook,
        broker=SimpleBroker(maxsize=args.count + 1),
        correlator=_aiosmpplib_correlator(args.system_id),
    )
    source = PhoneNumber(SOURCE, TON(SOURCE_TON), NPI(SOURCE_NPI))
    for i, phone in enumerate(destinations(args.count, args.prefix)):
        destination = PhoneNumber(phone, TON(DEST_TON), NPI(DEST_NPI))
        message = SubmitSm(
            short_message=TEXT,
            source=source,
            destination=destination,
            registered_delivery=0,
            log_id=str(i),
        )
        await esme.broker.enqueue(message)
    runner = asyncio.create_task(esme.start())
    await meter.finished.wait()
    await esme.stop()
    await asyncio.gather(runner, return_exceptions=True)


def _aiosmpplib_window_hook(window: int, meter: Meter) -> Any:
    from aiosmpplib import SubmitSm  # noqa: PLC0415 (a peer, not a dependency)
    from aiosmpplib.hook import AbstractHook  # noqa: PLC0415 (a peer, not a dependency)

    class WindowHook(AbstractHook):  # type: ignore[misc]
        """Holds each submit until fewer than ``window`` are unanswered."""

        def __init__(self) -> None:
            self.slots = asyncio.Semaphore(window)

        async def sending(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
            if isinstance(smpp_message, SubmitSm):
                await self.slots.acquire()

        async def received(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
            if int.from_bytes(pdu[4:8], "big") == SUBMIT_SM_RESP:
                self.slots.release()
                meter.tick(int.from_bytes(pdu[8:12], "big") == 0)

        async def send_error(self, smpp_message: Any, error: Exception, client_id: str) -> None:
            raise error

    return WindowHook()


def _aiosmpplib_correlator(name: str) -> Any:
    from aiosmpplib.correlator import SimpleCorrelator  # noqa: PLC0415 (a peer, not a dependency)

    class NoReceiptStore(SimpleCorrelator):  # type: ignore[misc]
        """Requests still matched to responses; nothing kept for delivery reports."""

        async def put_delivery(self, smsc_message_id: str, submit_sm: Any) -> None:
            return None

    return NoReceiptStore(name)


# -- entry point -----------------------------------------------------------------------------

ASYNC_CLIENTS: dict[str, Callable[[argparse.Namespace, Meter], Any]] = {
    "project": run_project,
    "smpp34": run_smpp34,
    "aiosmpplib": run_aiosmpplib,
}
CLIENTS = (*ASYNC_CLIENTS, "smpplib")


async def run_async(args: argparse.Namespace) -> dict[str, Any]:
    meter = Meter(args.count)
    await ASYNC_CLIENTS[args.client](args, meter)
    return meter.report(args.client)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.client in ASYNC_CLIENTS:
        return asyncio.run(run_async(args))
    meter = Meter(args.count)
    run_smpplib(args, meter)
    return meter.report(args.client)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--system-id", default="gateway")
    parser.add_argument("--password", default="bench")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--prefix", default="+7903", help="destinations are PREFIX + 7 digits")
    return parser.parse_args(argv)


def main() -> None:
    print(orjson.dumps(run(parse_args())).decode(), flush=True)


if __name__ == "__main__":
    main()
