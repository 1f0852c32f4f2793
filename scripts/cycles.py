"""List the import cycles among condgan's modules (uses grimp, which comes with import-linter).

A cycle is a set of modules that import each other, directly or through others (a strongly connected
component of the import graph). Two views are printed:

* at import time: only imports that run when a module is loaded (not inside a function);
  such a cycle makes the result depend on which module is imported first;
* counting imports inside functions too: a cycle held together by a function-level
  ("lazy") import still couples the modules both ways, it only hides the loop from the loader.

Usage: PYTHONPATH=src python scripts/cycles.py [PACKAGE]   (exits 1 when there is any cycle)
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from functools import cache
from pathlib import Path

import grimp


@cache
def _function_lines(path: str) -> frozenset[int]:
    """Line numbers of the imports of a source file that sit inside a function (run on call, not on import)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines |= {n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return frozenset(lines)


def _source(module: str, root: Path) -> str:
    """The file of `module` under the root package's folder, found without importing anything."""
    path = root.joinpath(*module.split(".")[1:])
    return str(path / "__init__.py" if path.is_dir() else path.with_suffix(".py"))


def edges(graph, package: str, import_time_only: bool) -> dict[str, set[str]]:
    """importer -> the modules it imports (only at import time, when asked)."""
    root = Path(importlib.util.find_spec(package).origin).parent
    out: dict[str, set[str]] = {m: set() for m in graph.modules}
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if import_time_only:
                lazy = _function_lines(_source(importer, root))
                details = graph.get_import_details(importer=importer, imported=imported)
                if all(d["line_number"] in lazy for d in details):
                    continue
            out[importer].add(imported)
    return out


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only the components of more than one module (the cycles)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def report(graph, package: str, import_time_only: bool) -> int:
    """Print each cycle with the imports inside it; return how many cycles there are."""
    adjacency = edges(graph, package, import_time_only)
    cycles = strongly_connected(adjacency)
    title = "at import time" if import_time_only else "counting imports inside functions"
    print(f"{len(cycles)} cycle(s) {title}")
    for members in cycles:
        inside = set(members)
        print(f"  {' <-> '.join(members)}")
        for importer in members:
            for imported in sorted(adjacency[importer] & inside):
                print(f"      {importer} -> {imported}")
    return len(cycles)


def main(argv: list[str]) -> int:
    package = argv[0] if argv else "condgan"
    graph = grimp.build_graph(package)
    found = report(graph, package, import_time_only=True)
    found += report(graph, package, import_time_only=False)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
