"""Temporal horizon generalisation: train on a short horizon, evaluate at much longer ones.

A policy *generalises across temporal horizons* when, trained at horizon ``L``, it stays optimal at
every longer ``L'`` (the lab's later work: multistability is necessary for it, and sufficient on simple
tasks; the parallelisable RNNs, minGRU and LRU here, are monostable and fail). This module measures it:

- T-Maze (RL): the trained Q-network is evaluated by :mod:`experiments.evaluation` (the optimality test
  at any ``L'`` on batched greedy rollouts, the VAA on exploration rollouts, the corridor attractors).
- Copy first input (supervised): :func:`copy_mse` is the test MSE of a trained network on sequences of
  any length ``T'``, the recurrence run in time chunks; :func:`evaluate_supervised` reads a run
  directory written by ``supervised.train.train`` (``best.pt``, ``result.json``).
- The grid (``scripts/reproduce.py horizon``): :func:`run_horizon` trains and evaluates one run (the
  runner of the runs of kind ``"horizon"``); :mod:`experiments.horizon_results` writes the grid's tables
  and plot; :func:`write_corridor_attractors` writes ``attractors.md`` from the trained models.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from experiments.evaluation import (
    corridor_attractors,
    horizon_diagnosis,
    horizon_optimality,
    optimal_at,
    tmaze_vaa,
)
from experiments.horizon_presets import horizon_grid
from experiments.results import format_number, table_lines
from experiments.run_dirs import is_finished, read_json, write_json
from experiments.runners import run_supervised
from experiments.tmaze import run_tmaze_experiment
from recurrent_q.checks import check_integer
from recurrent_q.drqn import DRQN
from supervised.datasets import CopyFirstInput
from supervised.train import SequenceModel, SupervisedConfig, config_from_dict, make_model

SUPERVISED_HORIZONS = (100, 1_000, 10_000, 100_000)
"""Sequence lengths ``T'`` at which a copy-first-input network is evaluated."""
TIME_CHUNK = 1_000
"""Steps of a long sequence run at once by :func:`copy_mse` (bounds the outputs held in memory)."""


# --------------------------------------------------------------------------------------------
# Copy first input at long horizons
# --------------------------------------------------------------------------------------------


class SupervisedRunError(FileNotFoundError, ValueError):
    """A run directory that is not a finished ``supervised.train`` run, or whose files cannot be read."""


def load_supervised_run(run_dir: str | Path) -> tuple[SupervisedConfig, SequenceModel]:
    """The config (``result.json``) and the best-validation network (``best.pt``) of a run directory
    written by ``supervised.train.train`` with a ``logdir``.

    :raises SupervisedRunError: naming the file, when one is missing, cut or damaged.
    """
    run_dir = Path(run_dir)
    for name in ("result.json", "best.pt"):
        if not (run_dir / name).is_file():
            raise SupervisedRunError(
                f"{run_dir / name} not found: RUN_DIR must be the logdir of a finished supervised.train run"
            )
    try:
        saved = read_json(run_dir / "result.json")
    except ValueError as error:  # names the file and why
        raise SupervisedRunError(f"{error}: not the result of a finished supervised.train run") from error
    if not isinstance(saved.get("config"), dict):
        raise SupervisedRunError(f"{run_dir / 'result.json'} holds no config: not a supervised.train result")
    config = config_from_dict(saved["config"])
    if config.task != "copy":
        raise ValueError(f"horizon evaluation supports task 'copy' only; {run_dir} is task {config.task!r}")
    model = make_model(config, CopyFirstInput(1, config.T))
    try:
        model.load_state_dict(torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise SupervisedRunError(
            f"{run_dir / 'best.pt'} is unreadable ({type(error).__name__}): cut or damaged, or not the "
            "weights of this run's network"
        ) from error
    return config, model.eval()


@torch.no_grad()
def copy_mse(
    model: SequenceModel,
    T: int,
    num_sequences: int = 100,
    seed: int = 0,
    chunk: int = TIME_CHUNK,
) -> float:
    """Test MSE of a copy-first-input network on ``num_sequences`` sequences of length ``T``.

    The sequences are ``CopyFirstInput(num_sequences, T, seed)``; the readout reads the last step's
    output, as in training (``y_T = u_1``). The recurrence runs ``chunk`` steps at a time, carrying the
    state, so memory does not grow with ``T``.
    """
    check_integer("T", T)
    check_integer("chunk", chunk)
    data = CopyFirstInput(num_sequences, T, seed)
    device = next(model.parameters()).device
    x = data.data.to(device)
    state, last = None, None
    for begin in range(0, T, chunk):
        out, state = model.rnn(x[:, begin : begin + chunk], state)
        last = out[:, -1]
    prediction = model.head(last)  # [n, 1]: the readout at step T
    return F.mse_loss(prediction.float(), data.targets.to(device)).item()


def zero_prediction_mse(T: int, num_sequences: int, seed: int = 0) -> float:
    """MSE of the prediction 0 on the test sequences of :func:`evaluate_supervised` at ``T``: the mean of
    ``u_1²`` over them, the no-memory reference of that ``T``."""
    data = CopyFirstInput(num_sequences, T, copy_test_seed(seed, T))
    return float(data.targets.pow(2).mean())


def evaluate_supervised(
    run_dir: str | Path,
    horizons: Sequence[int] = SUPERVISED_HORIZONS,
    num_sequences: int = 100,
    seed: int = 0,
    chunk: int = TIME_CHUNK,
) -> list[dict[str, Any]]:
    """:func:`copy_mse` of a run directory's network at each of ``horizons``.

    :return: ``[{"T", "mse", "data_seed", "seconds"}]``; the sequences at ``T'`` are
        ``CopyFirstInput(num_sequences, T', data_seed)`` with ``data_seed = copy_test_seed(seed, T')``,
        the same for every run.
    """
    _, model = load_supervised_run(run_dir)
    rows = []
    for T in horizons:
        tic = time.perf_counter()
        data_seed = copy_test_seed(seed, int(T))
        mse = copy_mse(model, int(T), num_sequences, data_seed, chunk)
        rows.append({"T": int(T), "mse": mse, "data_seed": data_seed, "seconds": time.perf_counter() - tic})
    return rows


def copy_test_seed(seed: int, T: int) -> int:
    """Seed of the test sequences of length ``T`` (from ``seed`` and ``T``)."""
    return int(np.random.SeedSequence([seed, T]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------
# One run of the grid (kind "horizon")
# --------------------------------------------------------------------------------------------


def run_horizon(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """Train one network (T-Maze DRQN or copy first input) and evaluate it at every horizon of the config.

    ``config["task"]`` is ``"tmaze"`` (the rest goes to ``run_tmaze_experiment``; the network evaluated is
    the final one, trained to its first optimal check with ``stop_when_optimal`` or to the end of its budget
    without, and only when it is optimal at its training length at the end) or ``"copy"`` (the rest to
    ``SupervisedConfig``).
    ``config["horizons"]`` lists ``L'`` or ``T'``; ``config["eval_sequences"]`` the copy sequences per
    ``T'``; ``config["eval_vaa"]`` the keyword arguments of :func:`tmaze_vaa` (``steps``, ``iterations``,
    ``batch_size``).
    """
    config = dict(config)
    task = config.pop("task")
    horizons = [int(h) for h in config.pop("horizons")]
    eval_sequences = config.pop("eval_sequences", 100)
    vaa_settings = config.pop("eval_vaa", {})
    if task == "copy":
        metrics = run_supervised({**config, "task": "copy"}, run_dir, resume)
        tic = time.perf_counter()
        metrics["horizons"] = evaluate_supervised(run_dir, horizons, eval_sequences, seed=0)
        metrics["eval_seconds"] = time.perf_counter() - tic
        history = metrics["history"]
        metrics["vaa"] = history["val_vaa"][history["epoch"].index(metrics["best_epoch"])]
        return metrics
    if task != "tmaze":
        raise ValueError(f"config['task'] must be 'tmaze' or 'copy'; got {task!r}")
    model_path = run_dir / "model.zip"
    metrics = run_tmaze_experiment(**config, logdir=str(run_dir), save_path=str(model_path))
    q_net = DRQN.load(model_path, device="cpu").policy.acting_net.eval()
    tic = time.perf_counter()
    metrics["vaa"] = tmaze_vaa(
        q_net,
        config["length"],
        seed=config["seed"],
        max_episode_steps=config.get("max_episode_steps"),
        **vaa_settings,
    )
    metrics["vaa_seconds"] = time.perf_counter() - tic
    reached = metrics["first_optimal_episode"] is not None and metrics["optimal_at_end"]  # the final policy
    metrics["optimal_at_length_batched"] = optimal_at(q_net, config["length"])  # = optimal_at_end
    metrics["horizons"] = horizon_optimality(q_net, horizons) if reached else []
    # the prediction from the network alone, to compare with the outcome at the longest L'
    longest = max(horizons)
    metrics["diagnosis"] = horizon_diagnosis(q_net, config["length"], horizon=longest) if reached else None
    return metrics


def write_corridor_attractors(
    preset: str, out: str | Path = "results", steps: int = 100_000
) -> list[dict[str, Any]]:
    """:func:`corridor_attractors` of every finished T-Maze run of the horizon grid ``preset`` under
    ``out`` (read from its ``model.zip``), written to ``attractors.md`` and ``attractors.json`` beside
    the grid's tables: does each trained network end the two layouts in distinct attractors of the
    corridor input, and are they read at the junction as their layouts?"""
    root = Path(out) / "horizon" / preset
    rows = []
    for run in horizon_grid(preset):
        if run.config["task"] != "tmaze" or not is_finished(run, root):
            continue
        metrics = read_json(root / run.name / "metrics.json")
        q_net = DRQN.load(root / run.name / "model.zip", device="cpu").policy.acting_net.eval()
        optimal = {h["length"]: h["optimal"] for h in metrics["horizons"]}
        rows.append(
            {
                **{k: run.config[k] for k in ("length", "cell", "version", "seed")},
                "optimal_at_L": bool(metrics["optimal_at_end"]),
                "optimal_at_longest": optimal.get(max(run.config["horizons"])),
                "vaa": metrics["vaa"],
                **corridor_attractors(q_net, steps),
            }
        )
    write_json(root / "attractors.json", rows)
    header = ["L", "cell", "version", "seed", "optimal at L", "at L'=max", "VAA", "distance", "junction"]
    header.append("first step not Right")
    lines = [
        f"## Corridor attractors after {steps:,} corridor steps (both layouts), preset {preset}",
        "",
        "distance: between the two layouts' states; junction: greedy actions from them (up, down), "
        "✓ when Up and Down; first step not Right: along the corridor path, in either layout (— none).",
        "",
    ]
    names = {0: "R", 1: "U", 2: "L", 3: "D"}
    table = []
    for r in rows:
        longest = "—" if r["optimal_at_longest"] is None else ("✓" if r["optimal_at_longest"] else "✗")
        junction = "".join(names[a] for a in r["junction_actions"]) + (" ✓" if r["junction_correct"] else "")
        table.append(
            [str(r["length"]), r["cell"], r["version"], str(r["seed"]), "✓" if r["optimal_at_L"] else "✗"]
            + [longest, format_number(r["vaa"], ".3f"), f"{r['distance']:.3g}", junction]
            + ["—" if r["first_not_right"] is None else f"{r['first_not_right']:,}"]
        )
    (root / "attractors.md").write_text("\n".join(lines + table_lines(header, table)))
    return rows


__all__ = [
    "SUPERVISED_HORIZONS",
    "TIME_CHUNK",
    "copy_mse",
    "copy_test_seed",
    "evaluate_supervised",
    "load_supervised_run",
    "run_horizon",
    "write_corridor_attractors",
    "zero_prediction_mse",
]
