"""The ingress's core modules do no I/O: no event loop, sockets, clocks, logging, HTTP or
Kafka library; the adapters (handler, server, service, metrics) are the only ones that do.
Its settings (gateway/settings/ingress.py) are checked with the others by tests/test_layers.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gateway.ingress

PURE = ("params", "callback", "signature", "mapping", "access", "health")
FORBIDDEN = frozenset(
    {"asyncio", "socket", "ssl", "logging", "time", "threading", "aiohttp", "aiokafka"}
    | {"prometheus_client", "httpx"}
)
ALLOWED_GATEWAY = (
    *(f"gateway.ingress.{name}" for name in PURE),
    "gateway.events",
    "gateway.provider",
    "gateway.smpp.receipt",
    "gateway.settings.ingress",
)
PACKAGE = Path(gateway.ingress.__file__).parent


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(f"gateway.ingress.{node.module}" if node.level else node.module or "")
    return names


@pytest.mark.parametrize("name", PURE)
def test_core_module_imports_no_io(name: str) -> None:
    imported = imports(PACKAGE / f"{name}.py")
    assert {n.split(".")[0] for n in imported} & FORBIDDEN == set()
    outside = [n for n in imported if n.startswith("gateway") and not n.startswith(ALLOWED_GATEWAY)]
    assert outside == []


def test_the_events_it_builds_on_do_no_io_either() -> None:
    for module in ("delivery", "waitcall", "envelope", "dead_letter"):
        path = PACKAGE.parent / "events" / f"{module}.py"
        assert {n.split(".")[0] for n in imports(path)} & FORBIDDEN == set(), module
