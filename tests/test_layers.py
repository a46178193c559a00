"""The packages of ``gateway`` depend on each other one way, and the pure core does no I/O.

Read from the source with ``ast`` (nothing imported): every ``import`` of every module of
``gateway`` gives an edge between two packages (``gateway.kafka``, ``gateway.sender``, ...; a
module directly under ``gateway`` is a node of its own). The graph must have no cycle. The
core (docs/architecture.md) must not reach asyncio, sockets or an I/O library, not even
through another module of the gateway. Run alone: ``pytest tests/test_layers.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).parent
# The protocol core, composition, the event contract, the provider's tables and the settings.
CORE = ("gateway.smpp", "gateway.compose", "gateway.events", "gateway.provider", "gateway.settings")
IO_MODULES = frozenset(
    {"asyncio", "socket", "ssl", "selectors", "aiokafka", "aiohttp", "httpx", "httptools"}
    | {"faust", "uvloop", "kafka"}
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, relative imports made absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            else:
                yield node.module or ""


MODULES = {module_name(path): set(imports_of(path)) for path in sorted(ROOT.rglob("*.py"))}


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, imported in MODULES.items():
        edges = graph.setdefault(package_of(module), set())
        edges.update(
            package_of(target)
            for target in imported
            if target.startswith("gateway.") and package_of(target) != package_of(module)
        )
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path that ends where it starts, or []."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return []


def test_the_packages_import_each_other_one_way() -> None:
    cycle = find_cycle(package_graph())
    assert cycle == [], " -> ".join(cycle)


def test_the_check_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def reached_from(module: str) -> set[str]:
    """Every module ``module`` imports, directly or through modules of the gateway."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for target in MODULES.get(todo.pop(), ()):
            if target in seen:
                continue
            seen.add(target)
            # ``from pkg import name`` may name a module of pkg or an attribute of it.
            todo.extend(t for t in (target, target.rpartition(".")[0]) if t in MODULES)
    return seen


def test_the_core_reaches_no_io() -> None:
    core = [m for m in MODULES if package_of(m) in CORE]
    assert len(core) > 40
    found = {
        module: sorted({name.split(".")[0] for name in reached_from(module)} & IO_MODULES)
        for module in core
    }
    assert {module: io for module, io in found.items() if io} == {}


def test_the_settings_import_only_the_core() -> None:
    allowed = {"gateway.settings", "gateway.errors", "gateway.smpp"}
    outside = {
        module: sorted(
            t for t in imported if t.startswith("gateway") and package_of(t) not in allowed
        )
        for module, imported in MODULES.items()
        if package_of(module) == "gateway.settings"
    }
    assert {module: names for module, names in outside.items() if names} == {}
