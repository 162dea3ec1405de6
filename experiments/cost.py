"""What a grid costs before it runs (``mm-reproduce <experiment> --preset paper --dry-run``): the
arithmetic of each run, counted from its settings, in floating-point operations.

The count is a floor, and a rough one: 2 operations per weight of the recurrent stack (its matrix products:
:func:`stack_flops`) per sequence and time step, 3 times that for a step trained (forward and backward),
over every sequence step the run goes through (training, validation, VAA estimates, warmup, test;
for the T-Maze: acting and each gradient step's batch of whole episodes). Element-wise work, the readout,
data handling and the device's idle time are not counted: on a GPU, recurrent networks of width 64-512
at batch 32 reach a small share of its peak, so divide by the rate a device reaches *on these runs*
(measure one run, then scale), not by its peak.

T-Maze runs are counted at their whole episode budget and at the horizon 3L − 1 (each run may stop
sooner at its first optimal check): an upper bound of that part.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from experiments.optimality import authors_horizon
from experiments.presets import Run
from experiments.tmaze_config import TMazeConfig
from recurrent_q.cells import make_cell
from recurrent_q.multistability import WarmupConfig
from supervised.config import SupervisedConfig, config_from_dict
from supervised.datasets import (
    CopyFirstInput,
    Denoising,
    PermutedLineSequentialMNIST,
    PermutedSequentialMNIST,
)

INPUT_SIZES = {
    "copy": CopyFirstInput.input_size,
    "denoising": Denoising.input_size,
    "psmnist": PermutedSequentialMNIST.input_size,
    "plsmnist": PermutedLineSequentialMNIST.input_size,
}
MNIST_SIZES = (60_000, 10_000)
"""Training and test digits of the full MNIST (the paper's); a smaller ``--data-dir`` costs less."""
TMAZE_INPUT_SIZE = 3 + 4 + 1
"""The T-Maze agent's input: its observation (3), the previous action (one-hot, 4) and reward (1)."""


@cache
def stack_flops(cell: str, input_size: int, hidden_size: int, num_layers: int, double: bool) -> float:
    """Operations of one time step of one sequence through the recurrent stack: 2 per weight."""
    options = {"t_max": 600} if cell == "chrono" else {}  # its initialisation only, not its size
    stack = make_cell(cell, input_size, hidden_size, num_layers, double=double, **options)
    return 2.0 * sum(p.numel() for p in stack.parameters())


def warmup_flops(config: WarmupConfig, per_step: float) -> float:
    """The warmup's floor: ``steps`` gradient steps of ``batch_size`` sequences held for at most
    ``max_stabilisation`` steps, each trained (×3)."""
    return 3.0 * config.steps * config.batch_size * config.max_stabilisation * per_step


def supervised_flops(config: dict[str, Any]) -> float:
    """A supervised run (``supervised.train``): warmup (or Appendix H's pretraining), then per epoch the
    training set trained (with the reconstruction decoder's steps for version auxiliary), the validation
    set and the per-epoch VAA evaluated, and the test set once."""
    settings = {k: v for k, v in config.items() if k not in ("horizons", "eval_sequences")}
    settings.setdefault("data_dir", "(not read)")  # MNIST's sizes are MNIST_SIZES; no file is opened
    c: SupervisedConfig = config_from_dict(settings).resolved()
    double = c.version == "double"
    per_step = stack_flops(c.cell, INPUT_SIZES[c.task], c.hidden_size, c.num_layers, double)
    if c.task in ("psmnist", "plsmnist"):
        learning, test = MNIST_SIZES
    else:
        learning, test = c.num_train, c.num_test if c.num_test is not None else c.num_train
    train = learning * (1 - c.val_fraction)
    per_epoch = (3 * train + learning * c.val_fraction) * c.T * per_step
    per_epoch += c.vaa_iterations * c.vaa_batch_size * c.vaa_steps * per_step
    total = c.epochs * per_epoch + test * c.T * per_step
    if c.version in ("warmup", "double"):
        total += warmup_flops(c.warmup_config, per_step)
    if c.version == "auxiliary":  # Appendix H: the decoder's steps in every epoch, and the pretraining
        decoder = stack_flops(c.cell, INPUT_SIZES[c.task], c.hidden_size, c.auxiliary_layers, False)
        reconstruction = 3 * train * c.auxiliary_length * decoder
        anchor = (c.auxiliary_length + c.T) / 2  # the mean number of inputs read before the anchor
        pretraining = 3 * train * anchor * per_step + reconstruction
        pretraining += c.vaa_iterations * c.vaa_batch_size * c.vaa_steps * per_step
        total += c.epochs * reconstruction + c.auxiliary_pretrain_epochs * pretraining
    for horizon in config.get("horizons") or ():  # horizon runs: the test sequences at each longer T'
        total += config.get("eval_sequences", test) * horizon * per_step
    return total


def tmaze_flops(config: dict[str, Any]) -> float:
    """A T-Maze run at its whole episode budget: acting, then each episode's gradient steps on a batch of
    whole episodes (trained, ×3), at the horizon 3L − 1; the warmup; a horizon run's evaluations at L'.
    ``gradient_steps_after_optimal``'s extra updates are not counted (when the first optimal check comes is
    not known before the run): the floor keeps ``gradient_steps`` throughout."""
    keys = set(TMazeConfig.__dataclass_fields__)
    c = TMazeConfig(**{k: v for k, v in config.items() if k in keys})
    per_step = stack_flops(c.cell, TMAZE_INPUT_SIZE, c.hidden_size, c.num_layers, c.version == "double")
    steps = c.max_episode_steps or authors_horizon(c.length)
    total = c.episodes * steps * (1 + 3 * c.gradient_steps * c.batch_size) * per_step
    if c.version in ("warmup", "double"):
        total += warmup_flops(WarmupConfig(batch_size=c.warmup_batch_size or 200), per_step)
    total += 2 * sum(config.get("horizons") or ()) * per_step  # both layouts at each L'
    vaa = config.get("eval_vaa") or {}
    total += vaa.get("steps", 0) * vaa.get("iterations", 0) * vaa.get("batch_size", 0) * per_step
    return total


def run_flops(run: Run) -> float | None:
    """The floor of ``run``'s arithmetic (None for a kind not counted: the memory suites)."""
    config = run.config
    if run.kind == "supervised" or (run.kind == "horizon" and config.get("task") == "copy"):
        return supervised_flops(config)
    if run.kind == "tmaze" or run.kind == "horizon":
        return tmaze_flops({k: v for k, v in config.items() if k != "task"})
    return None


def cost_lines(runs: Sequence[Run], states: dict[str, str], rate: float) -> list[str]:
    """The dry run's report: one line per group of runs (its seeds, how many are finished, its
    operations), then the total still to run and its time at ``rate`` operations per second."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    lines, todo, unknown = [], 0.0, 0
    for group, members in groups.items():
        flops = [run_flops(run) for run in members]
        done = sum(states.get(run.name) == "finished" for run in members)
        known = [f for f in flops if f is not None]
        text = f"{sum(known) / 1e12:10.2f} TFLOP" if known else "   not counted"
        seeds = ", ".join(str(run.seed) for run in members)
        lines.append(f"{text}  {group}  seeds {seeds}  ({done}/{len(members)} finished)")
        for run, f in zip(members, flops, strict=True):
            if states.get(run.name) != "finished":
                todo += f or 0.0
                unknown += f is None
    hours = todo / rate / 3600
    lines.append(
        f"still to run: {sum(states.get(r.name) != 'finished' for r in runs)} of {len(runs)} runs, "
        f"{todo / 1e12:.1f} TFLOP (a floor: the recurrent products only), {hours:.2f} h at "
        f"{rate / 1e12:g} TFLOP/s" + (f"; {unknown} runs not counted" if unknown else "")
    )
    return lines


__all__ = ["cost_lines", "run_flops", "stack_flops", "supervised_flops", "tmaze_flops", "warmup_flops"]
