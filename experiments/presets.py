"""The grids of the paper's experiments, at three scales (``paper``, ``small``, ``smoke``), as data, and
the grid builders that turn them into runs.

A grid is a list of :class:`Run`: the labels that name its group (cell, version, task size), a seed, and
the settings its trainer receives. ``small`` fits 2 CPU cores (well under an hour per experiment),
``paper`` is the paper's sizes (for a GPU cluster), ``smoke`` two tiny runs for tests. The ``horizon``
experiment has presets of its own besides these (:data:`HORIZON_PRESETS`). Which builder, runner and
results writer each experiment has is :mod:`experiments.registry`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from recurrent_q.multistability import Version


@dataclass(frozen=True)
class Run:
    """One run of a grid: a trainer kind, the labels that identify its group, a seed, a config."""

    experiment: str
    kind: Literal["supervised", "tmaze", "horizon"]
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
"""The presets of every grid of :data:`GRIDS`."""
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
SMOKE = {"num_train": 64, "num_test": 64, "epochs": 1, "num_layers": 1, "hidden_size": 8, "vaa_steps": 20}
SMOKE_PAIRS = [("gru", "classic"), ("gru", "warmup")]

GRIDS: dict[str, dict[str, dict[str, Any]]] = {
    # Each grid: `sizes` (task sizes; `length` for the T-Maze), (cell, version) `pairs`, `seeds`, and the
    # settings every run shares (`common`). Supervised runs take supervised.train.SupervisedConfig's
    # fields, T-Maze runs experiments.tmaze.TMazeConfig's.
    "copy": {
        "paper": dict(
            sizes=[{"T": 50}, {"T": 300}, {"T": 600}],
            pairs=PAPER_PAIRS,
            seeds=3,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 50},
        ),
        "small": dict(
            sizes=[{"T": 50}],
            pairs=_cell_versions(("gru", "lstm", "mgu", "chrono"), ("classic", "warmup"))
            + [("gru", "double"), ("nbrc", "classic")],
            seeds=3,
            common={"task": "copy", "num_layers": 1, "hidden_size": 128, "epochs": 10, **SMALL_DATA},
        ),
        "smoke": dict(
            sizes=[{"T": 10}],
            pairs=SMOKE_PAIRS,
            seeds=1,
            common={**SMOKE, "task": "copy", "warmup_config": {"steps": 5}},
        ),
    },
    "denoising": {
        "paper": dict(
            sizes=[{"T": 200, "N": 5}, {"T": 200, "N": 100}],
            pairs=PAPER_PAIRS,
            seeds=3,
            common={"task": "denoising", "num_layers": 2, "hidden_size": 256, "epochs": 50},
        ),
        "small": dict(
            sizes=[{"T": 60, "N": 30}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS, ("nbrc",)),
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
        "small": dict(
            sizes=[{}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS),
            seeds=2,
            common={"task": "psmnist", "num_layers": 2, "hidden_size": 64, "epochs": 5, "vaa_iterations": 0},
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
            pairs=PAPER_PAIRS,
            seeds=3,
            common={"task": "plsmnist", "num_layers": 2, "hidden_size": 256, "epochs": 70},
        ),
        "small": dict(
            sizes=[{"N": 72}],
            pairs=_cell_versions(("gru",), PAPER_VERSIONS),
            seeds=2,
            common={"task": "plsmnist", "num_layers": 2, "hidden_size": 64, "epochs": 5, "vaa_iterations": 0},
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


def product_grid(experiment: str, kind: str, preset: str) -> list[Run]:
    """The runs of ``experiment`` at ``preset`` (:data:`PRESETS`), of kind ``kind``: every (size, cell,
    version, seed) of its grid in :data:`GRIDS`. A run's labels are its size, cell and version; its config,
    the grid's common settings, the size, the cell, the version and the seed."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    grid = GRIDS[experiment][preset]
    runs = []
    for size, (cell, version), seed in itertools.product(grid["sizes"], grid["pairs"], range(grid["seeds"])):
        labels = tuple(size.items()) + (("cell", cell), ("version", version))
        config = {**grid["common"], **size, "cell": cell, "version": version, "seed": seed}
        runs.append(Run(experiment, kind, labels, seed, config))
    return runs


# Temporal horizon generalisation: the multistable cells (warmed-up or bistable) against the classic GRU
# and the parallel monostable cells, whose warmup should not help.
HORIZON_PAIRS = (
    ("gru", "classic"),
    ("gru", "warmup"),
    ("gru", "double"),
    ("lstm", "warmup"),
    ("nbrc", "classic"),
    ("brc", "classic"),
    ("mingru", "classic"),
    ("lru", "classic"),
    ("mingru", "warmup"),
    ("lru", "warmup"),
)
HORIZON_SETTINGS: dict[str, dict[str, Any]] = {
    # T-Maze: training lengths, seeds, (cell, version) `pairs` (absent: HORIZON_PAIRS), settings of
    # run_tmaze_experiment, episodes per length, horizons L', settings of the VAA (tmaze_vaa).
    # Copy first input (absent `copy`: no copy runs): settings of SupervisedConfig, horizons T', test
    # sequences per T'.
    "small": {
        "lengths": (20, 50),
        "seeds": 3,
        "tmaze": {"stop_when_optimal": True, "vaa_measure_interval": 0},
        "episodes": {20: 300, 50: 200},
        "rl_horizons": (50, 100, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
        "copy": {"T": 50, "num_layers": 1, "hidden_size": 128, "epochs": 10, **SMALL_DATA},
        "copy_horizons": (100, 1_000, 10_000, 100_000),
        "eval_sequences": 32,
    },
    "paper": {
        "lengths": (20, 50, 100),
        "seeds": 5,
        "tmaze": {"stop_when_optimal": True},
        "episodes": {20: 2000, 50: 2000, 100: 2000},
        "rl_horizons": (50, 100, 200, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 10, "batch_size": 200},
        "copy": {"T": 50, "num_layers": 1, "hidden_size": 128, "epochs": 50},
        "copy_horizons": (100, 300, 1_000, 10_000, 100_000),
        "eval_sequences": 1000,
    },
    "smoke": {
        "lengths": (2,),
        "seeds": 1,
        "tmaze": {
            "stop_when_optimal": True,
            "buffer_size": 256,
            "warmup_steps": 5,
            "vaa_measure_interval": 0,
        },
        "episodes": {2: 80},
        "rl_horizons": (2, 10, 1_000),
        "eval_vaa": {"steps": 100, "iterations": 2, "batch_size": 50},
        "copy": {
            "T": 10,
            "num_train": 64,
            "num_test": 64,
            "epochs": 1,
            "num_layers": 1,
            "hidden_size": 8,
            "vaa_steps": 20,
            "warmup_config": {"steps": 5},
        },
        "copy_horizons": (20, 1_000),
        "eval_sequences": 8,
        "pairs": (("gru", "warmup"), ("lru", "classic")),
    },
    # Train on past the first optimal check: the `small` T-Maze at L = 20 with the same 300-episode budget,
    # every run trained to its end (the final policy is the one evaluated at L'), for the cells and versions
    # that reached the optimal policy at L = 20 in `small`; no copy runs.
    "train-on": {
        "lengths": (20,),
        "seeds": 3,
        "pairs": (
            ("gru", "classic"),
            ("gru", "warmup"),
            ("gru", "double"),
            ("lstm", "warmup"),
            ("nbrc", "classic"),
        ),
        "tmaze": {"stop_when_optimal": False, "vaa_measure_interval": 0},
        "episodes": {20: 300},
        "rl_horizons": (50, 100, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
    },
}
# Issue 20 item 2, the warmup's held input and stabilisation curriculum (HeldInput): GRU + warmup (the
# runner's 2 x 64) at L = 20, the model at its first optimal check, tuning seeds 0-4 (of the tuning block
# 0-9: time); each recipe changes the warmup only. `--first-seed 1000` runs the same grid on reporting seeds.
_LONG_CURRICULUM = {"warmup_max_stabilisation": 5000, "warmup_c": 50, "warmup_bptt_steps": 50}
HORIZON_SETTINGS["warmup-input"] = {
    "lengths": (20,),
    "seeds": 5,
    "pairs": (("gru", "warmup"),),
    "recipes": {
        "gaussian-200": {},  # the paper's warmup: u ~ N(0, 1), M* = 200
        "gaussian-5000": dict(_LONG_CURRICULUM),
        "data-200": {"warmup_held_input": "data"},
        "data-5000": {"warmup_held_input": "data", **_LONG_CURRICULUM},
    },
    "tmaze": {"stop_when_optimal": True, "vaa_measure_interval": 0},
    "episodes": {20: 300},
    "rl_horizons": (100, 1_000, 10_000, 100_000),
    "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
}
# ... and the fixed-point term of the loss (DRQN(fixed_point_coef=λ): the states under the repeated corridor
# input drawn onto fixed points of it), on the paper's warmup; `-train-on`: trained to the end of the
# 300-episode budget (the term has more episodes to act), the final network evaluated.
HORIZON_SETTINGS["fixed-point"] = {
    **HORIZON_SETTINGS["warmup-input"],
    "recipes": {
        "off": {},
        "fp0.1": {"fixed_point_coef": 0.1},
        "fp1": {"fixed_point_coef": 1.0},
        "fp10": {"fixed_point_coef": 10.0},
        "off-train-on": {"stop_when_optimal": False},
        "fp1-train-on": {"fixed_point_coef": 1.0, "stop_when_optimal": False},
    },
}
# ... and what the warmup's loss asks (WarmupConfig.objective): the final states' spread as large as it can
# be (the lab's earlier T-Maze code) instead of VAA* at k, on the runner's defaults of round 8; the first
# recipe reruns the warmup-input preset's data-5000 on those defaults.
HORIZON_SETTINGS["warmup-objective"] = {
    **HORIZON_SETTINGS["warmup-input"],
    "recipes": {
        "vaa-data-5000": {"warmup_held_input": "data", **_LONG_CURRICULUM},
        "variance-data-5000": {
            "warmup_held_input": "data",
            "warmup_objective": "variance",
            **_LONG_CURRICULUM,
        },
        # ... with the fixed-point term of the loss, which draws the corridor states onto the attractors
        # within the trained corridor (without attractors, in the fixed-point preset, it could not)
        "variance-data-5000-fp1": {
            "warmup_held_input": "data",
            "warmup_objective": "variance",
            "fixed_point_coef": 1.0,
            **_LONG_CURRICULUM,
        },
        "variance-data-5000-train-on": {
            "warmup_held_input": "data",
            "warmup_objective": "variance",
            "stop_when_optimal": False,
            **_LONG_CURRICULUM,
        },
    },
}
HORIZON_PRESETS = tuple(HORIZON_SETTINGS)
"""The presets of the ``horizon`` experiment: :data:`PRESETS` and those above (the keys of the settings)."""


def horizon_grid(preset: str) -> list[Run]:
    """The runs of the ``horizon`` experiment (kind ``horizon``) at ``preset`` (:data:`HORIZON_PRESETS`):
    train at short horizons, evaluate at long ones.

    Order of the runs (the order they start in): the T-Maze at its shortest length, the copy runs (if the
    preset has a ``copy`` part), then the T-Maze at longer lengths (if any) seed after seed, so that a
    grid stopped early has the main comparison and every cell at the longer lengths.
    """
    if preset not in HORIZON_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(HORIZON_PRESETS)} for horizon; got {preset!r}")
    s = HORIZON_SETTINGS[preset]
    pairs = s.get("pairs", HORIZON_PAIRS)
    recipes = s.get("recipes", {"": {}})  # named T-Maze settings on top of `tmaze`, a label of their runs

    def tmaze_runs(length: int, seeds_first: bool = False) -> list[Run]:
        """Cell after cell; with ``seeds_first``, every cell's seed 0, then every cell's seed 1..."""
        order = itertools.product(pairs, range(s["seeds"]))
        if seeds_first:
            order = ((pair, seed) for seed, pair in itertools.product(range(s["seeds"]), pairs))
        runs = []
        for ((cell, version), seed), (recipe, settings) in itertools.product(order, recipes.items()):
            config = {"task": "tmaze", "length": length, "cell": cell, "version": version, "seed": seed}
            config.update(s["tmaze"], episodes=s["episodes"][length])
            config.update(settings, horizons=list(s["rl_horizons"]), eval_vaa=dict(s["eval_vaa"]))
            labels = (("task", "tmaze"), ("length", length), ("cell", cell), ("version", version))
            labels += (("recipe", recipe),) if recipe else ()
            runs.append(Run("horizon", "horizon", labels, seed, config))
        return runs

    shortest, *longer = sorted(s["lengths"])
    runs = tmaze_runs(shortest)
    if "copy" in s:
        for (cell, version), seed in itertools.product(pairs, range(s["seeds"])):
            config = {"task": "copy", **s["copy"], "cell": cell, "version": version, "seed": seed}
            config.update(horizons=list(s["copy_horizons"]), eval_sequences=s["eval_sequences"])
            labels = (("task", "copy"), ("T", config["T"]), ("cell", cell), ("version", version))
            runs.append(Run("horizon", "horizon", labels, seed, config))
    for length in longer:
        runs += tmaze_runs(length, seeds_first=True)
    return runs
