"""Evaluate a saved DRQN model on the T-Maze, on any corridor length (also longer than it was trained on).

Example (a model trained by scripts/train_tmaze.py on L = 20, evaluated on L = 20, 50 and 100):

    python scripts/evaluate_tmaze.py runs/TMaze-v0__drqn-gru-warmup-L20__0__1700000000/model.zip \
        --lengths 20 50 100

For each length it prints the success rate (the rewarding goal entered), the mean undiscounted
return and episode length over ``--episodes`` episodes (random layouts), and whether the greedy
policy is optimal (return 4 in L + 1 steps in both layouts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import tyro
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.tmaze import is_tmaze_optimal
from recurrent_q.drqn import DRQN


@dataclass
class EvaluateTMazeArgs:
    model: tyro.conf.Positional[str]
    """Path of the model zip written by scripts/train_tmaze.py."""
    lengths: list[int] = field(default_factory=lambda: [20])
    """Corridor lengths to evaluate on."""
    episodes: int = 100
    """Episodes per length."""
    deterministic: bool = True
    """Greedy actions; --no-deterministic: ε-greedy with the model's exploration rate."""
    seed: int = 0
    """Seed of the env layouts (and of the ε-greedy draws)."""
    device: str = "cpu"
    """Torch device."""


def evaluate(args: EvaluateTMazeArgs) -> list[dict]:
    model = DRQN.load(args.model, device=args.device)
    model.policy.rng = np.random.default_rng(args.seed)
    rows = []
    for length in args.lengths:
        env = Monitor(gym.make("TMaze-v0", length=length))
        env.reset(seed=args.seed)
        successes = []

        def record(local_vars: dict, _globals: dict, successes: list = successes) -> None:
            if local_vars["done"]:
                successes.append(bool(local_vars["info"].get("is_success", False)))

        returns, steps = evaluate_policy(
            model,
            env,
            n_eval_episodes=args.episodes,
            deterministic=args.deterministic,
            return_episode_rewards=True,
            callback=record,
        )
        rows.append(
            {
                "length": length,
                "success_rate": float(np.mean(successes)),
                "mean_return": float(np.mean(returns)),
                "mean_steps": float(np.mean(steps)),
                "optimal": is_tmaze_optimal(model, gym.make("TMaze-v0", length=length)),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    args = tyro.cli(EvaluateTMazeArgs, args=argv, description=__doc__)
    torch.set_num_threads(1)
    rows = evaluate(args)
    print(f"{'L':>5} {'success':>8} {'return':>8} {'steps':>8}  optimal")
    for row in rows:
        print(
            f"{row['length']:>5} {row['success_rate']:>8.2f} {row['mean_return']:>8.3f} "
            f"{row['mean_steps']:>8.1f}  {row['optimal']}"
        )
    return rows


if __name__ == "__main__":
    main()
