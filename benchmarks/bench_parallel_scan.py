"""Training time of the parallel cells (minGRU, LRU) against ``torch.nn.GRU`` on long sequences.

Measures the wall time of one forward + backward pass (``model(x)[0].sum().backward()``) of one layer of
width ``H`` on a batch ``x[B, T, F]``, for ``T`` = 1 000 and 10 000 by default: minGRU and LRU
(``recurrent_q.cells.make_cell``) on both of their CPU paths, the compiled loop over time
(``recurrent_q/_scan_cpu.py``, the default for float32 on the CPU) and the PyTorch scans (minGRU's log-space
scan, the LRU's complex pairing scan: what CUDA and other dtypes run; here with
``recurrent_q._scan_cpu.ENABLED = False``), and ``torch.nn.GRU`` (PyTorch's fused kernel) of the same
width, measured in the same process, in interleaved rounds (median after one warm-up round), with the
ratio of each time to ``nn.GRU``'s and its inverse, the speed-up. Prints the torch version, the intra-op
threads and the load average (``os.getloadavg()``) before and after, since other jobs on the machine slow
every model.

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

from recurrent_q import _scan_cpu
from recurrent_q.cells import make_cell


def fwd_bwd_once(model: nn.Module, x: torch.Tensor, compiled: bool) -> float:
    """Wall time (s) of ``model(x)[0].sum().backward()``, on the compiled loop or on the PyTorch scans."""
    model.zero_grad(set_to_none=True)
    _scan_cpu.ENABLED = compiled
    try:
        start = time.perf_counter()
        model(x)[0].sum().backward()
        return time.perf_counter() - start
    finally:
        _scan_cpu.ENABLED = _scan_cpu.AVAILABLE


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
    gru = nn.GRU(args.input, args.hidden, batch_first=True)
    min_gru, lru = make_cell("mingru", args.input, args.hidden), make_cell("lru", args.input, args.hidden)
    models = {  # label: (model, compiled loop)
        "torch.nn.GRU": (gru, False),
        "minGRU (compiled loop)": (min_gru, True),
        "minGRU (torch log-space scan)": (min_gru, False),
        "LRU (compiled loop)": (lru, True),
        "LRU (torch complex scan)": (lru, False),
    }
    if not _scan_cpu.AVAILABLE:
        print("numba is not installed: the compiled loop is not measured")
        models = {label: m for label, m in models.items() if not m[1]}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {load()} (1, 5, 15 min), "
        f"B={args.batch}, H={args.hidden}, F={args.input}, one layer, float32, CPU, "
        f"median of {args.repeats} interleaved rounds"
    )
    print("| T | cell | fwd+bwd (s) | ratio to nn.GRU | speed-up (nn.GRU / cell) |")
    print("|---|---|---|---|---|")
    for length in args.lengths:
        x = torch.randn(args.batch, length, args.input)
        times: dict[str, list[float]] = {label: [] for label in models}
        for r in range(args.repeats + 1):  # interleaved, so that a busy machine slows every model alike
            for label, (model, compiled) in models.items():
                t = fwd_bwd_once(model, x, compiled)
                if r:
                    times[label].append(t)
        reference = statistics.median(times["torch.nn.GRU"])
        for label, ts in times.items():
            t = statistics.median(ts)
            print(f"| {length} | {label} | {t:.3f} | {t / reference:.3f} | {reference / t:.2f} |", flush=True)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
