"""Peer run: sb3-contrib's RecurrentPPO on the T-Maze, with and without the warmup callback, same wall budget.

    python benchmarks/bench_peer_recurrentppo.py                     # L ∈ {10, 20}, seeds 0-2, 180 s per run
    python benchmarks/bench_peer_recurrentppo.py --lengths 50 --seeds 0

RecurrentPPO ("MlpLstmPolicy", LSTM 2 × 32 like the DRQN's GRU, γ = 0.98, 8 envs, otherwise sb3-contrib's
defaults plus ``ent_coef=0.01``) trains until its greedy policy is optimal (both layouts, return 4 in L + 1
steps, checked every 20 finished training episodes) or ``--max-seconds`` of wall time. ``warmup`` runs
add ``recurrent_q.callbacks.WarmupCallback`` (default warmup, 8192 transitions of the exploration
policy). Results go to ``--out`` as JSON lines (existing runs are skipped) and to a Markdown table.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import tyro
from jsonl_grid import run_jsonl_grid


@dataclass
class PeerArgs:
    versions: list[str] = field(default_factory=lambda: ["classic", "warmup"])
    """classic: RecurrentPPO as is; warmup: with WarmupCallback."""
    lengths: list[int] = field(default_factory=lambda: [10, 20])
    """Corridor lengths L."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds."""
    max_seconds: float = 180.0
    """Time budget per run (warmup included), on --clock."""
    clock: str = "process"
    """process: CPU time of the run's process (one torch thread: about its wall time on an idle machine);
    wall: wall time."""
    n_envs: int = 8
    """Parallel envs of RecurrentPPO (a DummyVecEnv)."""
    jobs: int = 1
    """Runs in parallel (one process each, one torch thread each)."""
    out: str = "runs/bench_peer_recurrentppo.jsonl"
    """JSON-lines file of the results (appended; existing runs are skipped)."""


def run_one(
    version: str, length: int, seed: int, max_seconds: float, clock: str, n_envs: int
) -> dict[str, Any]:
    import gymnasium as gym
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    import tmaze_gym  # noqa: F401  (registers TMaze-v0)
    from experiments.tmaze import TMazeOptimalCallback, is_tmaze_optimal
    from recurrent_q.callbacks import WallTimeLimit, WarmupCallback

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    env = make_vec_env("TMaze-v0", n_envs=n_envs, seed=seed, env_kwargs={"length": length})
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        gamma=0.98,
        ent_coef=0.01,
        policy_kwargs={"lstm_hidden_size": 32, "n_lstm_layers": 2},
        seed=seed,
        device="cpu",
    )
    optimal = TMazeOptimalCallback(gym.make("TMaze-v0", length=length), check_freq=20, stop_when_optimal=True)
    callbacks = [WallTimeLimit(max_seconds, clock), optimal]  # the budget starts before the warmup
    if version == "warmup":
        callbacks.insert(1, WarmupCallback(seed=seed))
    model.learn(10**9, callback=callbacks)
    return {
        "version": version,
        "length": length,
        "seed": seed,
        "first_optimal_episode": optimal.first_optimal_episode,
        "timesteps_to_optimal": optimal.first_optimal_timesteps,
        "time_to_optimal_s": optimal.first_optimal_time,
        "cpu_time_to_optimal_s": optimal.first_optimal_cpu_time,
        "optimal_at_end": is_tmaze_optimal(model, gym.make("TMaze-v0", length=length)),
        "timesteps": model.num_timesteps,
        "wall_time_s": time.perf_counter() - start,
        "cpu_time_s": time.process_time() - cpu_start,
        "load_1min": [load_before, os.getloadavg()[0]],
    }


def summary(results: list[dict[str, Any]], max_seconds: float, clock: str) -> str:
    lines = [
        "| RecurrentPPO | L | first optimal episode / env steps / wall s / CPU s, per seed |",
        "|---|---|---|",
    ]
    groups: dict[tuple[str, int], list[str]] = {}
    for r in sorted(results, key=lambda r: (r["version"], r["length"], r["seed"])):
        if r["first_optimal_episode"] is None:
            wall, cpu = r["wall_time_s"], r["cpu_time_s"]
            cell = f"not reached ({r['timesteps'] // 1000}k steps, {wall:.0f} / {cpu:.0f} s)"
        else:
            steps, wall, cpu = (
                r["timesteps_to_optimal"] // 1000,
                r["time_to_optimal_s"],
                r["cpu_time_to_optimal_s"],
            )
            cell = f"{r['first_optimal_episode']} / {steps}k / {wall:.0f} / {cpu:.0f} s"
        groups.setdefault((r["version"], r["length"]), []).append(cell)
    for (version, length), cells in groups.items():
        lines.append(f"| {version} | {length} | {'; '.join(cells)} |")
    lines.append(f"\nBudget per run: {max_seconds:.0f} s ({clock} clock), warmup included.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    args = tyro.cli(PeerArgs, args=argv, description=__doc__)
    unknown = sorted(set(args.versions) - {"classic", "warmup"})
    if unknown:
        raise ValueError(f"versions must be among 'classic', 'warmup'; got {unknown}")
    runs = [(v, length, seed) for length in args.lengths for seed in args.seeds for v in args.versions]
    extra = (args.max_seconds, args.clock, args.n_envs)
    done = run_jsonl_grid(
        args.out, runs, lambda r: (r["version"], r["length"], r["seed"]), run_one, extra, args.jobs
    )
    selected = [r for r in done if r["version"] in args.versions and r["length"] in args.lengths]
    table = summary(selected, args.max_seconds, args.clock)
    print(table)
    return table


if __name__ == "__main__":
    main()
