"""Supervised training speed per cell: training sequences/s (forward + backward + Adam step) on
copy first input, and the time of one per-epoch VAA estimate, against ``torch.nn.GRU``.

    python benchmarks/bench_supervised.py --T 50 --hidden-size 128 --threads 1

The baseline is a plain ``nn.GRU`` + linear readout trained in the same loop; ratio = cell's
sequences/s divided by the baseline's (1.0 = as fast as nn.GRU). Times are the process's CPU time
(``time.process_time``), so with one thread they do not depend on other jobs sharing the machine;
with more threads they add up the threads' time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import tyro
from torch import nn

from recurrent_q.cells import CELL_NAMES, make_cell
from recurrent_q.multistability import estimate_vaa
from supervised.datasets import CopyFirstInput
from supervised.train import SequenceModel, loss_and_correct


@dataclass
class Args:
    T: int = 50
    """sequence length of copy first input"""
    hidden_size: int = 128
    """units per layer"""
    num_layers: int = 1
    """recurrent layers"""
    batch_size: int = 32
    """training batch size"""
    steps: int = 20
    """timed training steps per round"""
    rounds: int = 3
    """rounds of (baseline, cell) timings per cell; medians reported"""
    vaa_steps: int = 10_000
    """M of the timed VAA estimate (0: skip)"""
    vaa_iterations: int = 10
    """I of the timed VAA estimate"""
    double: bool = False
    """also time double layers"""
    threads: int = 1
    """torch threads"""


class GRUBaseline(nn.Module):
    def __init__(self, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1:])


class Timer:
    """Training steps of one model (its own Adam), timed on the process clock."""

    def __init__(self, model: nn.Module, data: CopyFirstInput, args: Args) -> None:
        self.model, self.data, self.args = model, data, args
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.x, self.y = data.data[: args.batch_size], data.targets[: args.batch_size]
        self.rate(warmup_only=True)

    def rate(self, warmup_only: bool = False) -> float:
        """Training sequences per CPU second over ``args.steps`` steps."""
        steps = 5 if warmup_only else self.args.steps
        tic = time.process_time()
        for _ in range(steps):
            loss, _ = loss_and_correct(self.data, self.model(self.x), self.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return steps * self.args.batch_size / (time.process_time() - tic)


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = CopyFirstInput(max(args.batch_size, args.vaa_iterations * args.batch_size), args.T)
    baseline = Timer(GRUBaseline(args.hidden_size, args.num_layers), data, args)
    print(
        f"T={args.T} hidden_size={args.hidden_size} num_layers={args.num_layers} batch={args.batch_size} "
        f"threads={args.threads} rounds={args.rounds}x{args.steps} steps"
    )
    print(
        f"| cell | train seq/s | ratio vs nn.GRU | VAA M={args.vaa_steps} I={args.vaa_iterations} (CPU s) |"
    )
    print("|-|-|-|-|")
    baseline_rates = []
    for double in (False, True) if args.double else (False,):
        for cell in CELL_NAMES:
            rnn = make_cell(
                cell,
                1,
                args.hidden_size,
                num_layers=args.num_layers,
                double=double,
                t_max=600 if cell == "chrono" else None,
            )
            timer = Timer(SequenceModel(rnn, 1, data.target_steps), data, args)
            # Baseline and cell alternate, so both see the same machine load; medians over rounds.
            rates, ratios = [], []
            for _ in range(args.rounds):
                base = baseline.rate()
                rates.append(timer.rate())
                ratios.append(rates[-1] / base)
                baseline_rates.append(base)
            vaa_time = ""
            if args.vaa_steps:
                tic = time.process_time()
                estimate_vaa(
                    rnn,
                    data.data,
                    steps=args.vaa_steps,
                    iterations=args.vaa_iterations,
                    batch_size=args.batch_size,
                )
                vaa_time = f"{time.process_time() - tic:.1f}"
            name = f"{cell} (double)" if double else cell
            print(
                f"| {name} | {statistics.median(rates):.0f} | {statistics.median(ratios):.2f} | {vaa_time} |"
            )
    print(f"| nn.GRU | {statistics.median(baseline_rates):.0f} | 1.00 | |")


if __name__ == "__main__":
    main()
