"""Scaling curves: DRQN's cost per training episode against the corridor length L, and the warmup's cost
against the layer width, each against PyTorch's kernels measured in the same run; a plot of both.

Usage: ``python benchmarks/bench_scaling.py [--lengths 20 50 100 200 500 1000] [--widths 32 64 128 256 512]
[--plot benchmarks/scaling.png]``

- *Per episode against L*: ``bench_drqn_throughput.episode_cost`` (an ε-greedy rollout and I = 20
  gradient steps, the DRQN class's other defaults) at the runner's width (``--hidden-size``, 2 × 64), with
  the compiled GRU recurrence and with ``nn.GRU``'s kernels (``recurrent_q._gru_cpu.ENABLED = False``).
- *Per warmup step against the width*: ``recurrent_q.multistability.warmup`` on a stack of our GRU and
  LSTM cells and on ``torch.nn.GRU`` / ``nn.LSTM`` of the same size (``warmup`` takes either),
  ``--warmup-steps`` gradient steps of n = 200 sequences (T = 200, F = 32, u ~ N(0, 1)), the curriculum's
  increment ``c`` set so that M ~ U{1..M*} (M* = 200) from the second step on: the CPU time per step of a
  warmup's late steps (the defaults' S = 100 steps cost less than 100 of these, their first M being
  shorter).

Times are the process's CPU time on ``--threads`` torch threads (1: an idle machine's wall time is the
same). Prints two Markdown tables, writes their figures as JSON beside the plot.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from bench_drqn_throughput import episode_cost
from torch import nn

import recurrent_q.multistability as ms
from recurrent_q.cells import make_cell


def warmup_step_cost(model: nn.Module, data: torch.Tensor, steps: int) -> float:
    """CPU s per warmup gradient step of ``model`` on ``data`` (M ~ U{1..200} from the second step)."""
    config = ms.WarmupConfig(seed=0, steps=steps, c=200)
    start = time.process_time()
    ms.warmup(model, data, config)
    return (time.process_time() - start) / steps


def torch_stack(cell: str, input_size: int, hidden: int, layers: int) -> nn.Module:
    kind = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
    return kind(input_size, hidden, layers, batch_first=True)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rows = results["episode"]
    lengths = [row["length"] for row in rows]
    left.plot(lengths, [row["compiled"] for row in rows], "o-", label="compiled GRU")
    left.plot(lengths, [row["nn_gru"] for row in rows], "s--", label="nn.GRU kernels")
    left.set(xscale="log", yscale="log", xlabel="corridor length L", ylabel="CPU s per training episode")
    left.set_title(f"DRQN, GRU 2 × {results['hidden_size']}, 20 gradient steps")
    left.legend()
    rows = results["warmup"]
    widths = [row["width"] for row in rows]
    for key, style, label in (
        ("gru", "o-", "our GRU"),
        ("nn_gru", "s--", "nn.GRU"),
        ("lstm", "^-", "our LSTM"),
        ("nn_lstm", "v--", "nn.LSTM"),
    ):
        right.plot(widths, [row[key] for row in rows], style, label=label)
    right.set(xscale="log", yscale="log", xlabel="layer width", ylabel="CPU s per warmup step")
    right.set_title("warmup, 2 layers, n = 200, T = 200, M ≤ 200")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="*", default=[20, 50, 100, 200, 500, 1000])
    parser.add_argument("--episodes", type=int, default=10, help="training episodes timed per length")
    parser.add_argument("--hidden-size", type=int, default=64, help="DRQN's layer width (the runner's 64)")
    parser.add_argument("--widths", type=int, nargs="*", default=[32, 64, 128, 256, 512])
    parser.add_argument("--warmup-steps", type=int, default=5, help="warmup gradient steps timed per width")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=Path("benchmarks/scaling.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"hidden_size": args.hidden_size, "threads": args.threads, "episode": [], "warmup": []}
    results["load_start"] = os.getloadavg()[0]
    print(f"load average at start: {results['load_start']:.2f}; {args.threads} torch thread(s)\n")
    if args.lengths:
        print("| L | env steps / episode | CPU s / episode (compiled GRU) | CPU s / episode (nn.GRU) | × |")
        print("|---:|---:|---:|---:|---:|")
    for length in args.lengths:
        fast, _, steps = episode_cost(length, args.episodes, True, hidden_size=args.hidden_size)
        slow, _, _ = episode_cost(length, args.episodes, False, hidden_size=args.hidden_size)
        results["episode"].append({"length": length, "env_steps": steps, "compiled": fast, "nn_gru": slow})
        print(f"| {length} | {steps:.0f} | {fast:.3f} | {slow:.3f} | {slow / fast:.2f}× |", flush=True)
    if args.widths:
        print(
            "\n| width | our GRU (s / step) | nn.GRU | nn.GRU / ours | our LSTM | nn.LSTM | nn.LSTM / ours |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
    for width in args.widths:
        torch.manual_seed(0)
        data = torch.randn(1000, 200, 32)
        row: dict = {"width": width}
        for cell in ("gru", "lstm"):
            torch.manual_seed(0)
            row[cell] = warmup_step_cost(make_cell(cell, 32, width, 2), data, args.warmup_steps)
            torch.manual_seed(0)
            row[f"nn_{cell}"] = warmup_step_cost(torch_stack(cell, 32, width, 2), data, args.warmup_steps)
        results["warmup"].append(row)
        print(
            f"| {width} | {row['gru']:.3f} | {row['nn_gru']:.3f} | {row['nn_gru'] / row['gru']:.2f}× "
            f"| {row['lstm']:.3f} | {row['nn_lstm']:.3f} | {row['nn_lstm'] / row['lstm']:.2f}× |",
            flush=True,
        )
    results["load_end"] = os.getloadavg()[0]
    print(f"\nload average at end: {results['load_end']:.2f}")
    if args.plot and results["episode"] and results["warmup"]:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        args.plot.with_suffix(".json").write_text(json.dumps(results, indent=1))
        plot(results, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
