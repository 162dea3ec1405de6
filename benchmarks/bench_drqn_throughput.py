"""DRQN throughput on the T-Maze: env steps/s of the buffer fill, gradient steps/s and training episodes/s.

Usage: ``python benchmarks/bench_drqn_throughput.py [--lengths 20 100] [--episodes 40]``

For each corridor length L, a DRQN with SPEC §6 defaults (GRU 2×32, buffer 8192, batch 32, 10 gradient
steps per episode, no warmup, no VAA logging) first fills its buffer with the exploration policy, then:
``model.train`` is timed alone in both replay modes (``histories``, Algorithm 4, is the baseline of the
ratio; ``sequences`` trains every step of the sampled episodes), and ``learn`` is timed over training
episodes (ε-greedy rollout + 10 gradient steps each). Times are the process's CPU time with one torch
thread, so they do not depend on other jobs sharing the machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from recurrent_q.drqn import DRQN


def measure(length: int, episodes: int, gradient_steps: int, seed: int = 0) -> list[tuple[str, float, str]]:
    model = DRQN(
        "RecurrentQPolicy",
        gym.make("TMaze-v0", length=length),
        vaa_interval=0,
        vaa_measure_interval=0,
        seed=seed,
        device="cpu",
    )
    start = time.process_time()
    model.learn(10**12, max_episodes=0)  # the buffer fill only
    fill = time.process_time() - start
    rows = [(f"L={length} buffer fill (exploration policy)", model.num_timesteps / fill, "env steps/s")]
    rates = {}
    for mode in ("histories", "sequences"):
        model.train_mode = mode
        start = time.process_time()
        model.train(gradient_steps, model.batch_size)
        rates[mode] = gradient_steps / (time.process_time() - start)
    model.train_mode = "histories"
    rows.append((f"L={length} gradient steps, histories (Algorithm 4)", rates["histories"], "steps/s"))
    ratio = rates["sequences"] / rates["histories"]
    rows.append((f"L={length} gradient steps, sequences", rates["sequences"], f"steps/s ({ratio:.2f}×)"))
    start, steps = time.process_time(), model.num_timesteps
    model.learn(10**12, max_episodes=episodes, reset_num_timesteps=False)
    seconds = time.process_time() - start
    rows.append(
        (f"L={length} training episodes (rollout + 10 gradient steps)", episodes / seconds, "episodes/s")
    )
    rows.append(
        (f"L={length} env steps while training", (model.num_timesteps - steps) / seconds, "env steps/s")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 100], help="corridor lengths L")
    parser.add_argument("--episodes", type=int, default=40, help="training episodes timed")
    parser.add_argument("--gradient-steps", type=int, default=100, help="gradient steps timed per mode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| measurement | rate | unit |")
    print("|---|---:|---|")
    for length in args.lengths:
        for name, rate, unit in measure(length, args.episodes, args.gradient_steps):
            print(f"| {name} | {rate:,.1f} | {unit} |")


if __name__ == "__main__":
    main()
