"""Train one recurrent network on a supervised long-memory benchmark (docs/specification.md §7).

Example (copy first input, T = 50, warmed-up GRU 1×128, 50 epochs):

    mm-train-supervised --task copy --T 50 --cell gru --version warmup

(``python -m experiments.cli.train_supervised`` and, in a checkout, ``python scripts/train_supervised.py``
are the same command.)

Every setting of ``supervised.train.SupervisedConfig`` is a flag (``--help``). The run directory
(``--logdir``, default ``runs/{task}__{cell}-{version}__{seed}__{time}``, ``experiments.run_dirs.run_name``)
receives TensorBoard logs (the settings as a text table), a checkpoint per epoch (``--resume`` continues
from it), ``best.pt`` and ``result.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tyro

from experiments.run_dirs import run_name
from recurrent_q.checks import SettingError
from supervised.datasets import MNISTFileError
from supervised.train import SupervisedConfig, train


def run(argv: list[str] | None = None) -> dict:
    """The command on the arguments ``argv`` (default: the process's): train, print the summary; the run's
    ``SupervisedResult.to_dict()``."""
    config = tyro.cli(SupervisedConfig, args=argv, description=__doc__)
    if config.resume and config.logdir is None:
        raise SystemExit("error: --resume needs --logdir, the run directory to continue (with checkpoint.pt)")
    if config.logdir is None:
        exp_name = f"{config.cell}-{config.version}"
        config.logdir = str(Path("runs") / run_name(config.task, exp_name, config.seed))
    result = train(config)
    summary = {key: value for key, value in result.to_dict().items() if key not in ("history", "config")}
    if result.warmup_result is not None:
        summary["warmup_result"] = {
            key: value for key, value in result.warmup_result.items() if key != "history"
        }
    print(json.dumps(summary | {"logdir": config.logdir}, indent=1))
    return result.to_dict()


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-train-supervised``: :func:`run`, exit status 0 (2: a missing or unreadable
    data file or directory, said in one line)."""
    try:
        run(argv)
    except (FileNotFoundError, MNISTFileError, SettingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
