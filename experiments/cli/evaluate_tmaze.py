"""Evaluate a saved DRQN model on the T-Maze, on any corridor length (also longer than it was trained on).

Example (a model trained by ``mm-train-tmaze`` on L = 20, evaluated up to L = 100 000):

    mm-evaluate-tmaze runs/TMaze-v0__drqn-gru-warmup-L20__0__1700000000/model.zip \
        --lengths 20 100 1000 10000 100000

Several models (the seeds of a run, say) are evaluated together: ``mm-evaluate-tmaze runs/*L20__*/model.zip
--lengths 100000``. (``python -m experiments.cli.evaluate_tmaze`` and, in a checkout,
``python scripts/evaluate_tmaze.py`` are the same command.)

The greedy policy is deterministic, so each length is played once per layout, both layouts of every
model at once (``experiments.evaluation.greedy_rollouts``: each Q-network steps on its batch, one numpy
vector T-Maze moves all the agents; inputs encoded as in training). For each model and length it
prints, per layout, the
undiscounted return and the episode length (the episode played out, up to the env's horizon 3L),
whether the greedy policy is optimal (return 4 in L + 1 steps in both layouts, the check of
``experiments.evaluation.is_tmaze_optimal``) and the seconds the evaluation took.

``--diagnose-length L`` also prints, for each model, ``experiments.evaluation.horizon_diagnosis`` at its
training length ``L``: whether it predicts, from the network alone (the corridor step's drift, linearised
after ``10 L`` settling steps, keeps both layouts read right), that the model stays optimal at every longer
corridor up to ``L' = 100 000``, and up to which ``L'`` it does.

``--margins`` also prints, for each model and length, where its greedy policy leaves the optimal episode
(``experiments.evaluation.optimal_path_errors``): per layout, the smallest action margin along the optimal
path and its step beside the optimal Q-function's margin there, and every step whose margin is negative
with the action that beats the optimal one and both Q-values beside ``Q*``'s (the model's own γ). A policy
that is not optimal at its training length shows there why.

``--no-deterministic`` plays ``--episodes`` ε-greedy episodes per length through the Gymnasium env
instead (random layouts, the model's exploration rate) and prints the success rate, mean return and
episode length.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import tyro
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.evaluation import (
    greedy_rollouts,
    horizon_diagnosis,
    is_optimal_episode,
    optimal_path_errors,
)
from recurrent_q.cells import check_device
from recurrent_q.checks import check_integer
from recurrent_q.drqn import DRQN


@dataclass
class EvaluateTMazeArgs:
    models: tyro.conf.Positional[list[str]]
    """Paths of model zips written by mm-train-tmaze (one or more)."""
    lengths: list[int] = field(default_factory=lambda: [20])
    """Corridor lengths to evaluate on."""
    deterministic: bool = True
    """Greedy actions, both layouts once; --no-deterministic: ε-greedy episodes (model's exploration rate)."""
    episodes: int = 100
    """Episodes per length (with --no-deterministic only)."""
    seed: int = 0
    """Seed of the env layouts and of the ε-greedy draws (with --no-deterministic only)."""
    device: str = "cpu"
    """Torch device."""
    diagnose_length: int | None = None
    """Training length L of the models: also print the horizon diagnosis at L (None: no diagnosis)."""
    margins: bool = False
    """Also print, per length, where each model's greedy policy leaves the optimal episode and why."""

    def __post_init__(self) -> None:  # a bad value is named by the flags' parsing, not deep in torch
        for length in self.lengths:
            check_integer("lengths", length)
        check_integer("episodes", self.episodes)
        check_integer("seed", self.seed, 0)
        check_integer("diagnose_length", self.diagnose_length, optional=True)
        check_device(self.device)


def evaluate_greedy(models: list[DRQN], length: int) -> list[dict]:
    """Both layouts of every model played out by its greedy policy, and the optimality check, at corridor
    ``length``: one row per model (``seconds`` is the time of the whole batch)."""
    tic = time.perf_counter()
    played = greedy_rollouts([model.policy.acting_net for model in models], length)
    seconds = time.perf_counter() - tic
    rows = []
    for k in range(len(models)):
        returns, steps = played.returns[2 * k : 2 * k + 2], played.steps[2 * k : 2 * k + 2]
        # optimal iff both episodes earn 4 in L + 1 steps (the check's rollouts, cut at L + 1, are prefixes)
        optimal = bool(is_optimal_episode(returns, steps, length).all())
        rows.append(
            {
                "length": length,
                "return_up": float(returns[0]),
                "return_down": float(returns[1]),
                "steps_up": int(steps[0]),
                "steps_down": int(steps[1]),
                "optimal": optimal,
                "seconds": seconds,
            }
        )
    return rows


def evaluate_epsilon_greedy(model: DRQN, length: int, episodes: int, seed: int) -> dict:
    """``episodes`` ε-greedy episodes through the Gymnasium env: success rate, mean return and length."""
    env = Monitor(gym.make("TMaze-v0", length=length))
    env.reset(seed=seed)
    successes: list[bool] = []

    def record(local_vars: dict, _globals: dict) -> None:
        if local_vars["done"]:
            successes.append(bool(local_vars["info"].get("is_success", False)))

    returns, steps = evaluate_policy(
        model,
        env,
        n_eval_episodes=episodes,
        deterministic=False,
        return_episode_rewards=True,
        callback=record,
    )
    return {
        "length": length,
        "success_rate": float(np.mean(successes)),
        "mean_return": float(np.mean(returns)),
        "mean_steps": float(np.mean(steps)),
    }


def evaluate(args: EvaluateTMazeArgs, models: list[DRQN] | None = None) -> list[dict]:
    """One row per model and length, model after model (each with its ``model`` path).

    :param models: the models of ``args.models``, already loaded (None: loaded here).
    """
    if models is None:
        models = [load_model(path, args.device) for path in args.models]
    rows: dict[tuple[int, int], dict] = {}
    for j, length in enumerate(args.lengths):
        if args.deterministic:
            for k, row in enumerate(evaluate_greedy(models, length)):
                rows[k, j] = row
        else:
            for k, model in enumerate(models):
                model.policy.rng = np.random.default_rng(args.seed)
                rows[k, j] = evaluate_epsilon_greedy(model, length, args.episodes, args.seed)
    return [{"model": args.models[k], **rows[k, j]} for k, j in sorted(rows)]


class ModelFileError(ValueError):
    """A model file that is missing or cannot be read (the command's error, not a traceback)."""


def load_model(path: str, device: str) -> DRQN:
    """``DRQN.load(path)``, its errors for a missing or unreadable file as a :class:`ModelFileError`."""
    try:
        return DRQN.load(path, device=device)
    except (FileNotFoundError, ValueError) as error:
        raise ModelFileError(str(error)) from error


def run(argv: list[str] | None = None) -> list[dict]:
    """The command on the arguments ``argv`` (default: the process's): evaluate, print the table; the rows of
    :func:`evaluate`."""
    args = tyro.cli(EvaluateTMazeArgs, args=argv, description=__doc__)
    torch.set_num_threads(1)
    models = [load_model(path, args.device) for path in args.models]
    rows = evaluate(args, models)
    several = len(args.models) > 1
    if several:
        for k, path in enumerate(args.models):
            print(f"model {k}: {path}")
    index = {path: k for k, path in enumerate(args.models)}

    def model_column(r: dict) -> str:
        return f"{index[r['model']]:>5} " if several else ""

    head = f"{'model':>5} " if several else ""
    if args.deterministic:
        print(f"{head}{'L':>7} {'return up':>10} {'down':>8} {'steps up':>9} {'down':>7}  optimal  seconds")
        for r in rows:
            print(
                f"{model_column(r)}{r['length']:>7} {r['return_up']:>10.2f} {r['return_down']:>8.2f} "
                f"{r['steps_up']:>9} {r['steps_down']:>7}  {r['optimal']!s:>7}  {r['seconds']:>7.1f}"
            )
        if several:
            print("(seconds: the models of a length are played together)")
    else:
        print(f"{head}{'L':>7} {'success':>8} {'return':>8} {'steps':>8}")
        for r in rows:
            line = f"{model_column(r)}{r['length']:>7} {r['success_rate']:>8.2f} {r['mean_return']:>8.3f}"
            print(f"{line} {r['mean_steps']:>8.1f}")
    if args.margins:
        for length in args.lengths:
            for k, model in enumerate(models):
                for layout in optimal_path_errors(model.policy.acting_net, length, model.gamma):
                    print(errors_line(layout, length, k if several else None))
    if args.diagnose_length is not None:
        for k, model in enumerate(models):
            print(
                diagnosis_line(
                    horizon_diagnosis(model.policy.acting_net, args.diagnose_length), k if several else None
                )
            )
    return rows


def errors_line(e: dict, length: int, model: int | None = None, most: int = 5) -> str:
    """One line of :func:`experiments.evaluation.optimal_path_errors`'s result for a layout (its first
    ``most`` wrong steps)."""
    wrong = [
        f"step {w['step']}: {w['greedy']} {w['q_greedy']:.3f} over {w['optimal']} {w['q_optimal']:.3f} "
        f"(Q* {w['q_star']:.3f})"
        for w in e["wrong"][:most]
    ]
    if len(e["wrong"]) > most:
        wrong.append(f"{len(e['wrong']) - most} more")
    n = len(e["wrong"])
    where = f"wrong at {n} step{'s' * (n != 1)}: " + "; ".join(wrong) if wrong else "right at every step"
    return (
        f"{'' if model is None else f'model {model} '}at L = {length}, {e['layout']} layout: smallest margin "
        f"{e['smallest_margin']:.3g} at step {e['at']} (Q*'s {e['optimal_margin']:.3g}); {where}"
    )


def diagnosis_line(d: dict, model: int | None = None) -> str:
    """One line of :func:`experiments.evaluation.horizon_diagnosis`'s result."""
    distances = ", ".join(f"{x:.2g}" for x in d["distance_to_attractor"])
    radii = ", ".join(f"{x:.7f}" for x in d["spectral_radius"])
    neutral = ", ".join(str(x) for x in d["neutral_dimensions"])
    drift = ", ".join(f"{x:.2g}" for x in d["drift_bound"])
    margin = ", ".join(f"{x:.2g}" for x in d["readout_margin"])
    verdict = (
        f"stays optimal at every longer corridor up to L' = {d['horizon']}"
        if d["predicts_generalisation"]
        else f"predicted up to L' = {d['predicted_horizon']} only"
    )
    return (
        f"{'' if model is None else f'model {model}: '}diagnosis at L = {d['length']}: "
        f"optimal path {d['optimal_path']}; distance to the corridor attractors (up, down) {distances} "
        f"(spectral radius {radii}); their separation {d['separation']:.3g}; read right at them "
        f"{d['attractor_readout']}; after {d['settle']} settling steps, neutral dimensions {neutral}, "
        f"linear drift by L' = {d['horizon']} {drift}, smallest readout margin {margin} -> {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    """The console command ``mm-evaluate-tmaze``: :func:`run`, exit status 0 (2: a model file is missing or
    unreadable, said in one line)."""
    try:
        run(argv)
    except ModelFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
