"""The SMPP protocol core does no I/O: no event loop, sockets, clocks, threads or logging.

Checked twice: statically, from the import statements of every module (which also catches
a module the interpreter happens to load anyway, such as ``time``), and at run time, by
importing the whole package in a fresh interpreter and looking at ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import gateway.smpp

FORBIDDEN = frozenset({"asyncio", "socket", "selectors", "ssl", "logging", "time", "threading"})
# Inside the gateway the core may only lean on its own package, the shared error tree and
# the shared slot setters (gateway/slots.py: no import at all).
ALLOWED_GATEWAY = ("gateway.smpp", "gateway.errors", "gateway.slots")
CLOCK_READS = frozenset({"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"})
PACKAGE_DIR = Path(gateway.smpp.__file__).parent
MODULES = sorted(PACKAGE_DIR.glob("*.py"))
REPO_ROOT = PACKAGE_DIR.parent.parent


def _module_name(path: Path) -> str:
    return "gateway.smpp" if path.stem == "__init__" else f"gateway.smpp.{path.stem}"


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of its code."""
    package = "gateway.smpp"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module or "")
    return names


def test_every_module_is_checked() -> None:
    assert {path.stem for path in MODULES} >= {
        "__init__",
        "codec",
        "constants",
        "errors",
        "pdu",
        "receipt",
        "session",
        "textcoding",
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_module_imports_no_io(path: Path) -> None:
    imported = _imports(path)
    assert {name.split(".")[0] for name in imported} & FORBIDDEN == set()
    outside = [
        name
        for name in imported
        if name.startswith("gateway") and not name.startswith(ALLOWED_GATEWAY)
    ]
    assert outside == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_module_reads_no_clock(path: Path) -> None:
    calls = [
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert set(calls) & CLOCK_READS == set()


# Modules the standard library itself loads for the core's imports; datetime.py does
# "import time as _time" for its own use (the clock-read test covers the core's calls).
STDLIB_MAY_LOAD = frozenset({"time"})

_PROBE = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
forbidden, stdlib, core = (json.loads(arg) for arg in sys.argv[2:5])


def forget():
    for name in list(sys.modules):
        if name.split(".")[0] in forbidden:
            del sys.modules[name]


def loaded(names):
    for name in names:
        importlib.import_module(name)
    return sorted(name for name in sys.modules if name.split(".")[0] in forbidden)


# The interpreter loads some of them (time) on its own: forget them first, so that a
# module that imports them has to load them again and shows up.
forget()
by_stdlib = loaded(stdlib)
forget()
by_core = loaded(core)
print(json.dumps({"by_stdlib": by_stdlib, "by_core": by_core, "count": len(sys.modules)}))
"""


def test_fresh_interpreter_imports_no_io() -> None:
    core = [_module_name(path) for path in MODULES]
    imported = {name for path in MODULES for name in _imports(path)}
    stdlib = sorted(name for name in imported - {"__future__"} if not name.startswith("gateway"))
    arguments = [json.dumps(sorted(FORBIDDEN)), json.dumps(stdlib), json.dumps(core)]
    result = subprocess.run(
        # -I: no user site or PYTHON* variables; -S: no site, so only what is imported loads.
        [sys.executable, "-I", "-S", "-c", _PROBE, str(REPO_ROOT), *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(result.stdout)
    assert set(report["by_stdlib"]) <= STDLIB_MAY_LOAD
    assert report["by_core"] == []
    assert report["count"] > len(core)  # the package really was imported
