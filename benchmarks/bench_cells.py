"""Sequence forward + backward time of every cell stack against ``nn.GRU`` and ``nn.LSTM`` of the same size.

Usage: ``python benchmarks/bench_cells.py [--layers 2] [--hidden 256] [--batch 32] [--length 200]``
Prints a Markdown table (median of ``--repeats`` timed runs after one warm-up run, same process).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from recurrent_q.cells import CELL_NAMES, make_cell


def fwd_bwd_once(model: nn.Module, x: torch.Tensor) -> float:
    """Wall time (s) of ``model(x)[0].sum().backward()``."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model(x)[0].sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.length, args.input)
    models = {
        "torch.nn.GRU": nn.GRU(args.input, args.hidden, args.layers, batch_first=True),
        "torch.nn.LSTM": nn.LSTM(args.input, args.hidden, args.layers, batch_first=True),
    }
    for name in CELL_NAMES:
        for double in (False, True):
            label = name + (" (double)" if double else "")
            models[label] = make_cell(
                name, args.input, args.hidden, args.layers, double=double, t_max=args.length
            )
    times: dict[str, list[float]] = {label: [] for label in models}
    for r in range(args.repeats + 1):  # interleaved rounds, so that a busy machine slows every model alike
        for label, model in models.items():
            t = fwd_bwd_once(model, x)
            if r:
                times[label].append(t)
    gru, lstm = (statistics.median(times[f"torch.nn.{name}"]) for name in ("GRU", "LSTM"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.layers}x{args.hidden}, "
        f"B={args.batch}, T={args.length}, F={args.input}, median of {args.repeats} interleaved rounds"
    )
    print("| cell | fwd+bwd (ms) | ratio to nn.GRU | ratio to nn.LSTM |")
    print("|---|---|---|---|")
    for label, ts in times.items():
        t = statistics.median(ts)
        print(f"| {label} | {1e3 * t:.1f} | {t / gru:.2f} | {t / lstm:.2f} |")


if __name__ == "__main__":
    main()
