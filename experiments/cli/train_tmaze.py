"""Train DRQN on the T-Maze (Lambrechts et al. 2023, Algorithm 4); report the episodes to the optimal policy.

Examples (the first is the README's main command: GRU 2×64 with warmup on a corridor of length 20):

    mm-train-tmaze
    mm-train-tmaze --length 50 --cell nbrc --version classic --seed 1
    mm-train-tmaze --length 20 --version double --episodes 2000 --no-stop-when-optimal

(``python -m experiments.cli.train_tmaze`` and, in a checkout, ``python scripts/train_tmaze.py`` are the same
command.)

Every setting of ``experiments.tmaze.TMazeConfig`` is a flag (``--help``); the command line stops at the
first optimal check, skips the costly ``train/vaa_measure`` and shows a progress bar by default. The run
directory (``--logdir``, default ``runs/TMaze-v0__{exp_name}-{cell}-{version}-L{length}__{seed}__{time}``,
``experiments.run_dirs.run_name``) receives the TensorBoard logs (``rollout/``, ``train/loss``,
``train/vaa``, ``train/vaa_measure``, ``warmup/``, ``eval/optimal``, ``eval/first_optimal_episode``; the
settings as a text table), the final model ``model.zip`` and the model of the first optimal check
``best_model.zip`` (SB3's ``EvalCallback`` convention; ``DRQN.load``; ``mm-evaluate-tmaze`` evaluates them
on any corridor length).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from experiments.evaluation import is_tmaze_optimal, optimal_at
from experiments.run_dirs import run_name
from experiments.tmaze import TMazeConfig, make_maze, run_tmaze_experiment
from recurrent_q import DRQN
from recurrent_q.checks import SettingError


@dataclass
class TrainTMazeArgs(TMazeConfig):
    """The settings of :class:`experiments.tmaze.TMazeConfig`, with the command line's own defaults."""

    stop_when_optimal: bool = True
    """Stop at the first check where the greedy policy is optimal."""
    vaa_measure_interval: int = 0
    """Episodes between train/vaa_measure estimates (M = 10 000, several seconds each; 0: never)."""
    progress_bar: bool = True
    """A tqdm bar per stage: buffer fill, warmup, training episodes."""
    runs_dir: str = "runs"
    """Parent of the run directory when --logdir is not given."""
    exp_name: str = "drqn"
    """Experiment name, the prefix of the run name."""
    threads: int = 1
    """torch threads (1 is fastest for 2×32 and 2×64 networks on CPU)."""
    generalisation_length: int | None = None
    """After training, also play the saved models' greedy policy on a corridor of this length (temporal
    horizon generalisation; default 1000 × length, a few seconds; 0: no such check)."""


def run(argv: list[str] | None = None) -> dict:
    """The command on the arguments ``argv`` (default: the process's): train, save, print the summary line;
    the result of :func:`experiments.tmaze.run_tmaze_experiment` with ``run_dir``."""
    args = tyro.cli(TrainTMazeArgs, args=argv, description=__doc__)
    torch.set_num_threads(args.threads)
    exp = f"{args.exp_name}-{args.cell}-{args.version}-L{args.length}"
    if args.logdir is None:
        args.logdir = str(Path(args.runs_dir) / run_name(args.env_id, exp, args.seed))
    run_dir = Path(args.logdir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.save_path is None:
        args.save_path = str(run_dir / "model.zip")
    if args.best_model_save_path is None:
        args.best_model_save_path = str(run_dir)
    config = TMazeConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TMazeConfig)})
    try:
        result = run_tmaze_experiment(config)
    except SettingError:  # raised before anything is written: leave no empty run directory
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    result["run_dir"] = str(run_dir)
    (run_dir / "result.json").write_text(json.dumps(result | {"args": dataclasses.asdict(args)}, indent=1))
    first = result["first_optimal_episode"]
    reached = "never reached" if first is None else f"after {first} episodes (held: {result['held']})"
    final = "optimal" if result["optimal_at_end"] else "not optimal"
    best = ""
    if first is not None and not args.stop_when_optimal:
        best = f"; the first optimal one to {Path(args.best_model_save_path) / 'best_model.zip'}"
    print(
        f"{args.env_id} L={args.length} {args.cell} {args.version} seed={args.seed}: "
        f"optimal policy {reached}; "
        f"{result['episodes']} training episodes (+{result['fill_episodes']} to fill the buffer), "
        f"wall time {result['wall_time_s']:.1f} s; final policy {final}, saved to {args.save_path}{best}"
    )
    longer = 1000 * args.length if args.generalisation_length is None else args.generalisation_length
    if longer:
        result |= generalisation_check(args, config, longer)
        (run_dir / "result.json").write_text(
            json.dumps(result | {"args": dataclasses.asdict(args)}, indent=1)
        )
    return result


def generalisation_check(args: TrainTMazeArgs, config: TMazeConfig, length: int) -> dict:
    """Play the saved final model (and ``best_model.zip`` if it differs) on the corridor of ``length`` of
    the run's maze (``config``), print whether each is optimal there, and return
    ``{"optimal_at_length": length, ...}``."""
    models = {"final model": Path(args.save_path)}
    best = Path(args.best_model_save_path) / "best_model.zip"
    if best.exists() and not args.stop_when_optimal:
        models["first optimal model"] = best
    start = time.perf_counter()
    if args.env_id == "TMaze-v0":  # batched rollouts of both layouts
        verdicts = {
            name: optimal_at(DRQN.load(path, device=args.device).policy.acting_net, length)
            for name, path in models.items()
        }
    else:  # the four layouts, the second cue where it was in training
        maze = make_maze(config, length=length)
        verdicts = {
            name: is_tmaze_optimal(DRQN.load(path, device=args.device), maze) for name, path in models.items()
        }
    said = ", ".join(f"{name} {'optimal' if ok else 'not optimal'}" for name, ok in verdicts.items())
    print(
        f"On a corridor of length {length} ({length / args.length:g} × L; "
        f"{time.perf_counter() - start:.1f} s): {said}"
    )
    return {
        "generalisation_length": length,
        "optimal_at_generalisation_length": verdicts["final model"],
        "best_optimal_at_generalisation_length": verdicts.get("first optimal model"),
    }


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-train-tmaze``: :func:`run`, exit status 0 (2, with one error line, for a
    setting out of range)."""
    try:
        run(argv)
    except SettingError as error:  # a setting the flags' own parsing does not check (DRQN's, the warmup's)
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
