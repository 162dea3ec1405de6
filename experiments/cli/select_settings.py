"""Select a supervised model's settings as Appendix F of the paper does, with Optuna (one study per task
size, cell and version), and print the selected settings and the table of trials.

    mm-select denoising --cell gru --version warmup --preset small
    mm-select plsmnist --cell lstm --version double --preset paper --ray-address auto --data-dir mnist
    mm-select copy --cell gru --version classic --sampler tpe --n-trials 20 --final-seeds 3

(``python -m experiments.cli.select_settings`` and, in a checkout, ``python scripts/select_settings.py``
are the same command.) Each setting of the preset's search space (``experiments.selection.SEARCH_SPACES``;
``paper``: layers 1-3, width 256/512, learning rate 1e-4/5e-4/1e-3, batch 32/64) is trained on
``--splits`` splits of the learning set into training, validation and selection sets; the setting of
lowest mean selection loss is selected. The study, its runs and its tables live in
``<out>/selection/<experiment>/<preset>/<size, cell, version>/`` (``study.log``, Optuna's journal, is
what a relaunch resumes; ``selection.md``, ``selection.json``). With ``--ray-address`` the same study is
driven by Ray Tune's Optuna searcher (``ray.tune.search.optuna.OptunaSearch``), one Tune trial per setting
on the cluster's CPUs (Tune's files in ``tune/`` beside the journal); a relaunch with or without Ray
resumes it. Needs the extra ``sweep`` (``pip install '.[sweep]'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import tyro

from experiments.presets import PRESETS
from experiments.selection import SELECTION_EXPERIMENTS, select
from recurrent_q.cells import CellName
from supervised.train import VERSIONS


@dataclass
class Args:
    experiment: tyro.conf.Positional[Literal[SELECTION_EXPERIMENTS]]
    """the supervised benchmark"""
    cell: CellName = "gru"
    """the recurrent cell (recurrent_q.CELL_NAMES)"""
    version: Literal[VERSIONS] = "classic"
    """the version of the cell"""
    preset: Literal[PRESETS] = "small"
    """search space and budgets: `paper` (Appendix F's grid at the paper's sizes), `small` (2 CPU cores),
    `smoke` (two tiny settings, for tests)"""
    T: int | None = None
    """sequence length (default: the preset's largest size)"""
    N: int | None = None
    """forgetting length of denoising / line-sequential MNIST (default: the preset's largest size)"""
    sampler: Literal["grid", "tpe"] = "grid"
    """`grid`: every setting of the space (the paper); `tpe`: Optuna's TPE for --n-trials trials"""
    n_trials: int | None = None
    """trials of the TPE sampler"""
    splits: int | None = None
    """splits of the learning set per setting (default: 5 at paper, 3 at small, 2 at smoke)"""
    final_seeds: int = 0
    """then train the selected setting on the standard split with this many seeds; report its test figures"""
    out: str = "results"
    """root folder (the study goes to <out>/selection/...)"""
    workers: int = 2
    """local worker processes for the splits of a trial"""
    ray_address: str | None = None
    """drive the study with Ray Tune's Optuna searcher on this cluster (`auto`, `ray://host:10001`, `local`):
    one Tune trial (1 CPU) per setting, its splits one after the other"""
    data_dir: str | None = None
    """MNIST IDX folder (psmnist, plsmnist)"""
    progress: bool = True
    """show a progress bar over trials"""


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-select`` on ``argv`` (default: the process's arguments)."""
    args = tyro.cli(Args, args=argv, description=__doc__)
    options = vars(args)
    size = {k: value for k in ("T", "N") if (value := options.pop(k)) is not None}
    if size:
        from experiments.presets import GRIDS

        size = {**GRIDS[args.experiment][args.preset]["sizes"][-1], **size}
    summary = select(**options, size=size or None)
    print(summary["text"], end="")
    loss = summary["selection_loss"]
    print(f"selected: {summary['selected']} (mean selection loss {loss:.4g}); {summary['root']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
