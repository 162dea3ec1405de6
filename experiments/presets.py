"""The grids of the paper's experiments, at three scales (``paper``, ``small``, ``smoke``), as data, and
the grid builders that turn them into runs.

A grid is a list of :class:`Run`: the labels that name its group (cell, version, task size), a seed, and
the settings its trainer receives. ``small`` fits 2 CPU cores (well under an hour per experiment),
``paper`` is the paper's sizes (for a GPU cluster), ``smoke`` two tiny runs for tests. The ``horizon``
experiment has presets of its own besides these (:mod:`experiments.horizon_presets`). Which builder, runner
and results writer each experiment has is :mod:`experiments.registry`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from recurrent_q.multistability import Version


@dataclass(frozen=True)
class Run:
    """One run of a grid: a trainer kind, the labels that identify its group, a seed, a config."""

    experiment: str
    kind: Literal["supervised", "tmaze", "horizon", "memory"]
    labels: tuple[tuple[str, Any], ...]
    seed: int
    config: dict[str, Any] = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        return "__".join([f"{k}={v}" for k, v in self.labels] + [f"seed={self.seed}"])

    @property
    def group(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.labels)


PRESETS = ("small", "paper", "smoke")
"""The presets of every grid of :data:`GRIDS` (some grids have more: :func:`grid_presets`)."""
WARMED_CELLS = ("lstm", "gru", "mgu", "chrono")
BISTABLE_CELLS = ("brc", "nbrc")
PAPER_CELLS = ("lstm", "chrono", "gru", "mgu", "brc", "nbrc")
"""The paper's six cells, in the order of the vaa-vs-loss grid (its runs and tables follow it)."""
PAPER_VERSIONS: tuple[Version, ...] = ("classic", "warmup", "double")
"""The paper's versions of a warmable cell in the supervised grids (``supervised.train.VERSIONS``)."""


def _cell_versions(cells: Iterable[str], versions: Iterable[Version], bistable: Iterable[str] = ()):
    """(cell, version) pairs: every version of each warmable cell, ``classic`` of bistable cells."""
    return [(c, v) for c in cells for v in versions] + [(c, "classic") for c in bistable]


# The `small` preset's data, VAA and warmup budget (2 CPU cores): 3,200 training sequences (+ 800 for
# validation), the VAA per epoch with M = 1,000 and I = 2, and a warmup of S = 50 steps (the paper's
# 100 halved: VAA* is near its target k after ~20 steps of the curriculum).
SMALL_DATA = {
    "num_train": 4000,
    "num_test": 1000,
    "vaa_steps": 1000,
    "vaa_iterations": 2,
    "warmup_config": {"steps": 50},
}
PAPER_PAIRS = _cell_versions(WARMED_CELLS, PAPER_VERSIONS, BISTABLE_CELLS)
APPENDIX_H_PAIRS = [(cell, "auxiliary") for cell in ("lstm", "gru", "mgu")]
"""Appendix H's baseline (the reconstruction auxiliary loss): LSTM, GRU and MGU on copy, denoising and
permuted line-sequential MNIST, 20 pretraining and 50 training epochs (the trainer's defaults)."""
SMOKE = {"num_train": 64, "num_test": 64, "epochs": 1, "num_layers": 1, "hidden_size": 8, "vaa_steps": 20}
SMOKE_PAIRS = [("gru", "classic"), ("gru", "warmup")]

GRIDS: dict[str, dict[str, dict[str, Any]]] = {
    # Each grid: `sizes` (task sizes; `length` for the T-Maze), (cell, version) `pairs`, `seeds`, and the
    # settings every run shares (`common`). Supervised runs take supervised.train.SupervisedConfig's
    # fields, T-Maze runs experiments.tmaze.TMazeConfig's.
    "copy": {
        "paper": dict(
            sizes=[{"T": 50}, {"T": 300}, {"T": 600}],
            pairs=PAPER_PAIRS + APPENDIX_H_PAIRS,
            seeds=3,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 50},
        ),
        "small": dict(
            sizes=[{"T": 50}],
            pairs=_cell_versions(("gru", "lstm", "mgu", "chrono"), ("classic", "warmup"))
            + [("gru", "double"), ("nbrc", "classic"), ("gru", "auxiliary")],
            seeds=3,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 10, **SMALL_DATA},
        ),
        "smoke": dict(
            sizes=[{"T": 10}],
            pairs=SMOKE_PAIRS,
            seeds=1,
            common={**SMOKE, "task": "copy", "warmup_config": {"steps": 5}},
        ),
        # Fig. 11's lengths at the `small` budget (1 x 128, 10 epochs, 3,200 training sequences): the
        # issue's cells and versions, a few hours on 2 CPU cores
        "long": dict(
            sizes=[{"T": 300}, {"T": 600}],
            pairs=_cell_versions(("gru", "lstm", "mgu"), PAPER_VERSIONS),
            seeds=3,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 10, **SMALL_DATA},
        ),
    },
    "denoising": {
        "paper": dict(
            sizes=[{"T": 200, "N": 5}, {"T": 200, "N": 100}],
            pairs=PAPER_PAIRS + APPENDIX_H_PAIRS,
            seeds=3,
            common={"task": "denoising", "num_layers": 2, "hidden_size": 256, "epochs": 50},
        ),
        "small": dict(
            sizes=[{"T": 60, "N": 30}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS, ("nbrc",)) + [("gru", "auxiliary")],
            seeds=2,
            common={
                "task": "denoising",
                "num_layers": 2,
                "hidden_size": 64,
                "epochs": 15,
                **SMALL_DATA,
                "num_train": 8000,
            },
        ),
        "smoke": dict(
            sizes=[{"T": 20, "N": 5}],
            pairs=SMOKE_PAIRS,
            seeds=1,
            common={**SMOKE, "task": "denoising", "warmup_config": {"steps": 5}},
        ),
        # Fig. 12's and Table F.1's sizes (T = 200, N = 5 and 100) at the `small` budget (GRU 2 x 64,
        # 10 epochs, 6,400 training sequences): the GRU's versions and the bistable NBRC
        "long": dict(
            sizes=[{"T": 200, "N": 5}, {"T": 200, "N": 100}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS, ("nbrc",)),
            seeds=3,
            common={
                "task": "denoising",
                "num_layers": 2,
                "hidden_size": 64,
                "epochs": 10,
                **SMALL_DATA,
                "num_train": 8000,
            },
        ),
    },
    "vaa-vs-loss": {
        "paper": dict(
            sizes=[{"T": 50}],
            pairs=[(c, "classic") for c in PAPER_CELLS],
            seeds=5,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 50},
        ),
        "small": dict(
            sizes=[{"T": 50}],
            pairs=[(c, "classic") for c in PAPER_CELLS],
            seeds=3,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 15, **SMALL_DATA},
        ),
        "smoke": dict(
            sizes=[{"T": 10}],
            pairs=SMOKE_PAIRS,
            seeds=1,
            common={**SMOKE, "task": "copy", "warmup_config": {"steps": 5}},
        ),
    },
    "psmnist": {
        "paper": dict(
            sizes=[{}],
            pairs=PAPER_PAIRS,
            seeds=3,
            common={"task": "psmnist", "num_layers": 2, "hidden_size": 256, "epochs": 70},
        ),
        # The GRU's versions at the `small` budget (2 x 64, 10 epochs, 4,000 digits of which 800 validate, a
        # 1,000-digit test set, the VAA per epoch): what a 5,000-digit MNIST subset allows on 2 CPU cores
        "small": dict(
            sizes=[{}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS),
            seeds=3,
            common={"task": "psmnist", "num_layers": 2, "hidden_size": 64, "epochs": 10, **SMALL_DATA},
        ),
        "smoke": dict(
            sizes=[{}],
            pairs=SMOKE_PAIRS,
            seeds=1,
            common={**SMOKE, "task": "psmnist", "warmup_config": {"steps": 5}},
        ),
    },
    "plsmnist": {
        "paper": dict(
            sizes=[{"N": 72}, {"N": 472}],
            pairs=PAPER_PAIRS + APPENDIX_H_PAIRS,
            seeds=3,
            common={"task": "plsmnist", "num_layers": 2, "hidden_size": 256, "epochs": 70},
        ),
        # as psmnist's (the 28 permuted rows of 28 pixels, then N = 72 black rows)
        "small": dict(
            sizes=[{"N": 72}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS),
            seeds=3,
            common={"task": "plsmnist", "num_layers": 2, "hidden_size": 64, "epochs": 10, **SMALL_DATA},
        ),
        "smoke": dict(
            sizes=[{"N": 2}],
            pairs=SMOKE_PAIRS,
            seeds=1,
            common={**SMOKE, "task": "plsmnist", "warmup_config": {"steps": 5}},
        ),
    },
    # Fig. 13: episodes to the optimal policy
    "tmaze": {
        "paper": dict(
            sizes=[{"length": n} for n in (20, 100, 200)],
            pairs=_cell_versions(WARMED_CELLS, ("classic", "warmup"), BISTABLE_CELLS),
            seeds=5,
            common={"hidden_size": 256, "episodes": 2000},
        ),
        # the paper's lengths with the library's defaults (GRU 2 x 64 since round 5 of docs/drqn-parity.md,
        # 10-step Watkins returns and a decaying rate since round 8; the committed runs are 2 x 32 with
        # one-step targets and a constant rate), as scripts/train_tmaze.py runs them,
        # 600 training episodes at most
        "small": dict(
            sizes=[{"length": n} for n in (50, 100, 200)],
            pairs=[("gru", "classic"), ("gru", "warmup")],
            seeds=5,
            common={"episodes": 600, "stop_when_optimal": True, "vaa_measure_interval": 0},
        ),
        "smoke": dict(
            sizes=[{"length": 3}],
            pairs=[("gru", "classic"), ("gru", "warmup")],
            seeds=1,
            common={"episodes": 20, "warmup_steps": 5, "buffer_size": 256, "vaa_measure_interval": 0},
        ),
    },
}


def _check_first_seed(first_seed: Any) -> None:
    # plain Python (the grid's process does not import torch)
    if isinstance(first_seed, bool) or not isinstance(first_seed, int) or first_seed < 0:
        raise ValueError(f"first_seed must be an integer >= 0; got {first_seed!r}")


def from_seed(runs: list[Run], first_seed: int) -> list[Run]:
    """``runs`` with their seeds moved to start at ``first_seed`` (a grid's seeds start at 0)."""
    _check_first_seed(first_seed)
    moved = [(r, r.seed + first_seed) for r in runs]
    return [Run(r.experiment, r.kind, r.labels, seed, {**r.config, "seed": seed}) for r, seed in moved]


def grid_root(out: str | Path, experiment: str, preset: str, first_seed: int = 0) -> Path:
    """The folder of the runs of ``experiment`` at ``preset`` under ``out``; those moved to ``first_seed``
    (:func:`from_seed`) go to ``<preset>-from-seed-<first_seed>``."""
    _check_first_seed(first_seed)
    return Path(out) / experiment / (preset if first_seed == 0 else f"{preset}-from-seed-{first_seed}")


def reproduce_command(experiment: str, preset: str, first_seed: int = 0) -> str:
    """The command that runs that grid, as its tables give it."""
    command = f"python scripts/reproduce.py {experiment} --preset {preset}"
    return command + (f" --first-seed {first_seed}" if first_seed else "")


def grid_presets(experiment: str) -> tuple[str, ...]:
    """The presets of ``experiment``'s grid in :data:`GRIDS`: :data:`PRESETS`, then its own (``long``)."""
    return (*PRESETS, *(preset for preset in GRIDS[experiment] if preset not in PRESETS))


def product_grid(experiment: str, kind: str, preset: str) -> list[Run]:
    """The runs of ``experiment`` at ``preset`` (:func:`grid_presets`), of kind ``kind``: every (size, cell,
    version, seed) of its grid in :data:`GRIDS`. A run's labels are its size, cell and version; its config,
    the grid's common settings, the size, the cell, the version and the seed."""
    presets = grid_presets(experiment)
    if preset not in presets:
        raise ValueError(f"preset must be one of {', '.join(presets)} for {experiment}; got {preset!r}")
    grid = GRIDS[experiment][preset]
    runs = []
    for size, (cell, version), seed in itertools.product(grid["sizes"], grid["pairs"], range(grid["seeds"])):
        labels = tuple(size.items()) + (("cell", cell), ("version", version))
        config = {**grid["common"], **size, "cell": cell, "version": version, "seed": seed}
        runs.append(Run(experiment, kind, labels, seed, config))
    return runs
