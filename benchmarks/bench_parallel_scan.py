"""Training time of the parallel cells (minGRU, LRU) against ``torch.nn.GRU`` on long sequences.

Measures the wall time of one forward + backward pass (``model(x)[0].sum().backward()``) of one layer of
width ``H`` on a batch ``x[B, T, F]``, for ``T`` = 1 000 and 10 000 by default: minGRU and LRU
(``recurrent_q.cells.make_cell``, their scans over time) and ``torch.nn.GRU`` (PyTorch's fused kernel)
of the same width, measured in the same process, in interleaved rounds (median after one warm-up round),
with the ratio of each time to ``nn.GRU``'s. Prints the torch version, the intra-op threads and the load
average (``os.getloadavg()``) before and after, since other jobs on the machine slow every model.

Usage: ``python benchmarks/bench_parallel_scan.py [--batch 16] [--hidden 128] [--input 32]
[--lengths 1000 10000] [--repeats 3] [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from recurrent_q.cells import make_cell


def fwd_bwd_once(model: nn.Module, x: torch.Tensor) -> float:
    """Wall time (s) of ``model(x)[0].sum().backward()``."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model(x)[0].sum().backward()
    return time.perf_counter() - start


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--batch", type=int, default=16, help="B")
    parser.add_argument("--hidden", type=int, default=128, help="H (and the LRU's N)")
    parser.add_argument("--input", type=int, default=32, help="F")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000], help="values of T")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {
        "torch.nn.GRU": nn.GRU(args.input, args.hidden, batch_first=True),
        "minGRU": make_cell("mingru", args.input, args.hidden),
        "LRU": make_cell("lru", args.input, args.hidden),
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {load()} (1, 5, 15 min), "
        f"B={args.batch}, H={args.hidden}, F={args.input}, one layer, float32, CPU, "
        f"median of {args.repeats} interleaved rounds"
    )
    print("| T | cell | fwd+bwd (s) | ratio to nn.GRU |")
    print("|---|---|---|---|")
    for length in args.lengths:
        x = torch.randn(args.batch, length, args.input)
        times: dict[str, list[float]] = {label: [] for label in models}
        for r in range(args.repeats + 1):  # interleaved, so that a busy machine slows every model alike
            for label, model in models.items():
                t = fwd_bwd_once(model, x)
                if r:
                    times[label].append(t)
        gru = statistics.median(times["torch.nn.GRU"])
        for label, ts in times.items():
            t = statistics.median(ts)
            print(f"| {length} | {label} | {t:.3f} | {t / gru:.3f} |")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
