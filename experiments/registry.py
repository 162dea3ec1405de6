"""The registry of experiments: one entry per experiment of ``scripts/reproduce.py`` (its presets, its grid
builder and its results writer) and one runner per kind of run. The grid engine (:mod:`experiments.grid`)
and the command line read them and special-case no experiment.

Adding an experiment is one entry in :data:`EXPERIMENTS` (its grids' data in :mod:`experiments.presets`)
and, when its runs are of a new kind, one runner in :data:`RUNNERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from experiments.horizon_presets import HORIZON_PRESETS, horizon_grid
from experiments.memory_presets import MEMORY_PRESETS, memory_grid
from experiments.presets import Run, grid_presets, product_grid
from experiments.results import write_results
from experiments.runners import (
    horizon_settings,
    run_supervised,
    run_tmaze,
    supervised_settings,
    tmaze_settings,
)

Runner = Callable[[dict[str, Any], Path, bool], dict[str, Any]]
"""``runner(config, run_dir, resume) -> metrics``: trains one run, writing its files in ``run_dir``."""
ResultsWriter = Callable[[Sequence[Run], dict[str, dict], Path, str], tuple[Any, str]]
"""``write(runs, results, root, command) -> (table, Markdown text)``: writes ``results.md``, ``results.json``
and ``results.png`` of a grid under its ``root``, ``<out>/<experiment>/<preset>``."""


def run_horizon(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """:func:`experiments.horizon.run_horizon`, imported by the worker that runs it."""
    from experiments.horizon import run_horizon

    return run_horizon(config, run_dir, resume)


def write_horizon_results(
    runs: Sequence[Run], results: dict[str, dict], root: Path, command: str
) -> tuple[Any, str]:
    """:func:`experiments.horizon_results.write_horizon_results`, imported when the grid ends."""
    from experiments.horizon_results import write_horizon_results

    return write_horizon_results(runs, results, root, command)


def run_memory(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """:func:`experiments.memory_suites.run_memory`, imported by the worker that runs it (POPGym and
    MiniGrid are needed there only)."""
    from experiments.memory_suites import run_memory

    return run_memory(config, run_dir, resume)


def write_memory_results(
    runs: Sequence[Run], results: dict[str, dict], root: Path, command: str
) -> tuple[Any, str]:
    """:func:`experiments.memory_results.write_memory_results`, imported when the grid ends."""
    from experiments.memory_results import write_memory_results

    return write_memory_results(runs, results, root, command)


RUNNERS: dict[str, Runner] = {
    "supervised": run_supervised,
    "tmaze": run_tmaze,
    "horizon": run_horizon,
    "memory": run_memory,
}
"""The runner of each kind of run (``Run.kind``, saved in the run's ``config.json``)."""
SETTINGS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "supervised": supervised_settings,
    "tmaze": tmaze_settings,
    "horizon": horizon_settings,
}
"""The settings a run's config resolves to, by kind (the defaults of the code filled in): recorded in the run
directory's ``settings.json`` and compared by a relaunch (``experiments.grid.resolved_settings``)."""


@dataclass(frozen=True)
class Experiment:
    """What the grid engine needs to run and report one experiment.

    :param presets: the names of its grids (scales).
    :param grid: its grid builder, ``preset -> runs`` (each run names its runner by its kind).
    :param write: its results writer (:data:`ResultsWriter`).
    """

    presets: tuple[str, ...]
    grid: Callable[[str], list[Run]]
    write: ResultsWriter


def _product(experiment: str, kind: str = "supervised", **plot: Any) -> Experiment:
    """An experiment whose grid is ``presets.GRIDS[experiment]`` (sizes × (cell, version) pairs × seeds),
    reported by :func:`experiments.results.write_results` (``plot``: its plot's ``metric`` or ``curves``)."""
    return Experiment(
        grid_presets(experiment), partial(product_grid, experiment, kind), partial(write_results, **plot)
    )


EXPERIMENTS: dict[str, Experiment] = {
    "copy": _product("copy"),
    "denoising": _product("denoising"),
    "tmaze": _product("tmaze", kind="tmaze", metric="first_optimal_episode"),
    "vaa-vs-loss": _product("vaa-vs-loss", curves=True),
    "psmnist": _product("psmnist", metric="test_accuracy"),
    "plsmnist": _product("plsmnist", metric="test_accuracy"),
    "horizon": Experiment(HORIZON_PRESETS, horizon_grid, write_horizon_results),
    "memory-suites": Experiment(MEMORY_PRESETS, memory_grid, write_memory_results),
}
"""Every experiment of ``scripts/reproduce.py``, by name (its command-line choices)."""
PRESET_NAMES = tuple(dict.fromkeys(preset for entry in EXPERIMENTS.values() for preset in entry.presets))
"""Every preset of some experiment (the command line's choices)."""


def build_grid(experiment: str, preset: str) -> list[Run]:
    """The runs of ``experiment`` at ``preset`` scale (its entry's grid builder)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}; got {experiment!r}")
    return EXPERIMENTS[experiment].grid(preset)


__all__ = [
    "EXPERIMENTS",
    "PRESET_NAMES",
    "RUNNERS",
    "SETTINGS",
    "Experiment",
    "ResultsWriter",
    "Runner",
    "build_grid",
]
