"""GRU stack forward + backward on the CPU: this library's path (``recurrent_q/_gru_cpu.py``'s compiled loop
where ``_gru_cpu.fits(rows, units)``, ``nn.GRU`` elsewhere) against ``nn.GRU``'s kernels, measured in the
same process, for the sizes that the T-Maze agent, the supervised benchmarks and the paper's 2 × 256 warmup
use. Where the compiled loop does not run, both columns time ``nn.GRU`` (a check of the noise).

    python benchmarks/bench_gru_kernels.py --threads 2

Prints a Markdown table: median wall time of ``--repeats`` runs after one warm-up run, the ratio
``nn.GRU / ours`` (> 1: ours is faster), the kernel used, and the load average before and after.

    python benchmarks/bench_gru_kernels.py --replay-length 100 --replay-episodes 10

times instead the compiled kernel on the calls of a real T-Maze run: the runner's DRQN (its defaults, seed
0) trains 3 episodes, then the recurrences of the loss over ``--replay-episodes`` more are recorded (their
inputs, weights and lengths) and replayed, forward and backward, ``--repeats`` times (one thread; CPU time).
With ``--calls FILE`` the recorded calls are saved there, or read from there if it exists: run it from
two checkouts (``PYTHONPATH``) with the same file to compare two versions of the kernel on the same calls.
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
    (32, 64, 300, 9),  # today's T-Maze agent (2 x 64), histories of L = 100 (up to 3L - 1 steps)
    (32, 64, 1500, 9),  # ... of L = 500
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


def record_loss_calls(length: int, episodes: int) -> list[tuple]:
    """The compiled kernel's calls with gradient over a sequence (the loss's recurrences) during
    ``episodes`` training episodes of the T-Maze runner's DRQN at corridor ``length`` (after 3)."""
    from experiments.tmaze import make_tmaze_drqn
    from experiments.tmaze_config import TMazeConfig

    calls: list[tuple] = []
    original = _gru_cpu.gru_recurrence

    def recorded(gi, h0, weight_hh, bias_hh, lengths, steps):  # type: ignore[no-untyped-def]
        if torch.is_grad_enabled() and gi.requires_grad and gi.shape[1] > 1:
            saved = (gi, h0, weight_hh, bias_hh, lengths)
            calls.append((*(None if x is None else x.detach().clone() for x in saved), steps))
        return original(gi, h0, weight_hh, bias_hh, lengths, steps)

    model = make_tmaze_drqn(TMazeConfig(length=length, seed=0, episodes=episodes + 3))
    model.learn(10**12, max_episodes=3)
    _gru_cpu.gru_recurrence = recorded
    try:
        model.learn(10**12, max_episodes=episodes, reset_num_timesteps=False)
    finally:
        _gru_cpu.gru_recurrence = original
    return calls


def replay(length: int, episodes: int, repeats: int, path: str | None = None) -> None:
    """Print the CPU time of the recorded calls of ``record_loss_calls`` (saved to or read from ``path``,
    with the length and episodes they were recorded at), forward and backward."""
    if path is not None and os.path.exists(path):
        length, episodes, calls = torch.load(path)
    else:
        calls = record_loss_calls(length, episodes)
        if path is not None:
            torch.save((length, episodes, calls), path)
    row_steps = sum(gi.shape[0] * steps if n is None else int(n.sum()) for gi, *_, n, steps in calls)
    times = []
    for _ in range(repeats + 1):  # the first pass compiles (or loads) the kernel: not counted
        start = time.process_time()
        for gi, h0, weight_hh, bias_hh, lengths, steps in calls:
            gi, weight_hh = gi.clone().requires_grad_(), weight_hh.clone().requires_grad_()
            out, h = _gru_cpu.gru_recurrence(gi, h0, weight_hh, bias_hh, lengths, steps)
            (out.sum() + h.sum()).backward()
        times.append(time.process_time() - start)
    best = min(times[1:])
    rows = statistics.mean(gi.shape[0] for gi, *_ in calls)
    recorded = f"L = {length}: {len(calls)} calls over {episodes} episodes (rows {rows:.1f}, {row_steps} "
    recorded += "row-steps)"
    timed = f"forward + backward {best:.3f} CPU s (best of {repeats}), {best / episodes:.4f} per episode"
    print(f"{recorded}; {timed}, {1e9 * best / row_steps:.0f} ns per row-step; load {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--replay-length", type=int, default=None, help="replay a T-Maze run at this L")
    parser.add_argument("--replay-episodes", type=int, default=10, help="training episodes recorded")
    parser.add_argument("--calls", default=None, help="file of the recorded calls (read if it exists)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.replay_length is not None:
        replay(args.replay_length, args.replay_episodes, args.repeats, args.calls)
        return
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
