"""Imports inside modal_noisy flow one way: no cycles, and no layer imports one above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "modal_noisy"

# higher layers may import lower ones only (the data flow of DESIGN.md §2)
UPPER = {
    "modal_noisy.cleaning": ("modal_noisy.experiment", "modal_noisy.cli"),
    "modal_noisy.experiment": ("modal_noisy.cli",),
}
LOWER = (
    "noise", "datasets", "nets", "training", "scoring", "strategies", "metrics", "decision", "jsonable",
    "_validation", "_seeding",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """The modal_noisy modules ``module`` imports (anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from package import submodule``
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imports(module) for module in MODULES}


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target):], target] if target in path else [module, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_never_import_cleaning_experiment_or_cli(lower):
    modules = [m for m in MODULES if m == f"modal_noisy.{lower}" or m.startswith(f"modal_noisy.{lower}.")]
    assert modules
    for module in modules:
        upward = {t for t in GRAPH[module]
                  if t.startswith(("modal_noisy.cleaning", "modal_noisy.experiment", "modal_noisy.cli"))}
        assert not upward, f"{module} imports {sorted(upward)}"


@pytest.mark.parametrize("package", sorted(UPPER))
def test_cleaning_and_experiment_do_not_import_their_users(package):
    for module in (m for m in MODULES if m == package or m.startswith(package + ".")):
        upward = {t for t in GRAPH[module] if t.startswith(UPPER[package])}
        assert not upward, f"{module} imports {sorted(upward)}"
