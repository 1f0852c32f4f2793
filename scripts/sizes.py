"""List the modules of src/condgan over 400 lines and the functions and methods over 60 lines.

Rooms of one job each: a module that grows past 400 lines, or a function past 60, usually does
more than one thing. A function's length is end_lineno - lineno + 1 of its ast node (decorators
not counted, docstring included). Exits 1 when anything is over.

Usage: python scripts/sizes.py [ROOT]   (ROOT defaults to src/condgan beside this script)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function and method, nested ones included."""
    found = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                walk(child, name + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return found


def oversized(root: Path) -> list[tuple[str, str, int]]:
    """(path[:line], what, lines) of each module and function over its limit, in path order."""
    rows = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        shown = path.relative_to(root.parent.parent if root.parent.name == "src" else root.parent)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            rows.append((str(shown), "module", lines))
        for name, first, length in functions(ast.parse(text, str(path))):
            if length > MAX_FUNCTION_LINES:
                rows.append((f"{shown}:{first}", name, length))
    return rows


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "src" / "condgan"
    rows = oversized(root)
    if not rows:
        print(f"no module over {MAX_MODULE_LINES} lines and no function over {MAX_FUNCTION_LINES} under {root}")
        return 0
    width = max(len(r[0]) for r in rows)
    print(f"{'where':<{width}}  {'lines':>5}  what (limits: module {MAX_MODULE_LINES}, function {MAX_FUNCTION_LINES})")
    for where, what, lines in rows:
        print(f"{where:<{width}}  {lines:>5}  {what}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
