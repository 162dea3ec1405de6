"""Steps per second of the T-Maze: single env (raw and through ``gym.make``) and vectorised.

Usage: ``python benchmarks/bench_env.py [--length 100] [--steps 200000] [--num-envs 64]``.
Actions are drawn from the exploration policy ℰ beforehand, so only the environment is timed;
episodes that end are reset inside the timed loop (the vector env resets itself).
Prints a Markdown table for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import tmaze_gym
from tmaze_gym import TMazeEnv, sample_exploration_actions


def time_single(env: gym.Env, actions: np.ndarray) -> float:
    """Env-steps per second of one env stepping through ``actions`` (Python ints)."""
    actions = actions.tolist()
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def time_vector(env: gym.vector.VectorEnv, actions: np.ndarray) -> float:
    """Env-steps per second of a vector env; ``actions`` is ``[calls, num_envs]``."""
    env.reset(seed=0)
    start = time.perf_counter()
    for batch in actions:
        env.step(batch)
    return actions.size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100, help="corridor length L")
    parser.add_argument("--steps", type=int, default=200_000, help="env-steps per measurement")
    parser.add_argument("--num-envs", type=int, default=64, help="mazes of the vectorised variants")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    single_actions = sample_exploration_actions(rng, args.steps)
    calls = max(1, args.steps // args.num_envs)
    vector_actions = sample_exploration_actions(rng, calls * args.num_envs).reshape(calls, args.num_envs)

    def best(fn, *fn_args) -> float:
        return max(fn(*fn_args) for _ in range(args.repeats))

    n, length = args.num_envs, args.length
    env_id = tmaze_gym.ENV_ID
    rows = [
        ("single, raw `TMazeEnv.step`", best(time_single, TMazeEnv(length), single_actions)),
        (
            "single, `gym.make` (env checker + order wrappers)",
            best(time_single, gym.make(env_id, length=length), single_actions),
        ),
        (
            f"vector, `gym.make_vec` → numpy `TMazeVectorEnv`, {n} mazes",
            best(time_vector, gym.make_vec(env_id, num_envs=n, length=length), vector_actions),
        ),
        (
            f"vector, Gymnasium `SyncVectorEnv` of `TMazeEnv`, {n} mazes",
            best(
                time_vector,
                gym.make_vec(env_id, num_envs=n, length=length, vectorization_mode="sync"),
                vector_actions,
            ),
        ),
    ]
    baseline = rows[0][1]
    print(f"T-Maze L = {length}, {args.steps} env-steps per run, best of {args.repeats}")
    print("| variant | env-steps/s | ratio to single raw |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f} |")


if __name__ == "__main__":
    main()
