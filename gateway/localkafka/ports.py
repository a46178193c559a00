"""Ports for the broker: free now, and outside the range the kernel gives to clients."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from gateway.localkafka.process import LocalKafkaError

HOST = "127.0.0.1"
_LOWEST_PORT = 10000
_PORT_ATTEMPTS = 200


def free_ports(count: int) -> list[int]:
    """Distinct ports, below the kernel's ephemeral range, that were free on 127.0.0.1 just now.

    Ports from the ephemeral range would be simpler to get, but the kernel also hands those
    out to outgoing connections: a client reconnecting while the broker is stopped could take
    the broker's port and make the restart fail.
    """
    low = _ephemeral_port_range_start()
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(_PORT_ATTEMPTS):
            sock = stack.enter_context(socket.socket())
            port = random.randrange(_LOWEST_PORT, low) if low > _LOWEST_PORT else 0
            with contextlib.suppress(OSError):
                sock.bind((HOST, port))
                ports.append(int(sock.getsockname()[1]))
            if len(ports) == count:
                return ports
    raise LocalKafkaError(f"found no {count} free ports on {HOST}")


def _ephemeral_port_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False
