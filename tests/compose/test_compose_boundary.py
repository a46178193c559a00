"""gateway.compose is a pure core: no I/O, no clock, no Kafka or HTTP, no mutable globals."""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import pytest

import gateway.compose

PACKAGE_DIR = Path(gateway.compose.__file__).parent
MODULES = sorted(PACKAGE_DIR.glob("*.py"))
FORBIDDEN = frozenset(
    {"asyncio", "socket", "ssl", "logging", "time", "threading", "random", "os", "io"}
    | {"aiokafka", "aiohttp", "httpx", "faust", "prometheus_client", "tenacity"}
)
ALLOWED_GATEWAY = (
    "gateway.compose",
    "gateway.smpp",
    "gateway.errors",
    "gateway.slots",
    "gateway.events",
    "gateway.settings",
)
CLOCK_READS = frozenset({"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"})


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("gateway.compose" if node.level else node.module or "")
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_module_imports_no_io(path: Path) -> None:
    imported = _imports(path)
    assert {name.split(".")[0] for name in imported} & FORBIDDEN == set()
    outside = [n for n in imported if n.startswith("gateway") and not n.startswith(ALLOWED_GATEWAY)]
    assert outside == []
    assert "gateway.events.send_request" in imported or not any(
        n.startswith("gateway.events") for n in imported
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_module_reads_no_clock(path: Path) -> None:
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert calls & CLOCK_READS == set()


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_module_state_is_immutable(path: Path) -> None:
    name = "gateway.compose" if path.stem == "__init__" else f"gateway.compose.{path.stem}"
    module = importlib.import_module(name)
    mutable = [
        key
        for key, value in vars(module).items()
        if not key.startswith("__") and isinstance(value, list | dict | set | bytearray)
    ]
    assert mutable == []
    proxies = [v for v in vars(module).values() if isinstance(v, types.MappingProxyType)]
    assert all(not isinstance(value, dict) for proxy in proxies for value in proxy.values())
