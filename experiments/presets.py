"""The grids of the paper's experiments, at three scales (``paper``, ``small``, ``smoke``).

A grid is a list of :class:`experiments.grid.Run`: the labels that name its group (cell, version, task
size), a seed, and the settings its trainer receives. ``small`` fits 2 CPU cores (well under an hour
per experiment), ``paper`` is the paper's sizes (for a GPU cluster), ``smoke`` two tiny runs for tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal


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


EXPERIMENTS = ("copy", "denoising", "tmaze", "vaa-vs-loss", "psmnist", "plsmnist", "horizon")
PRESETS = ("small", "paper", "smoke")
WARMED_CELLS = ("lstm", "gru", "mgu", "chrono")
# The `small` preset's data, VAA and warmup budget (2 CPU cores): 3,200 training sequences (+ 800 for
# validation), the VAA per epoch with M = 1,000 and I = 2, and a warmup of S = 50 steps (the paper's
# 100 halved: VAA* is near its target k after ~20 steps of the curriculum).
SMALL_DATA = {
    "num_train": 4000,
    "num_test": 1000,
    "vaa_steps": 1000,
    "vaa_iterations": 2,
    "warmup": {"steps": 50},
}
BISTABLE_CELLS = ("brc", "nbrc")


def _cell_versions(cells: Iterable[str], versions: Iterable[str], bistable: Iterable[str] = ()):
    """(cell, version) pairs: every version of each warmable cell, ``classic`` of bistable cells."""
    pairs = [(c, v) for c in cells for v in versions]
    return pairs + [(c, "classic") for c in bistable]


def _supervised_grid(
    experiment: str,
    sizes: list[dict[str, Any]],
    pairs: list[tuple[str, str]],
    seeds: int,
    common: dict[str, Any],
) -> list[Run]:
    runs = []
    for size, (cell, version), seed in itertools.product(sizes, pairs, range(seeds)):
        labels = tuple(size.items()) + (("cell", cell), ("version", version))
        config = {**common, **size, "cell": cell, "version": version, "seed": seed}
        runs.append(Run(experiment, "supervised", labels, seed, config))
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
    # T-Maze: training lengths, seeds, settings of run_tmaze_experiment, horizons L', VAA period M.
    # Copy first input: settings of SupervisedConfig, horizons T', test sequences per T'.
    "small": {
        "lengths": (20, 50),
        "seeds": 3,
        "tmaze": {"stop_when_optimal": True, "vaa_measure_interval": 0},
        "episodes": {20: 300, 50: 200},
        "rl_horizons": (50, 100, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
        "copy": {"T": 50, "layers": 1, "width": 128, "epochs": 10, **SMALL_DATA},
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
        "copy": {"T": 50, "layers": 1, "width": 128, "epochs": 50},
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
        "copy": {"T": 10, "num_train": 64, "num_test": 64, "epochs": 1, "layers": 1, "width": 8},
        "copy_horizons": (20, 1_000),
        "eval_sequences": 8,
    },
}


def _horizon_grid(preset: str) -> list[Run]:
    """Train at short horizons, evaluate at long ones.

    Order of the runs (the order they start in): the T-Maze at its shortest length, the copy runs, then
    the T-Maze at longer lengths seed after seed, so that a grid stopped early has the main comparison
    and every cell at the longer lengths.
    """
    s = HORIZON_SETTINGS[preset]
    pairs = [("gru", "warmup"), ("lru", "classic")] if preset == "smoke" else HORIZON_PAIRS

    def tmaze_runs(length: int, seeds_first: bool = False) -> list[Run]:
        """Cell after cell; with ``seeds_first``, every cell's seed 0, then every cell's seed 1..."""
        order = itertools.product(pairs, range(s["seeds"]))
        if seeds_first:
            order = ((pair, seed) for seed, pair in itertools.product(range(s["seeds"]), pairs))
        runs = []
        for (cell, version), seed in order:
            config = {"task": "tmaze", "length": length, "cell": cell, "version": version, "seed": seed}
            config.update(s["tmaze"], episodes=s["episodes"][length])
            config.update(horizons=list(s["rl_horizons"]), eval_vaa=dict(s["eval_vaa"]))
            labels = (("task", "tmaze"), ("length", length), ("cell", cell), ("version", version))
            runs.append(Run("horizon", "horizon", labels, seed, config))
        return runs

    shortest, *longer = sorted(s["lengths"])
    runs = tmaze_runs(shortest)
    for (cell, version), seed in itertools.product(pairs, range(s["seeds"])):
        config = {"task": "copy", **s["copy"], "cell": cell, "version": version, "seed": seed}
        if preset == "smoke":
            config.update(vaa_steps=20, warmup={"steps": 5})
        config.update(horizons=list(s["copy_horizons"]), eval_sequences=s["eval_sequences"])
        labels = (("task", "copy"), ("T", config["T"]), ("cell", cell), ("version", version))
        runs.append(Run("horizon", "horizon", labels, seed, config))
    for length in longer:
        runs += tmaze_runs(length, seeds_first=True)
    return runs


def build_grid(experiment: str, preset: str) -> list[Run]:
    """The runs of ``experiment`` at ``preset`` scale."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}; got {experiment!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    if experiment == "horizon":
        return _horizon_grid(preset)
    paper = preset == "paper"
    if preset == "smoke":
        common = {"num_train": 64, "num_test": 64, "epochs": 1, "layers": 1, "width": 8, "vaa_steps": 20}
        if experiment == "tmaze":
            return [
                Run(
                    experiment,
                    "tmaze",
                    (("length", 3), ("cell", "gru"), ("version", v)),
                    0,
                    {
                        "length": 3,
                        "cell": "gru",
                        "version": v,
                        "episodes": 20,
                        "seed": 0,
                        "warmup_steps": 5,
                        "buffer_size": 256,
                        "vaa_measure_interval": 0,
                    },
                )
                for v in ("classic", "warmup")
            ]
        task = {
            "copy": "copy",
            "vaa-vs-loss": "copy",
            "denoising": "denoising",
            "psmnist": "psmnist",
            "plsmnist": "plsmnist",
        }[experiment]
        size = {"copy": {"T": 10}, "denoising": {"T": 20, "N": 5}, "psmnist": {}, "plsmnist": {"N": 2}}[task]
        return _supervised_grid(
            experiment,
            [size],
            [("gru", "classic"), ("gru", "warmup")],
            1,
            {**common, "task": task, "warmup": {"steps": 5}},
        )

    if experiment == "copy":
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup", "double"), BISTABLE_CELLS)
        if paper:
            sizes = [{"T": t} for t in (50, 300, 600)]
            common = {"task": "copy", "layers": 1, "width": 128, "epochs": 50}
            return _supervised_grid(experiment, sizes, pairs, 3, common)
        pairs = _cell_versions(("gru", "lstm", "mgu", "chrono"), ("classic", "warmup")) + [
            ("gru", "double"),
            ("nbrc", "classic"),
        ]
        common = {"task": "copy", "layers": 1, "width": 128, "epochs": 10, **SMALL_DATA}
        return _supervised_grid(experiment, [{"T": 50}], pairs, 3, common)
    if experiment == "denoising":
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup", "double"), BISTABLE_CELLS)
        if paper:
            sizes = [{"T": 200, "N": n} for n in (5, 100)]
            common = {"task": "denoising", "layers": 2, "width": 256, "epochs": 50}
            return _supervised_grid(experiment, sizes, pairs, 3, common)
        pairs = _cell_versions(("gru",), ("classic", "warmup", "double"), ("nbrc",))
        common = {
            "task": "denoising",
            "layers": 2,
            "width": 64,
            "epochs": 15,
            **SMALL_DATA,
            "num_train": 8000,
        }
        return _supervised_grid(experiment, [{"T": 60, "N": 30}], pairs, 2, common)
    if experiment == "vaa-vs-loss":
        pairs = [(c, "classic") for c in ("lstm", "chrono", "gru", "mgu", "brc", "nbrc")]
        if paper:
            common = {"task": "copy", "layers": 1, "width": 128, "epochs": 50}
            return _supervised_grid(experiment, [{"T": 50}], pairs, 5, common)
        common = {"task": "copy", "layers": 1, "width": 128, "epochs": 15, **SMALL_DATA}
        return _supervised_grid(experiment, [{"T": 50}], pairs, 3, common)
    if experiment in ("psmnist", "plsmnist"):
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup", "double"), BISTABLE_CELLS)
        sizes = [{}] if experiment == "psmnist" else [{"N": n} for n in (72, 472)]
        if paper:
            common = {"task": experiment, "layers": 2, "width": 256, "epochs": 70}
            return _supervised_grid(experiment, sizes, pairs, 3, common)
        pairs = _cell_versions(("gru",), ("classic", "warmup", "double"))
        sizes = [{}] if experiment == "psmnist" else [{"N": 72}]
        common = {"task": experiment, "layers": 2, "width": 64, "epochs": 5, "vaa_iterations": 0}
        return _supervised_grid(experiment, sizes, pairs, 2, common)
    # tmaze, Fig. 13: episodes to the optimal policy
    if paper:
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup"), BISTABLE_CELLS)
        lengths, seeds, extra = (20, 100, 200), 5, {"hidden_size": 256, "episodes": 2000}
    else:  # the paper's lengths with the library's defaults (GRU 2 × 32), as scripts/train_tmaze.py runs them
        pairs = _cell_versions(("gru",), ("classic", "warmup"))
        lengths, seeds, extra = (50, 100, 200), 5, {"stop_when_optimal": True, "vaa_measure_interval": 0}
    budget = {50: 600, 100: 600, 200: 600}  # training episodes at most (small preset)
    seeds_at: dict[int, int] = {}
    return [
        Run(
            experiment,
            "tmaze",
            (("length", length), ("cell", cell), ("version", version)),
            seed,
            {
                "length": length,
                "cell": cell,
                "version": version,
                "seed": seed,
                **({} if paper else {"episodes": budget[length]}),
                **extra,
            },
        )
        for length, (cell, version) in itertools.product(lengths, pairs)
        for seed in range(seeds_at.get(length, seeds))
    ]
