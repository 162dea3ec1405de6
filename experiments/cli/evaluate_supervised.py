"""Evaluate a copy-first-input run on longer sequences than it was trained on (horizon generalisation).

Example (a warmed-up GRU trained at T = 50, evaluated at T' = 100 ... 100 000):

    mm-train-supervised --task copy --T 50 --version warmup --logdir runs/copy-gru-warmup
    mm-evaluate-supervised runs/copy-gru-warmup --T 100 1000 10000 100000

(``python -m experiments.cli.evaluate_supervised`` and, in a checkout,
``python scripts/evaluate_supervised.py`` are the same command.)

RUN_DIR is the ``logdir`` of a finished ``supervised.train`` run: its ``result.json`` gives the
settings and ``best.pt`` the weights of best validation loss. For each T' it prints the test MSE of
``y_T' = u_1`` on ``--sequences`` fresh sequences (the same for every run: seed ``(--seed, T')``), and
the seconds it took. ``--json`` also writes the rows to a file.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro

from experiments.horizon import SUPERVISED_HORIZONS, TIME_CHUNK, SupervisedRunError, evaluate_supervised


@dataclass
class EvaluateSupervisedArgs:
    run_dir: tyro.conf.Positional[str]
    """Run directory written by supervised.train (mm-train-supervised --logdir)."""
    T: list[int] = field(default_factory=lambda: list(SUPERVISED_HORIZONS))
    """Sequence lengths T' to evaluate at."""
    sequences: int = 100
    """Test sequences per T'."""
    seed: int = 0
    """Seed of the test sequences (with T')."""
    chunk: int = TIME_CHUNK
    """Steps run at once (memory bound; the result does not depend on it)."""
    threads: int = 1
    """Torch threads."""
    json: str | None = None
    """Also write the rows to this JSON file."""


def run(argv: list[str] | None = None) -> list[dict]:
    """The command on the arguments ``argv`` (default: the process's): evaluate, print the table; the rows of
    :func:`experiments.horizon.evaluate_supervised`."""
    args = tyro.cli(EvaluateSupervisedArgs, args=argv, description=__doc__)
    torch.set_num_threads(args.threads)
    rows = evaluate_supervised(args.run_dir, args.T, args.sequences, args.seed, args.chunk)
    print(f"{'T':>8} {'test MSE':>12} {'seconds':>8}")
    for row in rows:
        print(f"{row['T']:>8} {row['mse']:>12.4g} {row['seconds']:>8.1f}")
    if args.json is not None:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-evaluate-supervised``: :func:`run`, exit status 0 (2: RUN_DIR is not a
    finished run, or its files cannot be read, said in one line)."""
    try:
        run(argv)
    except SupervisedRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
