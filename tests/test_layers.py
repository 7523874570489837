"""The architecture as a test: syncd's layers import one way, with no loop between packages.

LAYERS below is the architecture (docs/architecture.md draws it). Each node is a top-level
module or sub-package of syncd/; a module may import from its own layer or a lower one,
never a higher one, and the import graph between nodes has no cycle. Every import counts:
those inside functions and those under `if TYPE_CHECKING:` too. Run it alone with
`pytest tests/test_layers.py`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Lowest layer first. A new top-level module or package must be given a layer here.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("ground", frozenset({
        "syncd", "clock", "errors", "exit_codes", "keys", "addresses", "logs", "metrics",
        "config", "schema", "db", "store", "migrations", "migrate", "runner_lock", "context",
        "run_summary", "frozen"})),
    ("policy and adapters", frozenset({"consent", "esp"})),
    ("use cases", frozenset({"crm", "webhooks", "sync", "signup", "retention", "inbound"})),
    ("top", frozenset({"service", "demo", "cli", "__main__"})),
)
# The Mailchimp emulator is a separate package; only these nodes may start or drive it.
EMULATOR = "mailchimp_emulator"
EMULATOR_USERS = frozenset({"cli", "demo"})

# Network code (sockets, HTTP, SMTP, the Mailchimp client) lives in these nodes only: the
# ESP adapter, the service, and the demo (which plays the visitor and Mailchimp's sends).
NETWORK_LIBRARIES = frozenset({
    "socket", "smtplib", "ssl", "http.client", "http.server", "urllib.request", "requests",
    "httpx", "uvicorn", "fastapi", "starlette", "mailchimp_marketing", "aiosmtpd"})
NETWORK_NODES = frozenset({"esp", "service", "demo"})

SYNCD = Path(__file__).resolve().parent.parent / "syncd"
EMULATOR_ROOT = SYNCD.parent / EMULATOR


@dataclass(frozen=True)
class Import:
    """One import statement: where it is, which node it sits in, what module it names."""

    path: str
    line: int
    source: str
    target: str


def layer_of(node: str) -> int:
    """The index of the node's layer in LAYERS (KeyError: a node nobody placed)."""
    for index, (_, nodes) in enumerate(LAYERS):
        if node in nodes:
            return index
    raise KeyError(node)


def node_of(module: str) -> str:
    """syncd.crm.store -> crm; syncd.config -> config; syncd -> syncd."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_name(root: Path, path: Path) -> tuple[str, bool]:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _imported_modules(tree: ast.Module, module: str, is_package: bool) -> Iterator[
        tuple[int, str]]:
    """Every module an import names, relative imports resolved; `from a import b` yields
    a.b too, because b may be a sub-module (syncd's `from syncd import config`)."""
    for statement in ast.walk(tree):
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                yield statement.lineno, alias.name
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - statement.level + 1]
                base = ".".join([*package, base] if base else package)
            yield statement.lineno, base
            for alias in statement.names:
                yield statement.lineno, f"{base}.{alias.name}"


def collect_imports(root: Path) -> list[Import]:
    """The imports of every module under root that cross from one node to another, or
    leave for the emulator."""
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        module, is_package = _module_name(root, path)
        source = node_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        seen: set[str] = set()
        for line, name in _imported_modules(tree, module, is_package):
            top = name.split(".")[0]
            if top == EMULATOR:
                target = EMULATOR
            elif top == root.name and "." in name:
                target = node_of(name)
                if not _is_node(root, target):
                    continue  # `from syncd import __version__`: a name, not a module
            else:
                continue
            if target != source and target not in seen:
                seen.add(target)
                found.append(Import(str(path.relative_to(root.parent)), line, source,
                                    target))
    return found


def _is_node(root: Path, name: str) -> bool:
    return (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file()


def back_edges(imports: list[Import]) -> list[str]:
    """Imports from a lower layer to a higher one, and nodes missing from LAYERS."""
    problems = []
    for edge in imports:
        if edge.target == EMULATOR:
            continue
        try:
            source, target = layer_of(edge.source), layer_of(edge.target)
        except KeyError as missing:
            problems.append(f"{edge.path}:{edge.line}: {missing} has no layer in LAYERS")
            continue
        if target > source:
            problems.append(
                f"{edge.path}:{edge.line}: {edge.source} ({LAYERS[source][0]}) -> "
                f"{edge.target} ({LAYERS[target][0]})")
    return problems


def emulator_imports(imports: list[Import]) -> list[str]:
    """Imports of the emulator from nodes that are not allowed to start it."""
    return [f"{edge.path}:{edge.line}: {edge.source} -> {EMULATOR}" for edge in imports
            if edge.target == EMULATOR and edge.source not in EMULATOR_USERS]


def cycles(imports: list[Import]) -> list[str]:
    """Each group of nodes that import each other round a loop (a strongly connected
    component of two or more), with the edges that close it."""
    graph: dict[str, set[str]] = {}
    for edge in imports:
        if edge.target != EMULATOR:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    problems = []
    for component in _strongly_connected(graph):
        if len(component) > 1:
            inside = sorted(f"{edge.source} -> {edge.target} ({edge.path}:{edge.line})"
                            for edge in imports
                            if edge.source in component and edge.target in component)
            problems.append(f"cycle {sorted(component)}: " + "; ".join(inside))
    return problems


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm; the graph has a few dozen nodes, recursion is fine."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def modules_without_docstring(root: Path) -> list[str]:
    """Modules whose docstring is missing or starts with an empty line."""
    missing = []
    for path in sorted(root.rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not docstring or not docstring.splitlines()[0].strip():
            missing.append(str(path.relative_to(root.parent)))
    return missing


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return collect_imports(SYNCD)


def test_no_module_imports_from_a_higher_layer(imports: list[Import]) -> None:
    problems = back_edges(imports)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_import_cycle_between_packages(imports: list[Import]) -> None:
    problems = cycles(imports)
    assert not problems, "import cycles between packages:\n" + "\n".join(problems)


def test_only_cli_and_demo_import_the_emulator(imports: list[Import]) -> None:
    problems = emulator_imports(imports)
    assert not problems, "the emulator imported outside cli/ and demo/:\n" + "\n".join(
        problems)


def network_imports(root: Path) -> list[str]:
    """Imports of a network library from a node that should not talk over the network."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module, is_package = _module_name(root, path)
        if node_of(module) in NETWORK_NODES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in _imported_modules(tree, module, is_package):
            if any(name == lib or name.startswith(lib + ".") for lib in NETWORK_LIBRARIES):
                found.append(f"{path.relative_to(root.parent)}:{line}: {name}")
    return found


def test_network_code_lives_in_esp_service_and_demo_only() -> None:
    problems = network_imports(SYNCD)
    assert not problems, "network code outside esp/, service/ and demo/:\n" + "\n".join(
        problems)


def test_the_emulator_stands_alone() -> None:
    """The emulator plays Mailchimp: it must not lean on the code it is a stand-in for."""
    problems = []
    for path in sorted(EMULATOR_ROOT.rglob("*.py")):
        module, is_package = _module_name(EMULATOR_ROOT, path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        problems += [f"{path.relative_to(SYNCD.parent)}:{line}: imports {name}"
                     for line, name in _imported_modules(tree, module, is_package)
                     if name.split(".")[0] == SYNCD.name]
    assert not problems, "the emulator imports syncd:\n" + "\n".join(problems)


def test_every_module_opens_with_a_docstring() -> None:
    missing = modules_without_docstring(SYNCD)
    assert not missing, "modules without a docstring saying what they hold:\n" + "\n".join(
        missing)


def test_the_walker_finds_back_edges_cycles_and_emulator_imports(tmp_path: Path) -> None:
    """The checks above pass vacuously if the walker misses imports: a small tree with one
    of each problem, hidden where a naive walker would not look, must report all three."""
    root = tmp_path / "syncd"
    (root / "crm").mkdir(parents=True)
    (root / "consent").mkdir()
    (root / "__init__.py").write_text('"""Root."""\n')
    (root / "clock.py").write_text('"""Time."""\n')
    (root / "crm" / "__init__.py").write_text('"""CRM."""\n')
    (root / "crm" / "store.py").write_text(
        '"""Store."""\nfrom .. import consent\nfrom ..clock import now\n')
    (root / "consent" / "__init__.py").write_text(
        '"""Consent."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
        '    import syncd.crm.store\n')
    (root / "consent" / "ledger.py").write_text(
        '"""Ledger."""\ndef f() -> None:\n    from mailchimp_emulator import state\n')
    found = collect_imports(root)
    assert back_edges(found) == ["syncd/consent/__init__.py:4: consent (policy and "
                                 "adapters) -> crm (use cases)"]
    assert cycles(found) == ["cycle ['consent', 'crm']: consent -> crm "
                             "(syncd/consent/__init__.py:4); crm -> consent "
                             "(syncd/crm/store.py:2)"]
    assert emulator_imports(found) == [
        "syncd/consent/ledger.py:3: consent -> mailchimp_emulator"]
