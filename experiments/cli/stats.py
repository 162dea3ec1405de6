"""The statistics of the committed results: IQM with 95 % stratified bootstrap confidence intervals,
probability of improvement and performance profiles (rliable), for every multi-seed comparison whose
per-seed records are under ``results/``. Nothing is trained.

    mm-stats                     # writes results/statistics/README.md and its PNGs (about 5 min on 2 cores)
    mm-stats --reps 200 --out /tmp/stats   # a quick look

(``python -m experiments.cli.stats`` and, in a checkout, ``python scripts/stats.py`` are the same command.)
Needs the extra ``results``: ``pip install "multistable-memory[results]"``. The sections, the records each
reads and the conventions (runs never optimal censored at the episode budget) are those of
``experiments.statistics_report``; the same records, ``--reps`` and ``--seed`` give the same page.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import tyro

from experiments.statistics import REPS
from experiments.statistics_report import write_statistics


@dataclass
class Args:
    results: str = "results"
    """folder of the committed records (a checkout's results/)"""
    out: str | None = None
    """folder to write README.md and the PNGs into (default: RESULTS/statistics)"""
    reps: int = REPS
    """bootstrap replications of each interval"""
    seed: int = 0
    """seed of the bootstraps"""


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-stats`` on the arguments ``argv`` (default: the process's): write the page
    and its plots, print the page's path; exit status 0."""
    args = tyro.cli(Args, args=argv, description=__doc__)
    print(write_statistics(args.results, args.out, args.reps, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
