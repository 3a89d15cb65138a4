"""The package dependency rule (docs/architecture.md): no package imports one above it,
imports inside functions included, and the package graph has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What each package may import of the project. Lowest layer first.
ALLOWED: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "topologies": frozenset({"common"}),
    "plc": frozenset({"common"}),
    "controllers": frozenset({"common"}),
    "defenses": frozenset({"common"}),
    "attacks": frozenset({"common", "plc"}),
    "reporting": frozenset({"common"}),
    "lab": frozenset({"common", "topologies", "plc", "reporting"}),
    # Read-only over the files a lab writes; lab and experiments start it as a process.
    "dashboard": frozenset({"common", "plc", "lab"}),
    "experiments": frozenset({"common", "topologies", "plc", "controllers", "defenses",
                              "attacks", "reporting", "lab", "dashboard"}),
}


def project_imports(package: str) -> dict[str, set[str]]:
    """{imported project package: {importing file:line, ...}} for every module of ``package``."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ALLOWED and top != package:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(top, set()).add(where)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_layers_below(package: str) -> None:
    bad = {dep: sorted(where) for dep, where in project_imports(package).items()
           if dep not in ALLOWED[package]}
    assert not bad, f"{package} imports packages above it: {bad}"


def test_every_package_is_ruled() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(ALLOWED), "a new package needs its place in ALLOWED"


def test_package_graph_is_acyclic() -> None:
    graph = {p: set(project_imports(p)) for p in ALLOWED}
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 1:
            raise AssertionError(f"import cycle: {' -> '.join((*path, node))}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph[node]:
            visit(dep, (*path, node))
        state[node] = 2

    for package in graph:
        visit(package, ())
