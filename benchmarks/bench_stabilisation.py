"""The warmup's stabilisation on the CPU: ``M`` steps of one layer with its input held (``layer.iterate``),
forward + backward, this library's path against ``nn.GRU``/``nn.LSTM`` run on the repeated input, measured
in the same process.

The compiled GRU kernel is switched off (``_gru_cpu.ENABLED = False``; it has its own benchmark,
``bench_gru_kernels.py``), as it is at these sizes: the warmup of wide layers (n = 200 states, 64 to 256
units). Our path computes the held input's term ``W_ih u + b_ih`` once and then steps the cell; the kernels
recompute the input product, and its gradient, at every step.

    python benchmarks/bench_stabilisation.py --threads 2

Prints a Markdown table: the best of ``--repeats`` interleaved runs, the ratio ``kernel / ours`` (> 1: ours
is faster), and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from recurrent_q import _gru_cpu
from recurrent_q.cells import make_cell

SIZES = ((200, 64), (200, 128), (200, 256), (32, 256))  # (rows n, units H); the input is H wide (a layer > 1)


def fwd_bwd(run, params) -> float:
    start = time.perf_counter()
    final = run()
    torch.autograd.grad(final.square().sum(), params)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100, help="stabilisation period M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    _gru_cpu.ENABLED = False  # the compiled GRU kernel has its own benchmark (bench_gru_kernels.py)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.2f}")
    print("| cell | n | H | M | kernel on the repeated input (ms) | ours (ms) | kernel / ours |")
    print("|---|---|---|---|---|---|---|")
    for cell in args.cells:
        for rows, units in SIZES:
            torch.manual_seed(0)
            layer = make_cell(cell, units, units).layers[0]
            params = list(layer.parameters())
            u = torch.randn(1, units).expand(rows, -1)
            s0 = 0.5 * torch.randn(rows, layer.state_size)

            def ours(layer=layer, u=u, s0=s0):
                return layer.iterate(u, s0, args.steps)

            def kernel(layer=layer, u=u, s0=s0):
                repeated = u.unsqueeze(1).expand(-1, args.steps, -1)
                return layer._state(layer.rnn(repeated, layer._hidden(s0))[1])

            torch.testing.assert_close(ours(), kernel(), atol=1e-5, rtol=1e-4)  # the same function
            best = {"ours": float("inf"), "kernel": float("inf")}
            for _ in range(args.repeats):
                best["kernel"] = min(best["kernel"], fwd_bwd(kernel, params))
                best["ours"] = min(best["ours"], fwd_bwd(ours, params))
            kernel_ms, ours_ms = 1e3 * best["kernel"], 1e3 * best["ours"]
            print(
                f"| {cell} | {rows} | {units} | {args.steps} | {kernel_ms:.0f} | {ours_ms:.0f} "
                f"| {kernel_ms / ours_ms:.2f} |"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
