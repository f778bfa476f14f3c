"""The emulator's modules form no import cycle and import nothing of the app.

Read from the source with `ast`, so an import inside a function or under
`if TYPE_CHECKING:` counts too: a cycle that only type checkers follow is
still a cycle for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "stripe_emulator"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
APP_PACKAGES = {"amazin", "store", "cart", "payments", "accounts", "pagecache", "live"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every module name an import statement in `path` refers to (absolute)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pkg import mod` imports a module when `mod` is one.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        edges: set[str] = set()
        for target in imported_names(path):
            # Importing a.b.c runs a/__init__ and a/b/__init__ first.
            parts = target.split(".")
            edges.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        name = module_name(path)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first == last), or None."""
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return stack[stack.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*stack, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_imports_of_modules_and_of_their_packages() -> None:
    graph = import_graph()

    assert "stripe_emulator.store" in graph["stripe_emulator.listing"]
    assert "stripe_emulator.pages" in graph["stripe_emulator.pages.checkout"]
    assert "stripe_emulator.objects" in graph["stripe_emulator.events"]


def test_emulator_has_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_emulator_imports_nothing_of_the_app() -> None:
    offenders = {
        f"{module_name(path)} imports {target}"
        for path in ROOT.rglob("*.py")
        for target in imported_names(path)
        if target.split(".")[0] in APP_PACKAGES
    }

    assert not offenders
