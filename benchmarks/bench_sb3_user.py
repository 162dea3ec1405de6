"""The SB3 user's T-Maze run: ``DRQN("RecurrentQPolicy", env, ...)`` with the class's own defaults plus the
T-Maze runner's documented settings (README), a plain ``model.learn(total_timesteps)`` (no stop at the
first optimal check, no callback), then the optimality check of the final greedy policy.

One JSON line per seed (resumable: seeds already in ``--out`` are skipped)::

    python benchmarks/bench_sb3_user.py --length 20 --timesteps 20000 --seeds $(seq 1000 1019) --jobs 2 \
        --out runs/sb3-user/L20.jsonl

``optimal_at_end`` is the figure of the robust-learning issue's item 4 (≥ 90 % of reporting seeds at L = 20).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from jsonl_grid import run_jsonl_grid


def run_one(length: int, seed: int, timesteps: int) -> dict[str, Any]:
    """Build the documented DRQN as a user would, learn ``timesteps`` steps, check the final policy."""
    import gymnasium as gym
    import torch

    import tmaze_gym  # noqa: F401  (registers TMaze-v0)
    from experiments.evaluation import authors_horizon, is_tmaze_optimal
    from recurrent_q import DRQN, HeldLinearSchedule, WarmupConfig

    torch.set_num_threads(1)
    tic, cpu = time.perf_counter(), time.process_time()
    model = DRQN(
        "RecurrentQPolicy",
        gym.make("TMaze-v0", length=length, max_episode_steps=authors_horizon(length)),
        use_warmup=True,
        warmup_config=WarmupConfig(batch_size=32),
        gradient_steps=20,
        target_update_interval=2,
        n_steps=10,
        n_step_correction="watkins",
        learning_rate=HeldLinearSchedule(1e-3, 1e-4, 0.5),
        average_tau=0.02,
        average_collects=False,
        advantage_learning=0.5,
        train_mode="sequences",  # round 21 (its records before: Algorithm 4's "histories")
        policy_kwargs=dict(use_previous_reward=True, init="xavier", hidden_size=64),
        seed=seed,
        vaa_interval=0,
        vaa_measure_interval=0,
    )
    model.learn(timesteps)
    optimal = is_tmaze_optimal(model, gym.make("TMaze-v0", length=length))
    return {
        "length": length,
        "seed": seed,
        "timesteps": timesteps,
        "train_mode": model.train_mode,
        "episodes": int(model.num_train_episodes),
        "optimal_at_end": bool(optimal),
        "wall_time_s": time.perf_counter() - tic,
        "cpu_time_s": time.process_time() - cpu,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1000, 1020)))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default="runs/sb3-user/L20.jsonl")
    args = parser.parse_args(argv)
    runs = [(args.length, seed, args.timesteps) for seed in args.seeds]
    done = run_jsonl_grid(
        args.out, runs, lambda r: (r["length"], r["seed"], r["timesteps"]), run_one, jobs=args.jobs
    )
    mine = [r for r in done if (r["length"], r["seed"], r["timesteps"]) in set(runs)]
    optimal = sum(r["optimal_at_end"] for r in mine)
    print(
        f"L = {args.length}, {args.timesteps} timesteps: final policy optimal on {optimal}/{len(mine)} seeds"
    )
    for r in sorted(mine, key=lambda r: r["seed"]):
        line = f"  seed {r['seed']}: {r['episodes']} episodes, optimal {r['optimal_at_end']}"
        print(f"{line}, {r['cpu_time_s']:.0f} CPU s")


if __name__ == "__main__":
    main()
