"""The performance suite: every speed measurement of the project in one command.

    python benchmarks/run_all.py            # runs all, prints the tables, updates benchmarks/RESULTS.md
    python benchmarks/run_all.py --only env cells    # some entries, printed only

Each entry runs one script of ``benchmarks/`` in its own process and keeps the Markdown table it prints;
every figure there is a ratio to a baseline measured in the same run where one exists (``torch.nn.GRU``
or ``nn.LSTM`` for the cells and the supervised training, the single env for the vectorised env, the
``histories`` replay mode for the DRQN). The section between the ``suite`` markers of
``benchmarks/RESULTS.md`` is replaced; the other sections (learning grids) are left as they are.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
START, END = "<!-- suite:start -->", "<!-- suite:end -->"

SUITE: dict[str, tuple[str, list[str]]] = {
    "env": ("T-Maze env steps/s, single vs vectorised", ["bench_env.py", "--steps", "100000"]),
    "cells": (
        "Cells, sequence fwd+bwd at the paper's size (2×256, B = 32, T = 200) vs nn.GRU / nn.LSTM",
        ["bench_cells.py", "--repeats", "3"],
    ),
    "multistability": (
        "Warmup (default settings) and VAA estimate (M = 10 000, I = 10) wall time, GRU 2×256, T = 200",
        ["bench_multistability.py", "--threads", "1"],
    ),
    "drqn": (
        "DRQN CPU time per training episode against L (GRU 2×32), compiled GRU vs nn.GRU kernels",
        ["bench_drqn_throughput.py", "--lengths", "20", "50", "100", "200", "500"],
    ),
    "supervised": (
        "Supervised training sequences/s per cell vs nn.GRU (copy first input, T = 50, 1×128)",
        ["bench_supervised.py", "--T", "50", "--hidden-size", "128", "--threads", "1"],
    ),
}


def run(name: str) -> tuple[str, float]:
    """Run one entry; returns its Markdown table (the lines of its output that are table rows)."""
    title, command = SUITE[name]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"benchmark {name!r} failed:\n{done.stderr[-2000:]}")
    table = "\n".join(line for line in done.stdout.splitlines() if line.startswith("|"))
    shown = " ".join(["python", f"benchmarks/{command[0]}", *command[1:]])
    return f"### {title}\n\n`{shown}` ({seconds:.0f} s)\n\n{table}\n", seconds


def header() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {platform.machine()}, {os.cpu_count()} cores, "
        f"PyTorch {torch.__version__}, Python {platform.python_version()}; load average before the run: "
        f"{load} (other jobs on the machine slow wall-clock figures; ratios and CPU-time figures hold).\n"
    )


def write_section(body: str) -> None:
    text = RESULTS.read_text()
    section = f"{START}\n## Performance suite (`python benchmarks/run_all.py`)\n\n{body}{END}"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SUITE), default=list(SUITE), help="entries to run")
    parser.add_argument("--no-write", action="store_true", help="print only (implied by --only)")
    args = parser.parse_args()
    parts = [header()]
    for name in args.only:
        print(f"running {name} ...", flush=True)
        part, seconds = run(name)
        print(part, flush=True)
        parts.append(part)
    if not args.no_write and set(args.only) == set(SUITE):  # a partial run would drop the other tables
        write_section("\n".join(parts))
        print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
