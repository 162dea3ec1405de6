"""Long-horizon T-Maze evaluation of several networks (the seeds of a run): one at a time or together.

For ``K`` DRQN Q-networks (GRU 2 × 32 by default, seeds 0..K-1, untrained: the cost of a step does not
depend on the weights), plays ``L' + 1`` greedy steps in both layouts (``experiments.evaluation
.greedy_rollouts`` with ``max_steps = L' + 1``, the length of the optimality check) and measures, in the
same process:

- ``alone``: the K networks one after the other (K calls);
- ``together``: the K networks in one call (one vector env of 2K mazes, one network step per network
  and time step);
- ``network steps``: the K × (L' + 1) network steps by themselves (``q_net.step`` on a fixed input),
  the floor of both;
- ``vmap``: one time step of the K networks batched with ``torch.func.vmap`` over their stacked
  parameters, against a loop of K ``q_net.step`` calls (the alternative to the loop of ``together``).

Prints the load average (``os.getloadavg()``) before and after, since other jobs slow every figure.

Usage: ``python benchmarks/bench_horizon_eval.py [--networks 3] [--lengths 10000 100000] [--cell gru]
[--threads 1]``
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import gymnasium as gym
import torch
from torch.func import functional_call, stack_module_state, vmap

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.evaluation import greedy_rollouts, input_table
from recurrent_q.drqn import DRQN


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


class _Step(torch.nn.Module):
    """``q_net.step`` as a module's ``forward``, for ``functional_call``."""

    def __init__(self, q_net: torch.nn.Module) -> None:
        super().__init__()
        self.q_net = q_net

    def forward(self, x: torch.Tensor, state: object) -> tuple:
        return self.q_net.step(x, state)


@torch.no_grad()
def vmap_step_seconds(q_nets: list, repeats: int) -> tuple[float, float]:
    """Seconds per time step of the K networks on 2 mazes: vmap over stacked parameters, and a loop."""
    params, buffers = stack_module_state([_Step(q) for q in q_nets])
    stepper = _Step(copy.deepcopy(q_nets[0]))
    x = input_table(q_nets[0])[:2, 0, 0]
    state0 = q_nets[0].rnn.initial_state(2, x.device)
    k = len(q_nets)
    batched = vmap(lambda p, b, u, s: functional_call(stepper, (p, b), (u, s)))
    xs = x.expand(k, *x.shape)
    states = torch.utils._pytree.tree_map(lambda t: t.expand(k, *t.shape).clone(), state0)
    batched(params, buffers, xs, states)  # warm-up
    tic = time.perf_counter()
    for _ in range(repeats):
        _, states = batched(params, buffers, xs, states)
    vmapped = (time.perf_counter() - tic) / repeats
    loop_states = [state0] * k
    tic = time.perf_counter()
    for _ in range(repeats):
        for i, q in enumerate(q_nets):
            _, loop_states[i] = q.step(x, loop_states[i])
    return vmapped, (time.perf_counter() - tic) / repeats


@torch.no_grad()
def step_seconds(q_nets: list, steps: int) -> float:
    """Seconds of ``steps`` time steps of every network alone on 2 mazes (a fixed input)."""
    x = input_table(q_nets[0])[:2, 0, 0]
    tic = time.perf_counter()
    for q in q_nets:
        state = q.rnn.initial_state(2, x.device)
        for _ in range(steps):
            _, state = q.step(x, state)
    return time.perf_counter() - tic


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--networks", type=int, default=3, help="K, the networks (seeds)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[10_000, 100_000], help="values of L'")
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    q_nets = [
        DRQN(
            "RecurrentQPolicy",
            gym.make("TMaze-v0", length=20),
            policy_kwargs=dict(cell=args.cell, use_previous_reward=True),
            seed=seed,
        ).q_net.eval()
        for seed in range(args.networks)
    ]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"load average {load()} (1, 5, 15 min); K = {args.networks} networks, {args.cell} 2 x 32, "
        "both layouts, L' + 1 steps"
    )
    header = f"{'alone s':>9} {'together s':>11} {'ratio':>6} {'network steps s':>16} {'share':>6}"
    print(f"{'L_prime':>8} {header}")
    for length in args.lengths:
        tic = time.perf_counter()
        for q in q_nets:
            greedy_rollouts(q, length, max_steps=length + 1)
        alone = time.perf_counter() - tic
        tic = time.perf_counter()
        greedy_rollouts(q_nets, length, max_steps=length + 1)
        together = time.perf_counter() - tic
        floor = step_seconds(q_nets, length + 1)
        print(
            f"{length:>8} {alone:>9.2f} {together:>11.2f} {together / alone:>6.2f} {floor:>16.2f} "
            f"{floor / together:>6.2f}"
        )
    vmapped, looped = vmap_step_seconds(q_nets, 2000)
    print(
        f"one time step of the K networks: vmap {vmapped * 1e6:.0f} us, loop {looped * 1e6:.0f} us "
        f"(vmap / loop = {vmapped / looped:.2f})"
    )
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
