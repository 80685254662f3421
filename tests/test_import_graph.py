"""The gateway's modules import downward only: their import graph has no cycle.

Every ``import`` counts, at module level or inside a function, because a function-level
import that closes a cycle still couples the two modules both ways; only imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "isthmus"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that the file at ``path`` imports (fully qualified)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # "from isthmus.gateway import diagnosis" imports the module diagnosis
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in found if m.startswith(package + ".")}


def graph(package: str) -> dict[str, set[str]]:
    directory = PACKAGE / package.removeprefix("isthmus.").replace(".", "/")
    modules = {f"{package}.{p.stem}": p for p in directory.glob("*.py") if p.stem != "__init__"}
    return {
        name: {m for m in imports_of(path, package) if m in modules and m != name}
        for name, path in modules.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_a_cycle_and_accepts_a_dag() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_level_and_from_imports_are_seen(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from isthmus.gateway import diagnosis\n"
        "if TYPE_CHECKING:\n    from isthmus.gateway.pipeline import X\n"
        "def f():\n    from isthmus.gateway.config import Asset\n"
    )
    found = imports_of(source, "isthmus.gateway")
    assert "isthmus.gateway.diagnosis" in found and "isthmus.gateway.config" in found
    assert "isthmus.gateway.pipeline" not in found


@pytest.mark.parametrize("package", ["isthmus.gateway", "isthmus.sources", "isthmus.uns"])
def test_package_imports_are_acyclic(package: str) -> None:
    edges = graph(package)
    assert edges, package
    cycle = find_cycle(edges)
    assert cycle is None, " -> ".join(cycle or [])


def test_configuration_sits_at_the_bottom_of_the_gateway() -> None:
    edges = graph("isthmus.gateway")
    assert edges["isthmus.gateway.config"] <= {"isthmus.gateway._convert"}
