"""Reproduce the paper's experiments: one command per figure, at any scale.

    mm-reproduce copy --preset small            # local worker processes
    mm-reproduce tmaze --preset paper --ray-address auto   # on a Ray cluster

(``python -m experiments.cli.reproduce`` and, in a checkout, ``python scripts/reproduce.py`` are the same
command.)

Each experiment is a grid of runs (cells x versions x task sizes x seeds), written under
``<out>/<experiment>/<preset>/<run name>/``; a relaunch runs only what is missing and never deletes a
run (``experiments.run_dirs`` says what it does with changed or unreadable runs). The grid ends with
``results.md`` (mean ± std over seeds), ``results.json`` and ``results.png``.

Experiments (paper figures): ``copy`` (Figs. 11, 17), ``denoising`` (Figs. 12, 18), ``tmaze``
(Fig. 13), ``vaa-vs-loss`` (Figs. 3-4), ``psmnist`` (Figs. 14, 19), ``plsmnist`` (Figs. 15, 20);
``horizon``: temporal horizon generalisation (T-Maze trained at L = 20 and 50, evaluated up to
L' = 100 000; copy first input trained at T = 50, evaluated up to T' = 100 000; two tables and a plot
against L' and T', see ``experiments.horizon``).
``memory-suites``: DRQN with and without warmup and sb3-contrib's RecurrentPPO with and without
``WarmupCallback`` on four POPGym tasks and MiniGrid-MemoryS7, the same env-step budget for each, 3 seeds;
one table of POPGym's MMER (``experiments.memory_suites``; needs ``pip install ".[memory-suites]"``;
presets ``small`` and ``smoke`` only).
Presets: ``paper`` (the paper's sizes, for a GPU cluster), ``small`` (2 CPU cores, well under an
hour per experiment) and ``smoke`` (two tiny runs, for tests); ``copy`` and ``denoising`` also have
``long`` (the paper's lengths, copy T = 300 and 600, denoising T = 200 with N = 5 and 100, at the ``small``
budget: a few hours on 2 CPU cores; ``experiments.presets.GRIDS``); ``horizon`` also has ``train-on`` (its
``small`` T-Maze at L = 20, every run trained to the end of its budget instead of stopping at the first
optimal check, five cells and versions, no copy runs) and the recipes' presets
(``experiments.horizon_presets.HORIZON_SETTINGS``).

``--dry-run`` runs nothing: it lists the grid's runs and counts their arithmetic (``experiments.cost``),
e.g. ``mm-reproduce copy --preset paper --dry-run`` before a cluster launch. ``--write-finished`` runs
nothing either: it writes the table and plot of the runs finished so far, for a grid stopped before its end
(a relaunch without it runs the rest).

Exit status: 0, or 1 when some runs diverged (their table rows say how many), 2 when a run directory
holds a run made with other settings (nothing is run; ``--restart-changed`` moves such runs aside).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import tyro

from experiments.grid import check_reproduce_arguments, reproduce
from experiments.registry import EXPERIMENTS, PRESET_NAMES, build_grid
from experiments.run_dirs import RunConflictError

ExperimentName = Literal[tuple(EXPERIMENTS)]  # the registry's experiments, in its order
PresetName = Literal[PRESET_NAMES]


@dataclass
class Args:
    experiment: tyro.conf.Positional[ExperimentName]
    """which paper figure to reproduce"""
    preset: PresetName = "small"
    """grid scale: `small` (2 CPU cores), `paper` (the paper's sizes), `smoke` (two tiny runs); `long` (copy
    and denoising only: the paper's lengths at the `small` budget); `train-on` (horizon only: the `small`
    T-Maze at L = 20 trained to the end of its budget)"""
    out: str = "results"
    """root folder; runs go to <out>/<experiment>/<preset>/<run name>/"""
    workers: int = 2
    """local worker processes (1 = run inline)"""
    ray_address: str | None = None
    """run on Ray instead: a cluster address (`auto`, `ray://host:10001`) or `local`"""
    data_dir: str | None = None
    """MNIST IDX folder for psmnist/plsmnist (where the data is read; not part of a run's identity)"""
    restart_changed: bool = False
    """run again the runs whose directory holds other settings, moving the old ones to <root>/_replaced/"""
    progress: bool = True
    """show a progress bar over runs"""
    first_seed: int = 0
    """the grid's seeds start here (defaults were chosen on seeds 0-9: report success rates from 1000 on);
    runs go to <out>/<experiment>/<preset>-from-seed-<first_seed>/"""
    dry_run: bool = False
    """run nothing: list the runs (grouped, with how many are finished) and the floor of their arithmetic
    in TFLOP (experiments.cost), with the time of what is left at --rate"""
    rate: float = 1e12
    """operations per second for --dry-run's time: what your device reaches on these runs (measure one),
    not its peak"""
    write_finished: bool = False
    """run nothing: write the table and plot of the runs finished so far (a grid stopped before its end)"""


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-reproduce`` on the arguments ``argv`` (default: the process's): the grid,
    and its exit status."""
    args = tyro.cli(Args, args=argv, description=__doc__)
    try:
        check_reproduce_arguments(
            args.workers, args.first_seed, args.rate, True, args.dry_run, args.write_finished
        )
        build_grid(args.experiment, args.preset)  # a preset the experiment does not have: its presets named
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        summary = reproduce(**vars(args))
    except RunConflictError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if summary["diverged"] else 0


if __name__ == "__main__":
    sys.exit(main())
