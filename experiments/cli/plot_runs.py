"""Curves of runs, mean ± std over seeds: validation loss and VAA per epoch for supervised runs (like the
paper's Figs. 3–4), mean return and VAA against environment steps for T-Maze runs.

    mm-plot-runs runs/copy__gru-classic__* runs/copy__gru-warmup__* --output copy.png
    mm-plot-runs results/vaa-vs-loss/small --output vaa-vs-loss.png   # a whole grid
    mm-plot-runs results/tmaze-long/*.jsonl --output lengths.png      # episodes to optimal against L

(``python -m experiments.cli.plot_runs`` and, in a checkout, ``python scripts/plot_runs.py`` are the same
command.)

A run directory is read from its ``metrics.json`` (written by ``mm-reproduce``) or
``result.json`` (``mm-train-supervised``), whose ``history`` holds the per-epoch values, and
otherwise from its TensorBoard event files. A folder holding run directories (a grid's root) stands for
all of them. Runs that differ only by their seed are one curve (``__seed=N`` in a grid's run names, a
trailing ``__{seed}`` or ``__{seed}__{time}`` in the training commands' ones), with a band of ± one
standard deviation; curves logged at different steps are interpolated onto the union of their steps,
each within its own range (the mean at a step is over the runs that reached it). Exits with status 1
and a message when none of the runs has anything to plot. JSON-lines records of
``benchmarks/bench_drqn.py`` (every path a ``.jsonl`` file) give another figure: episodes to the optimal
policy against the corridor length, a point per run, a line through the medians per variant
(``experiments.curves.plot_lengths``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import tyro

from experiments.curves import plot_runs


@dataclass
class Args:
    runs: tyro.conf.Positional[tuple[str, ...]]
    """run directories, or folders of run directories (a grid's root), or bench_drqn.py's .jsonl records"""
    output: str = "runs.png"
    """PNG file to write"""
    title: str = ""
    """figure title"""


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-plot-runs`` on the arguments ``argv`` (default: the process's): write the
    plot, print its path; exit status 0."""
    args = tyro.cli(Args, args=argv, description=__doc__)
    print(plot_runs(args.runs, args.output, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
