"""The package ``experiments``: its modules import each other without a cycle (imports inside functions
included), in layers under the grid engine and its registry; the command line (``experiments.cli``) is on
top, imported by no other module; the library below (``recurrent_q``, ``supervised``, ``tmaze_gym``) never
imports it nor rliable, which only ``experiments.statistics`` imports, inside its functions; each module
imports alone in a fresh interpreter."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "experiments"
MODULES = sorted(f"experiments.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__")
CLI_MODULES = ["experiments.cli"] + sorted(
    f"experiments.cli.{path.stem}" for path in (PACKAGE / "cli").glob("*.py") if path.stem != "__init__"
)


def _imports(path: Path) -> set[str]:
    """Every module that the file ``path`` imports, anywhere in it (functions included), as written."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}  # from package import module
    return imported


def _graph() -> dict[str, set[str]]:
    """The modules of ``experiments`` that each one imports."""
    return {
        module: {name for name in _imports(PACKAGE / f"{module.split('.')[1]}.py") if name in MODULES}
        for module in MODULES
    }


def test_the_modules_import_each_other_without_a_cycle():
    graph = _graph()
    list(graphlib.TopologicalSorter(graph).static_order())  # CycleError names a cycle
    # the layers: the engine on top of the registry, the registry on top of everything it names; only the
    # selection (whose trials are runs of the engine) stands on the engine
    assert {module for module, imported in graph.items() if "experiments.grid" in imported} == {
        "experiments.selection"
    }
    assert {module for module, imported in graph.items() if "experiments.registry" in imported} == {
        "experiments.grid"
    }
    for bottom in (
        "experiments.presets",
        "experiments.optimality",
        "experiments.curves",
        "experiments.statistics",
        "experiments.tmaze_config",
    ):
        assert not graph[bottom], f"{bottom} imports {graph[bottom]}"
    # the T-Maze evaluation stands on its two parts only (the optimality test, the limit L' -> infinity)
    assert graph["experiments.evaluation"] == {"experiments.optimality", "experiments.attractors"}
    assert graph["experiments.attractors"] == {"experiments.optimality"}
    # the run folders stand on bottom modules only: the grid's runs, and the T-Maze fields added since a run
    assert graph["experiments.run_dirs"] == {"experiments.presets", "experiments.tmaze_config"}


def test_only_the_command_line_imports_itself():
    assert len(CLI_MODULES) == 9  # the package and its eight commands
    for path in PACKAGE.glob("*.py"):
        upward = {name for name in _imports(path) if name.startswith("experiments.cli")}
        assert not upward, f"{path.relative_to(ROOT)} imports {upward}"
    for path in (PACKAGE / "cli").glob("*.py"):
        inside = {name for name in _imports(path) if name.startswith("experiments.cli")}
        assert not inside, f"{path.relative_to(ROOT)} imports {inside}"


def test_the_library_never_imports_experiments_nor_rliable():
    for package in ("recurrent_q", "supervised", "tmaze_gym"):
        for path in (ROOT / package).glob("*.py"):
            upward = {
                name for name in _imports(path) if name.split(".")[0] in ("experiments", "scripts", "rliable")
            }
            assert not upward, f"{path.relative_to(ROOT)} imports {upward}"


def test_only_the_statistics_import_rliable_and_only_inside_functions():
    """rliable is the extra ``results``: importing any module must not need it."""
    for path in [*PACKAGE.glob("*.py"), *(PACKAGE / "cli").glob("*.py")]:
        tree = ast.parse(path.read_text())
        top = {name for node in tree.body for name in _names(node)}
        assert "rliable" not in {name.split(".")[0] for name in top}, f"{path.relative_to(ROOT)}"
        if path.name != "statistics.py":
            assert not any(name.split(".")[0] == "rliable" for name in _imports(path)), (
                f"{path.relative_to(ROOT)}"
            )


def _names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom):
        return {node.module or ""}
    return set()


@pytest.mark.parametrize("module", MODULES + CLI_MODULES)
def test_each_module_imports_alone(module):
    """Each module of ``experiments`` imports as the first one of a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
