"""No import circles in testbed/ and agents/: each module can be read knowing only what it imports.

The graph comes from the source (ast), not from running it: every ``import`` and ``from … import``
anywhere in a module - also inside functions, where circles like to hide - except under
``if TYPE_CHECKING:`` (type hints only, never executed).  ``from pkg import name`` counts as importing
``pkg.name`` when that is a module, else ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("testbed", "agents")

# Circles being removed on other branches; each entry is the sorted set of modules of one cycle.
# Remove an entry once its branch is merged: the test then keeps the circle from coming back.
# (agents.shim.context <-> agents.shim.reap is a circle of type hints only: reap imports context under
# TYPE_CHECKING, which this test does not count.)
KNOWN_CYCLES: set[frozenset[str]] = set()  # none left; an entry here must name a circle that still exists


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                       for alias in node.names]
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a package: the deepest module we have
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan): the modules of each circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def _path_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """One concrete circle through a component, to print: a -> b -> … -> a."""
    start = min(comp)
    prev: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return path[::-1] + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)


def test_the_graph_sees_imports_inside_functions_and_resolves_relative_ones():
    graph = _graph()
    assert "testbed.topology" in graph["testbed.addressing"]  # from .topology import …
    assert "testbed.mechanisms.contract" in graph["testbed.mechanisms"]  # a package's relative import
    assert "testbed.netplan" not in graph["testbed.mechanisms.contract"]  # under TYPE_CHECKING only
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(toy) == [frozenset("abc")] and _path_in(toy, frozenset("abc")) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    graph = _graph()
    cycles = [c for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert not cycles, "import circles:\n" + "\n".join(f"{' -> '.join(_path_in(graph, c))}  (all of: "
                                                      f"{', '.join(sorted(c))})" for c in cycles)


def test_known_cycles_are_still_cycles():
    """An allow-list entry whose circle is gone must go too (so the list only shrinks)."""
    found = set(_cycles(_graph()))
    assert not KNOWN_CYCLES - found, f"no longer circular, remove from KNOWN_CYCLES: {KNOWN_CYCLES - found}"
