"""The statistics of every multi-seed comparison whose per-seed records are committed under ``results/``,
computed by :mod:`experiments.statistics` from those records alone (nothing is trained): one Markdown page
of tables and one PNG per section, written by :func:`write_statistics` (the command ``mm-stats``).

Sections, each read from its records:

- T-Maze, Fig. 13 (``tmaze/small/*/metrics.json``): episodes to the optimal policy, warmup against classic;
- T-Maze on reporting seeds (``tmaze-reporting/*.jsonl``): the runner's defaults at L = 20, 50, 100
  (2 × 32; ``-h64``: 2 × 64), and its two comparisons on the shared seeds (warmup against classic,
  C = 2 against C = 20);
- DRQN ablation (``drqn-ablation/*.jsonl``, the tables of ``docs/drqn-parity.md``): every variant against
  round 3's defaults (``S-none``) at the same length;
- horizon generalisation (``horizon/small``, ``horizon/train-on``): T-Maze episodes at L and the number of
  longer corridors L' where the policy is still optimal, copy first input's MSE at T and T';
- supervised grids (``copy/small``, ``vaa-vs-loss/small``, ``denoising/small``, ``copy/long``,
  ``denoising/long``: test MSE; ``psmnist/small``, ``plsmnist/small``: test accuracy);
- memory suites (``memory-suites/small``): POPGym's MMER and the final return of DRQN and RecurrentPPO, each
  with the warmup against without it.

Conventions (also printed on the page): a T-Maze run that never reached the optimal policy counts as
reaching it at the episode budget (censored, never dropped); "final policy optimal" and other yes/no
outcomes are fractions (the mean of 0/1 runs: an IQM of 0s and 1s would say little); methods are compared
on the seeds they share.

Each section is a function of its module (:mod:`experiments.statistics_tmaze`,
:mod:`experiments.statistics_horizon`, :mod:`experiments.statistics_supervised`,
:mod:`experiments.statistics_memory`), what they share is in
:mod:`experiments.statistics_common`; the names of ``__all__``, ``COLORS`` and ``HORIZON_SCORE`` are
importable from here.
"""

from __future__ import annotations

from pathlib import Path

from experiments.statistics import REPS
from experiments.statistics_common import COLORS as COLORS
from experiments.statistics_common import HORIZON_SCORE as HORIZON_SCORE
from experiments.statistics_common import (
    Report,
    episodes_to_optimal,
    grid_runs,
    horizon_score,
    jsonl_records,
    trained_budget,
)
from experiments.statistics_horizon import horizon
from experiments.statistics_memory import memory_suites
from experiments.statistics_supervised import supervised
from experiments.statistics_tmaze import drqn_ablation, tmaze_fig13, tmaze_reporting

SECTIONS = (tmaze_fig13, tmaze_reporting, drqn_ablation, horizon, supervised, memory_suites)
"""The sections of the page, in its order: each takes the :class:`Report` and returns its Markdown lines."""


def write_statistics(
    results: str | Path = "results", out: str | Path | None = None, reps: int = REPS, seed: int = 0
) -> Path:
    """Compute every section of :data:`SECTIONS` from the records under ``results`` and write the page
    ``README.md`` and its PNGs into ``out`` (default ``<results>/statistics``); returns the page's path."""
    results = Path(results)
    out = Path(out) if out is not None else results / "statistics"
    out.mkdir(parents=True, exist_ok=True)
    report = Report(results, out, reps, seed)
    sections = [line for section in SECTIONS for line in section(report)]
    flags = "" if (reps, seed) == (REPS, 0) else f" --reps {reps} --seed {seed}"
    page = [
        "# Statistics of the committed results (IQM, 95 % stratified bootstrap CIs)",
        "",
        f"Written by `mm-stats{flags}` (in a checkout: `python scripts/stats.py{flags}`) from the per-seed "
        "records under `results/` alone (nothing is trained), by rliable "
        '(`pip install "multistable-memory[results]"`) through `experiments/statistics.py`:',
        "",
        "- **IQM**: the interquartile mean of the runs (rliable's `aggregate_iqm`, SciPy's `trim_mean(·, "
        "0.25)`: ⌊n/4⌋ runs cut at each end, so with fewer than 4 runs it is the mean). Yes/no outcomes "
        "(final policy optimal) are fractions: the mean of the 0/1 runs.",
        "- **95 % CI**: rliable's stratified bootstrap (runs resampled within each task), percentile "
        f"intervals, {reps} replications from seed {seed}: the same records give the same page. With 2 "
        "to 5 runs a percentile interval cannot reach beyond the values observed: [1.00, 1.00] says that "
        "every resample of these few runs agrees, not that the result is certain.",
        "- **P(X better than Y)**: rliable's probability of improvement, the probability that a run of X "
        "is better than a run of Y (ties count one half), averaged over tasks; its CI resamples the runs "
        "of X and of Y independently. 1: every run of X beats every run of Y; 0.5: no difference.",
        "- **Censoring**: a T-Maze run that never reached the optimal policy counts as reaching it at its "
        "episode budget (written `600+`); no run is dropped. A run first optimal at the last check ties "
        "with a censored one. Performance profiles (the fraction of runs optimal within τ episodes) stop "
        "before the budget, so a censored run is within no τ.",
        "",
        *sections,
        "## Not covered",
        "",
        *(f"- {item}" for item in report.left_out),
        "- `results/warmup-seeds/randn-2x256.jsonl`: one outcome, VAA = 1.00 for all 60 networks (50 "
        "warmed up in float32, 10 GRUs with bfloat16 products; every estimate would be 1.00 [1.00, 1.00]), "
        "no comparison.",
        "- `results/tmaze-long/` (L = 500 and 1 000, beyond the paper's lengths): the warmup alone, on "
        "tuning seeds (0–4), each loss or machine on one to five of them; no comparison between versions.",
        "- CPU and wall times: measured on a machine shared with other jobs, not compared here.",
        "",
    ]
    path = out / "README.md"
    path.write_text("\n".join(page))
    return path


__all__ = [
    "SECTIONS",
    "Report",
    "drqn_ablation",
    "episodes_to_optimal",
    "grid_runs",
    "horizon",
    "horizon_score",
    "jsonl_records",
    "memory_suites",
    "supervised",
    "tmaze_fig13",
    "tmaze_reporting",
    "trained_budget",
    "write_statistics",
]
