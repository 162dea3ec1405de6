"""DRQN cost per training episode on the T-Maze, and how it grows with the corridor length L.

Usage: ``python benchmarks/bench_drqn_throughput.py [--lengths 20 50 100 200 500] [--episodes 10]``

For each L, a DRQN with the ``DRQN`` class's defaults (GRU 2×32, buffer 8192, batch 32, no warmup, no
VAA logging) and ``--gradient-steps`` I per episode (20, the T-Maze runner's; the paper's 10) fills its
buffer with the exploration policy, trains ``--settle`` episodes to leave the random-policy regime, then
times ``learn`` over ``--episodes`` training episodes (ε-greedy rollout + I gradient steps each), and
times ``train`` alone (I gradient steps) to split the episode into training and the rest (rollout,
buffer, target values). The same is
measured with the GRU's compiled CPU recurrence switched off (``recurrent_q._gru_cpu.ENABLED = False``:
PyTorch's ``nn.GRU`` kernels), the baseline of the ratio, in the same process. Times are the process's
CPU time with one torch thread. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import torch

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from recurrent_q import _gru_cpu
from recurrent_q.drqn import DRQN


def episode_cost(
    length: int,
    episodes: int,
    compiled: bool,
    settle: int = 5,
    seed: int = 0,
    gradient_steps: int = 20,
    hidden_size: int = 32,
) -> tuple[float, float, float]:
    """(CPU s per training episode, CPU s of its I gradient steps, mean env steps per episode); the GRU
    stack is 2 × ``hidden_size`` (the DRQN class's 32 by default)."""
    _gru_cpu.ENABLED = compiled and _gru_cpu.AVAILABLE
    model = DRQN(
        "RecurrentQPolicy",
        gym.make("TMaze-v0", length=length),
        gradient_steps=gradient_steps,
        vaa_interval=0,
        vaa_measure_interval=0,
        seed=seed,
        device="cpu",
        policy_kwargs={"hidden_size": hidden_size},
    )
    model.learn(10**12, max_episodes=settle)  # fill, then leave the first (random-policy) episodes
    steps = model.num_timesteps
    start = time.process_time()
    model.learn(10**12, max_episodes=episodes, reset_num_timesteps=False)
    per_episode = (time.process_time() - start) / episodes
    start = time.process_time()
    for _ in range(5):
        model.train(model.gradient_steps, model.batch_size)
    train = (time.process_time() - start) / 5
    return per_episode, train, (model.num_timesteps - steps) / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 50, 100, 200, 500])
    parser.add_argument("--episodes", type=int, default=10, help="training episodes timed per length")
    parser.add_argument("--settle", type=int, default=5, help="training episodes run before timing")
    parser.add_argument("--gradient-steps", type=int, default=20, help="gradient steps I per episode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(
        "| L | env steps / episode | CPU s / episode (compiled GRU) "
        f"| of which {args.gradient_steps} gradient steps | CPU s / episode (nn.GRU) | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for length in args.lengths:
        fast, fast_train, steps = episode_cost(
            length, args.episodes, True, args.settle, 0, args.gradient_steps
        )
        slow, _, _ = episode_cost(length, args.episodes, False, args.settle, 0, args.gradient_steps)
        print(f"| {length} | {steps:.0f} | {fast:.3f} | {fast_train:.3f} | {slow:.3f} | {slow / fast:.2f}× |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
