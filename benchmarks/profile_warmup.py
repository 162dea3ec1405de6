"""Where the warmup's time goes: matrix products, element-wise work, and what is not an operator at all,
beside the products' float32 floor on this machine.

Usage: ``python benchmarks/profile_warmup.py [--hidden 256] [--steps 10] [--threads 2] [--bfloat16-products]``

``recurrent_q.multistability.warmup`` on a GRU stack (2 × ``--hidden``, n = 200 sequences of T = 200 steps,
F = 32, u ~ N(0, 1)) for ``--steps`` gradient steps, the curriculum's increment ``c`` set so that
M ~ U{1..200} from the second step on (the late steps of a warmup), under ``torch.profiler``. The
operators' self CPU times are summed in three groups: the matrix products (``aten::mm``, ``addmm``,
``bmm``; their operations counted by the profiler), the rest of the operators (element-wise gates,
copies, reductions, the optimiser), and the difference from the wall time (Python, the autograd engine's
bookkeeping, the profiler's own cost). The floor is the products' operations at the rate of one large
float32 product (2048³) on the same threads, measured in the same process. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.profiler import ProfilerActivity, profile

import recurrent_q.multistability as ms
from recurrent_q.cells import make_cell

PRODUCTS = {
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::addbmm",
    "aten::_addmm_activation",
}


def matmul_rate(size: int = 2048, repeats: int = 3) -> float:
    """Operations per second of a ``size``³ float32 product on the current threads (the best of a few)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="warmup gradient steps profiled")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bfloat16-products", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rate = matmul_rate()
    torch.manual_seed(0)
    data = torch.randn(1000, 200, 32)
    model = make_cell("gru", 32, args.hidden, 2)
    config = ms.WarmupConfig(seed=0, steps=args.steps, c=200, bfloat16_products=args.bfloat16_products)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        start = time.perf_counter()
        ms.warmup(model, data, config)
        wall = time.perf_counter() - start
    products = other = product_flops = 0.0
    others: list[tuple[float, str, int]] = []
    for event in prof.key_averages():
        seconds = event.self_cpu_time_total / 1e6
        if event.key in PRODUCTS:
            products += seconds
            product_flops += event.flops
        else:
            other += seconds
            others.append((seconds, event.key, event.count))
    outside = wall - products - other
    floor = product_flops / rate
    print(
        f"load average at start: {load:.2f}; {args.threads} thread(s); GRU 2 × {args.hidden}, {args.steps} "
        f"warmup steps (M ≤ 200){', bfloat16 products' if args.bfloat16_products else ''}; one 2048³ float32 "
        f"product: {rate / 1e9:.0f} GFLOP/s\n"
    )
    print("| part | s per warmup step | share | GFLOP/s reached |")
    print("|---|---:|---:|---:|")
    reached = product_flops / products / 1e9 if products else 0.0
    print(f"| matrix products | {products / args.steps:.3f} | {products / wall:.0%} | {reached:.0f} |")
    print(
        f"| other operators (element-wise, copies, Adam) | {other / args.steps:.3f} | {other / wall:.0%} | |"
    )
    outside_name = "outside the operators (Python, autograd, profiler)"
    print(f"| {outside_name} | {outside / args.steps:.3f} | {outside / wall:.0%} | |")
    print(f"| **total** | **{wall / args.steps:.3f}** | 100% | |")
    print(
        f"\nfloor (the products at {rate / 1e9:.0f} GFLOP/s): {floor / args.steps:.3f} s per step; "
        f"the step costs {wall / floor:.2f}× its floor"
    )
    print("\nThe other operators, largest first (s per warmup step, calls per step):")
    for seconds, key, calls in sorted(others, reverse=True)[:10]:
        print(f"- `{key}`: {seconds / args.steps:.3f} s, {calls / args.steps:.0f} calls")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
