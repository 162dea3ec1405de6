"""Train DRQN on the T-Maze (Lambrechts et al. 2023, Algorithm 4); report the episodes to the optimal policy.

Examples (the first is the README's main command: GRU 2×32 with warmup on a corridor of length 20):

    python scripts/train_tmaze.py
    python scripts/train_tmaze.py --length 50 --cell nbrc --no-warmup --seed 1
    python scripts/train_tmaze.py --length 20 --double --episodes 2000 --no-stop-when-optimal

The run directory ``{logdir}/TMaze-v0__{exp}__{seed}__{time}`` receives the TensorBoard logs
(``rollout/``, ``train/loss``, ``train/vaa``, ``train/vaa_measure``, ``warmup/``, ``eval/optimal``,
``eval/first_optimal_episode``; the settings as a text table) and the model ``model.zip``
(``DRQN.load``; ``scripts/evaluate_tmaze.py`` evaluates it on any corridor length).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro

from recurrent_q.drqn import run_tmaze_experiment


@dataclass
class TrainTMazeArgs:
    length: int = 20
    """Corridor length L."""
    max_episode_steps: int | None = None
    """Horizon H in actions (None: 3L - 1, the authors'; the paper's eq. (D.9) is 3L; docs/drqn-parity.md)."""
    cell: Literal["lstm", "gru", "mgu", "brc", "nbrc", "chrono", "mingru", "lru"] = "gru"
    """Recurrent cell of the Q-network."""
    warmup: bool = True
    """Warm up the Q-network on the buffer's histories before training (§6.1)."""
    double: bool = False
    """Double layers (§6.3); with --warmup only their first halves are warmed up."""
    episodes: int = 1000
    """Training episodes at most (after the buffer is filled by the exploration policy)."""
    stop_when_optimal: bool = True
    """Stop at the first check where the greedy policy is optimal."""
    check_freq: int = 5
    """Episodes between optimality checks (the authors: 20); the checks do not change training."""
    seed: int = 0
    """Seed of python, numpy, torch, the env and the exploration draws."""
    logdir: str = "runs"
    """Parent directory of the run directory."""
    exp_name: str = "drqn"
    """Experiment name, the prefix of the run name."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, ..."""
    hidden_size: int = 32
    """Width of each recurrent layer (the paper's §5.3: 256)."""
    num_layers: int = 2
    """Number of recurrent layers."""
    train_mode: Literal["histories", "sequences"] = "histories"
    """histories: Algorithm 4 (loss on the sampled steps); sequences: loss on every step of their episodes."""
    gradient_steps: int = 20
    """Gradient steps I after each episode (the paper's Algorithm 4: 10; docs/drqn-parity.md)."""
    batch_size: int = 32
    """Transitions B per gradient step."""
    buffer_size: int = 8192
    """Replay capacity N in transitions."""
    warmup_steps: int = 100
    """Warmup gradient steps S."""
    warmup_batch_size: int = 32
    """Warmup batch n (the authors' 32; the paper's 200 is WarmupConfig's default; docs/drqn-parity.md)."""
    previous_reward: bool = True
    """Feed the previous reward r_{t-1} to the Q-network (the authors' input; docs/drqn-parity.md)."""
    init: Literal["xavier", "uniform"] = "xavier"
    """Cell initialisation: xavier (the authors': Xavier input, orthogonal recurrent weights, zero biases)
    or uniform (PyTorch's)."""
    vaa_interval: int = 20
    """Episodes between train/vaa estimates (M = 200; 0: never)."""
    vaa_measure_interval: int = 0
    """Episodes between train/vaa_measure estimates (M = 10 000, the paper's 200 costs several seconds each;
    0: never)."""
    threads: int = 1
    """torch threads (1 is fastest for 2×32 networks on CPU)."""
    progress: bool = True
    """Show a progress bar over the training episodes."""


def main(argv: list[str] | None = None) -> dict:
    args = tyro.cli(TrainTMazeArgs, args=argv, description=__doc__)
    torch.set_num_threads(args.threads)
    version = {(False, False): "classic", (True, False): "warmup", (True, True): "double"}.get(
        (args.warmup, args.double), "double-classic"
    )
    exp = f"{args.exp_name}-{args.cell}-{version}-L{args.length}"
    run_dir = Path(args.logdir) / f"TMaze-v0__{exp}__{args.seed}__{int(time.time())}"
    run_dir.mkdir(parents=True, exist_ok=True)
    result = run_tmaze_experiment(
        length=args.length,
        cell=args.cell,
        version=version,
        seed=args.seed,
        episodes=args.episodes,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        warmup_steps=args.warmup_steps,
        warmup_batch_size=args.warmup_batch_size,
        use_previous_reward=args.previous_reward,
        init=args.init,
        train_mode=args.train_mode,
        gradient_steps=args.gradient_steps,
        max_episode_steps=args.max_episode_steps,
        check_freq=args.check_freq,
        batch_size=args.batch_size,
        buffer_size=args.buffer_size,
        stop_when_optimal=args.stop_when_optimal,
        vaa_interval=args.vaa_interval,
        vaa_measure_interval=args.vaa_measure_interval,
        logdir=str(run_dir),
        save_path=str(run_dir / "model.zip"),
        device=args.device,
        progress_bar=args.progress,
    )
    result["run_dir"] = str(run_dir)
    (run_dir / "result.json").write_text(json.dumps(result | {"args": dataclasses.asdict(args)}, indent=1))
    first = result["first_optimal_episode"]
    reached = "never reached" if first is None else f"after {first} episodes (held: {result['held']})"
    print(
        f"TMaze-v0 L={args.length} {args.cell} {version} seed={args.seed}: optimal policy {reached}; "
        f"{result['episodes']} training episodes (+{result['fill_episodes']} to fill the buffer), "
        f"wall time {result['wall_time_s']:.1f} s; model saved to {run_dir / 'model.zip'}"
    )
    return result


if __name__ == "__main__":
    main()
