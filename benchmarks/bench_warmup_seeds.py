"""Does the default warmup make a network multistable on every seed? VAA after ``warmup(model, data)``.

For each cell and seed: ``torch.manual_seed(seed)``, then the data and the network are drawn, the network
is warmed up with ``WarmupConfig()`` (the defaults) and its VAA is measured (M = 2000, 10 batches of 32,
a fixed generator). Data: ``randn`` = ``torch.randn(256, T, F)``; ``tmaze`` =
every episode of a T-Maze DRQN's replay buffer after its exploration-policy fill (8,192 transitions; the
runner's input with r_{k-1} and horizon 3L - 1), encoded by the library, with their lengths: what the
DRQN's warmup sees.

    python benchmarks/bench_warmup_seeds.py --data randn tmaze --cells nn.lstm nn.gru lstm gru mgu \
        --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/bench_warmup_seeds.py --data randn --hidden-size 256 --time-steps 200 --features 32 \
        --cells nn.lstm gru --seeds 0 1 2 [--bfloat16-products]

Results are appended to a JSON-lines file (finished runs are skipped) and summarised as a table.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    """Corridor length of the T-Maze histories (horizon 3L - 1, the runner's)."""
    threads: int = 1
    bfloat16_products: bool = False
    """Warm up with ``WarmupConfig(bfloat16_products=True)`` (the VAA is measured in float32 either way)."""
    out: str = "runs/bench_warmup_seeds.jsonl"


def tmaze_histories(length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What the T-Maze runner's DRQN warms up on: the inputs of every episode in its replay buffer after
    the exploration-policy fill, and their lengths (the library's own encoding, ``episode_features``)."""
    import gymnasium as gym

    import tmaze_gym  # noqa: F401  (registers TMaze-v0)
    from experiments.evaluation import authors_horizon
    from recurrent_q.drqn import DRQN

    env = gym.make("TMaze-v0", length=length, max_episode_steps=authors_horizon(length))
    model = DRQN("RecurrentQPolicy", env, policy_kwargs=dict(use_previous_reward=True), seed=seed)
    model.learn(0, max_episodes=0)  # the buffer fill only
    episodes = model.replay_buffer.all_episodes()
    x = model.q_net.episode_features(episodes.observations, episodes.actions, episodes.rewards)
    return x.detach().cpu(), episodes.lengths + 1


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
        sequences, lengths = tmaze_histories(args.length, seed)
        torch.manual_seed(seed)  # the network is drawn after the data, from the seed
    model = build(cell, sequences.shape[2], args)
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    result = warmup(model, sequences, WarmupConfig(bfloat16_products=args.bfloat16_products), lengths=lengths)
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
        "bfloat16_products": args.bfloat16_products,
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

    def key(r: dict) -> tuple:  # records before the bfloat16 option ran in float32
        return r["data"], r["cell"], r["hidden_size"], r.get("bfloat16_products", False)

    done = {(*key(r), r["seed"]) for r in rows}
    for data in args.data:
        for cell in args.cells:
            for seed in args.seeds:
                if (data, cell, args.hidden_size, args.bfloat16_products, seed) in done:
                    continue
                row = run_one(data, cell, seed, args)
                print(json.dumps(row), flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    lines = [
        "| data | cell | H | products | VAA per seed | ≥ 0.9 | warmup wall (s, mean) | warmup CPU (s, mean) "
        "|",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in args.data:
        for cell in args.cells:
            wanted = (data, cell, args.hidden_size, args.bfloat16_products)
            sel = [r for r in rows if key(r) == wanted]
            sel = sorted((r for r in sel if r["seed"] in args.seeds), key=lambda r: r["seed"])
            if sel:
                vaas = " ".join(f"{r['vaa']:.2f}" for r in sel)
                ok = sum(r["vaa"] >= 0.9 for r in sel)
                wall = sum(r["warmup_wall_s"] for r in sel) / len(sel)
                cpu = sum(r["warmup_cpu_s"] for r in sel) / len(sel)
                products = "bfloat16" if args.bfloat16_products else "float32"
                lines.append(
                    f"| {data} | {cell} | {args.hidden_size} | {products} | {vaas} | {ok}/{len(sel)} "
                    f"| {wall:.1f} | {cpu:.1f} |"
                )
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
