"""Does the default warmup make a network multistable on every seed? VAA after ``warmup(model, data)``.

For each cell and seed: ``torch.manual_seed(seed)``, then the data and the network are drawn, the network
is warmed up with ``WarmupConfig()`` (the defaults) and its VAA is measured (M = 2000, 10 batches of 32,
a fixed generator). Data: ``randn`` = ``torch.randn(256, T, F)``; ``tmaze`` = 256 histories of the
exploration policy on the T-Maze (the DRQN input: one-hot a_{k-1}, r_{k-1}, one-hot o_k), right-padded,
with their lengths, as the DRQN's warmup sees its replay buffer.

    python benchmarks/bench_warmup_seeds.py --data randn tmaze --cells nn.lstm nn.gru lstm gru mgu \
        --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/bench_warmup_seeds.py --data randn --hidden-size 256 --time-steps 200 --features 32 \
        --cells nn.lstm gru --seeds 0 1 2

Results are appended to a JSON-lines file (finished runs are skipped) and summarised as a table.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro
from torch import nn

from recurrent_q.cells import make_cell
from recurrent_q.multistability import WarmupConfig, estimate_vaa, warmup


@dataclass
class Args:
    data: list[str] = field(default_factory=lambda: ["randn", "tmaze"])
    """randn and/or tmaze."""
    cells: list[str] = field(default_factory=lambda: ["nn.lstm", "nn.gru", "lstm", "gru", "mgu"])
    """nn.lstm, nn.gru (PyTorch's modules) or a name of make_cell."""
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    hidden_size: int = 32
    num_layers: int = 2
    time_steps: int = 50
    """T of the randn sequences."""
    features: int = 3
    """F of the randn sequences."""
    length: int = 50
    """Corridor length of the T-Maze histories (horizon 3L)."""
    threads: int = 1
    out: str = "runs/bench_warmup_seeds.jsonl"


def tmaze_histories(n: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` exploration-policy episodes as DRQN inputs ``[n, T, 9]`` and their lengths."""
    from tmaze_gym.tmaze import TMazeEnv, sample_exploration_action

    env, rng = TMazeEnv(length=length), np.random.default_rng(seed)
    episodes = []
    for _ in range(n):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        rows, action, reward = [], None, 0.0
        while True:
            row = np.zeros(9, dtype=np.float32)
            if action is not None:
                row[action] = 1.0
            row[4], row[5 + obs] = reward, 1.0
            rows.append(row)
            action = sample_exploration_action(rng)
            obs, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        episodes.append(np.stack(rows))
    x = torch.zeros(n, max(len(e) for e in episodes), 9)
    for i, e in enumerate(episodes):
        x[i, : len(e)] = torch.from_numpy(e)
    return x, torch.tensor([len(e) for e in episodes])


def build(cell: str, features: int, args: Args) -> nn.Module:
    if cell == "nn.lstm":
        return nn.LSTM(features, args.hidden_size, num_layers=args.num_layers, batch_first=True)
    if cell == "nn.gru":
        return nn.GRU(features, args.hidden_size, num_layers=args.num_layers, batch_first=True)
    return make_cell(cell, features, args.hidden_size, num_layers=args.num_layers)


def run_one(data: str, cell: str, seed: int, args: Args) -> dict:
    torch.manual_seed(seed)
    if data == "randn":
        sequences, lengths = torch.randn(256, args.time_steps, args.features), None
    else:
        sequences, lengths = tmaze_histories(256, args.length, seed)
    model = build(cell, sequences.shape[2], args)
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    result = warmup(model, sequences, WarmupConfig(), lengths=lengths)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    measured = estimate_vaa(
        model,
        sequences,
        steps=2000,
        iterations=10,
        lengths=lengths,
        generator=torch.Generator().manual_seed(12345),
    )
    last = torch.tensor(result.vaa_star[-10:]).mean(0).tolist()
    return {
        "data": data,
        "cell": cell,
        "seed": seed,
        "hidden_size": args.hidden_size,
        "shape": list(sequences.shape),
        "vaa": round(measured, 4),
        "vaa_star_last10": [round(v, 3) for v in last],
        "warmup_wall_s": round(wall, 2),
        "warmup_cpu_s": round(cpu, 2),
        "load_1min": round(load, 2),
    }


def main(argv: list[str] | None = None) -> str:
    args = tyro.cli(Args, args=argv, description=__doc__)
    unknown = set(args.data) - {"randn", "tmaze"}
    if unknown:
        raise ValueError(f"data must be among randn, tmaze; got {sorted(unknown)}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    done = {(r["data"], r["cell"], r["seed"], r["hidden_size"]) for r in rows}
    for data in args.data:
        for cell in args.cells:
            for seed in args.seeds:
                if (data, cell, seed, args.hidden_size) in done:
                    continue
                row = run_one(data, cell, seed, args)
                print(json.dumps(row), flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    lines = [
        "| data | cell | H | VAA per seed | ≥ 0.9 | warmup wall (s, mean) |",
        "|---|---|---|---|---|---|",
    ]
    for data in args.data:
        for cell in args.cells:
            sel = [
                r for r in rows if (r["data"], r["cell"], r["hidden_size"]) == (data, cell, args.hidden_size)
            ]
            sel = sorted((r for r in sel if r["seed"] in args.seeds), key=lambda r: r["seed"])
            if sel:
                vaas = " ".join(f"{r['vaa']:.2f}" for r in sel)
                ok = sum(r["vaa"] >= 0.9 for r in sel)
                wall = sum(r["warmup_wall_s"] for r in sel) / len(sel)
                lines.append(
                    f"| {data} | {cell} | {args.hidden_size} | {vaas} | {ok}/{len(sel)} | {wall:.1f} |"
                )
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
