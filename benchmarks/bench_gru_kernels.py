"""GRU stack forward + backward on the CPU: this library's path (``recurrent_q/_gru_cpu.py``'s compiled loop
where ``_gru_cpu.fits(rows, units)``, ``nn.GRU`` elsewhere) against ``nn.GRU``'s kernels, measured in the
same process, for the sizes that the T-Maze agent, the supervised benchmarks and the paper's 2 × 256 warmup
use. Where the compiled loop does not run, both columns time ``nn.GRU`` (a check of the noise).

    python benchmarks/bench_gru_kernels.py --threads 2

Prints a Markdown table: median wall time of ``--repeats`` runs after one warm-up run, the ratio
``nn.GRU / ours`` (> 1: ours is faster), the kernel used, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from recurrent_q import _gru_cpu
from recurrent_q.cells import make_cell

SIZES = (  # (rows B, units H, steps T, input F), two layers
    (32, 32, 60, 9),  # T-Maze agent, a training batch of histories
    (128, 32, 60, 9),  # at MAX_WORK
    (32, 128, 50, 1),  # copy, width 128 (paper's 1 x 128; 2 layers here)
    (64, 128, 50, 1),
    (32, 256, 200, 32),  # bench_cells' default
    (200, 256, 100, 32),  # the warmup's prefix at 2 x 256 (mean t = 100)
)


def time_once(stack: torch.nn.Module, x: torch.Tensor) -> float:
    stack.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out, state = stack(x)
    (out.sum() + state.sum()).backward()
    return time.perf_counter() - start


def median_time(enabled: bool, stack: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    _gru_cpu.ENABLED = enabled
    try:
        time_once(stack, x)
        return statistics.median(time_once(stack, x) for _ in range(repeats))
    finally:
        _gru_cpu.ENABLED = _gru_cpu.AVAILABLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.2f}")
    print("| B | H | T | kernel | nn.GRU (ms) | ours (ms) | nn.GRU / ours |")
    print("|---|---|---|---|---|---|---|")
    for batch, hidden, steps, features in SIZES:
        torch.manual_seed(0)
        stack = make_cell("gru", features, hidden, num_layers=2)
        x = torch.randn(batch, steps, features)
        reference = median_time(False, stack, x, args.repeats)
        ours = median_time(True, stack, x, args.repeats)
        kernel = "compiled loop" if _gru_cpu.fits(batch, hidden) else "nn.GRU (both)"
        print(
            f"| {batch} | {hidden} | {steps} | {kernel} | {1e3 * reference:.1f} | {1e3 * ours:.1f} | "
            f"{reference / ours:.2f} |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
