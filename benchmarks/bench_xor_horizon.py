"""The XOR T-Maze (``XORTMaze-v0``): which cells and versions learn it, and which hold it at longer corridors.

    python benchmarks/bench_xor_horizon.py --length 10 --seeds 1000 1001 1002 --jobs 2 \
        --out runs/xor/L10.jsonl

Each (cell, version, seed) trains the T-Maze runner (``experiments.tmaze.run_tmaze_experiment``, its
defaults) on ``XORTMaze-v0`` of corridor ``--length`` (the second cue at the middle) for ``--episodes``
training episodes without stopping, keeps the model of its first optimal check and its final model, and
plays both, greedily, in the four layouts of corridors ``--eval-lengths`` (the second cue where it was in
training: the XOR of the cues must be held longer). Results are appended to ``--out`` as JSON lines (an
interrupted grid resumes) and summarised as a Markdown table.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tyro
from jsonl_grid import run_jsonl_grid

from experiments.results import table_lines

PAIRS = ("gru-classic", "gru-warmup", "gru-double", "lstm-warmup", "nbrc-classic", "brc-classic")


@dataclass
class Args:
    pairs: list[str] = field(default_factory=lambda: list(PAIRS))
    """cell-version pairs to run"""
    length: int = 10
    """training corridor length L"""
    seeds: list[int] = field(default_factory=lambda: [1000, 1001, 1002])
    """seeds (1000 on: seeds never used to choose a setting)"""
    episodes: int = 300
    """training episodes per run (no stop at the first optimal check)"""
    eval_lengths: list[int] = field(default_factory=lambda: [100, 1000, 10000])
    """longer corridors the saved models are played on"""
    jobs: int = 2
    """worker processes"""
    out: str = "runs/xor/L10.jsonl"
    """JSON-lines file of the results"""


def run_one(
    pair: str, length: int, seed: int, episodes: int, eval_lengths: tuple[int, ...]
) -> dict[str, Any]:
    import torch

    from experiments.evaluation import is_tmaze_optimal
    from experiments.tmaze import TMazeConfig, make_maze, run_tmaze_experiment
    from recurrent_q.drqn import DRQN

    torch.set_num_threads(1)
    cell, version = pair.split("-", 1)
    with tempfile.TemporaryDirectory() as folder:
        config = TMazeConfig(
            env_id="XORTMaze-v0",
            length=length,
            cell=cell,
            version=version,
            seed=seed,
            episodes=episodes,
            vaa_interval=0,
            vaa_measure_interval=0,
            save_path=str(Path(folder) / "final.zip"),
            best_model_save_path=folder,
        )
        result = run_tmaze_experiment(config)
        models = {"final": Path(folder) / "final.zip", "first_optimal": Path(folder) / "best_model.zip"}
        for name, path in models.items():
            model = DRQN.load(path) if path.exists() else None
            for longer in eval_lengths:
                maze = make_maze(config, length=longer)  # the second cue where it was in training
                result[f"{name}_optimal_at_{longer}"] = (
                    None if model is None else is_tmaze_optimal(model, maze)
                )
    return result | {"pair": pair}


def key(result: dict[str, Any]) -> tuple:
    return (result["pair"], result["length"], result["seed"])


def table(results: list[dict[str, Any]], eval_lengths: list[int]) -> str:
    head = ["cell-version", "L", "seeds", "reached", "final optimal at L"]
    head += [f"{who} optimal at {n}" for n in eval_lengths for who in ("first-optimal model", "final model")]
    rows = []
    groups: dict[tuple, list] = {}
    for r in results:
        groups.setdefault((r["pair"], r["length"]), []).append(r)
    for (pair, length), runs in groups.items():
        reached = [r for r in runs if r["first_optimal_episode"] is not None]
        row = [pair, str(length), ", ".join(str(r["seed"]) for r in runs)]
        row += [f"{len(reached)}/{len(runs)}", f"{sum(r['optimal_at_end'] for r in runs)}/{len(runs)}"]
        for n in eval_lengths:
            for who in ("first_optimal", "final"):
                row.append(f"{sum(bool(r.get(f'{who}_optimal_at_{n}')) for r in runs)}/{len(runs)}")
        rows.append(row)
    return "\n".join(table_lines(head, rows)).rstrip("\n")


def main(argv: list[str] | None = None) -> str:
    args = tyro.cli(Args, args=argv, description=__doc__)
    unknown = sorted(set(args.pairs) - set(PAIRS))
    if unknown:
        raise ValueError(f"pairs must be among {', '.join(PAIRS)}; got {unknown}")
    runs = [(pair, args.length, seed) for seed in args.seeds for pair in args.pairs]
    extra = (args.episodes, tuple(args.eval_lengths))
    done = run_jsonl_grid(args.out, runs, key, run_one, extra, args.jobs)
    text = table(
        [r for r in done if r["pair"] in args.pairs and r["length"] == args.length], args.eval_lengths
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
