"""The package's import graph: engine-internal imports, parsed with ``ast``, have no cycle.

Run as a script for the report (``python tests/test_import_graph.py``): the module-level cycles
(strongly connected components), the cycles that function-level imports would close, and how many
imports sit inside functions (each should keep a heavy dependency lazy).

An edge ``a -> b`` is an ``import b`` / ``from b import x`` in ``a`` (``b.x`` when ``x`` is a
submodule), plus ``b``'s parent packages that are not ``a``'s own (their ``__init__`` runs first); names
imported from ``a``'s own parent package are an edge too (``options`` reading the registry from
``engine.symbolic.memory`` while that ``__init__`` imports ``options``: a loop kept alive by import order).
Imports under ``if TYPE_CHECKING:`` are not run and are not edges.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "engine"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Yield (import node, inside a function?) for every import that runs."""

    def walk(node, in_func):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    yield from walk_one(sub, in_func)
                continue
            yield from walk_one(child, in_func)

    def walk_one(child, in_func):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_func
        else:
            func = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, in_func or func)

    yield from walk(tree, False)


def _targets(node, modules) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level or not node.module:
            return []  # the package uses absolute imports only
        names = [node.module]
        names += [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
    return [n for n in names if n in modules]


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def graph():
    """(module-level edges, function-level edges, function-level import count, engine-internal count)."""
    modules = _modules()
    top: dict[str, set[str]] = {m: set() for m in modules}
    func: dict[str, set[str]] = {m: set() for m in modules}
    n_func = n_func_internal = 0
    for mod, path in modules.items():
        own = set(_parents(mod)) | {mod}
        for node, in_func in _imports(ast.parse(path.read_text(), str(path))):
            targets = _targets(node, modules)
            if in_func:
                n_func += 1
                n_func_internal += bool(targets)
            edges = func if in_func else top
            for t in targets:
                for m in [*_parents(t), t]:
                    # a parent package's __init__ already ran (no edge), unless names are imported from it
                    if m in modules and (m not in own or m == t) and m != mod:
                        edges[mod].add(m)
    return top, func, n_func, n_func_internal


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def test_no_module_level_import_cycle():
    top, _, _, _ = graph()
    assert cycles(top) == []


def test_no_cycle_through_function_level_imports():
    """A deferred import hides a cycle from the interpreter, not from readers: none is allowed either."""
    top, func, _, _ = graph()
    assert cycles({m: top[m] | func[m] for m in top}) == []


def test_graph_sees_the_package():
    top, _, _, _ = graph()
    assert "engine.runtime.sweep" in top and top["engine.runtime.sweep"]


def main() -> int:
    top, func, n_func, n_internal = graph()
    both = {m: top[m] | func[m] for m in top}
    top_cycles, all_cycles = cycles(top), cycles(both)
    print(f"modules: {len(top)}; module-level edges: {sum(map(len, top.values()))}")
    print(f"module-level cycles: {len(top_cycles)}")
    for c in top_cycles:
        print("   ", " <-> ".join(c))
    print(f"cycles counting function-level imports too: {len(all_cycles)}")
    for c in all_cycles:
        print("   ", " <-> ".join(c))
    print(f"function-level imports: {n_func} ({n_internal} engine-internal)")
    return 1 if top_cycles else 0


if __name__ == "__main__":
    raise SystemExit(main())
