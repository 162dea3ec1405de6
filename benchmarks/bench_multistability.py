"""Wall time of ``warmup`` (defaults) and ``estimate_vaa`` (M = 10 000, I = 10) on a GRU stack.

Warmup defaults: docs/specification.md §5.

Usage: ``python benchmarks/bench_multistability.py [--cell gru] [--layers 2] [--hidden 256] [--length 200]
[--bfloat16-products]``
Prints one Markdown table row per measurement: VAA of the fresh network, warmup, VAA after warmup. Wall and
process CPU time are both reported: on a machine shared with other jobs, the CPU time (with ``--threads 1``)
is close to what an idle machine would show.
"""

from __future__ import annotations

import argparse
import time

import torch

import recurrent_q.multistability as ms
from recurrent_q.cells import make_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--length", type=int, default=200, help="T of the random sequences")
    parser.add_argument("--sequences", type=int, default=1000, help="N random sequences u_t ~ N(0, 1)")
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10_000, help="M of estimate_vaa")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--what", choices=("all", "warmup", "estimate"), default="all")
    parser.add_argument(
        "--bfloat16-products", action="store_true", help="warm up with WarmupConfig(bfloat16_products=True)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = torch.randn(args.sequences, args.length, args.input)
    model = make_cell(args.cell, args.input, args.hidden, args.layers)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.cell} {args.layers}x{args.hidden}, N={args.sequences}, T={args.length}, F={args.input}"
    )
    print("| measurement | wall (s) | CPU (s) | result |")
    print("|---|---|---|---|")

    def estimate(label: str) -> None:
        start, cpu = time.perf_counter(), time.process_time()
        value = ms.estimate_vaa(model, data, steps=args.steps, generator=torch.Generator().manual_seed(1))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | VAA = {value:.3f} (floor 1/32) |", flush=True)

    if args.what in ("all", "estimate"):
        estimate(f"estimate_vaa fresh, M={args.steps}, I=10")
    if args.what in ("all", "warmup"):
        start, cpu = time.perf_counter(), time.process_time()
        config = ms.WarmupConfig(seed=0, bfloat16_products=args.bfloat16_products)
        result = ms.warmup(model, data, config)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        last = ", ".join(f"{v:.3f}" for v in result.vaa_star[-1])
        label = "warmup, defaults (S=100, n=200, M*=200)"
        label += ", bfloat16 products" if args.bfloat16_products else ""
        print(
            f"| {label} | {wall:.1f} | {cpu:.1f} | last VAA* {last} |",
            flush=True,
        )
    if args.what == "all":
        estimate(f"estimate_vaa warmed up, M={args.steps}, I=10")


if __name__ == "__main__":
    main()
