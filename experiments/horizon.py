"""Temporal horizon generalisation: train on a short horizon, evaluate at much longer ones.

A policy *generalises across temporal horizons* when, trained at horizon ``L``, it stays optimal at
every longer ``L'`` (the lab's later work: multistability is necessary for it, and sufficient on simple
tasks; the parallelisable RNNs, minGRU and LRU here, are monostable and fail). This module measures it:

- T-Maze (RL): the trained Q-network is evaluated by :mod:`experiments.evaluation` (the optimality test
  at any ``L'`` on batched greedy rollouts, the VAA on exploration rollouts, the corridor attractors).
- Copy first input (supervised): :func:`copy_mse` is the test MSE of a trained network on sequences of
  any length ``T'``, the recurrence run in time chunks; :func:`evaluate_supervised` reads a run
  directory written by ``supervised.train.train`` (``best.pt``, ``result.json``).
- The grid (``scripts/reproduce.py horizon``): :func:`run_horizon` trains and evaluates one run (kind
  ``"horizon"`` of :mod:`experiments.grid`); :func:`write_horizon_results` writes the two tables
  (``results.md``, ``results.json``) and the plot (``results.png``); :func:`write_finished` does it for
  the finished runs of a grid stopped early, :func:`write_corridor_attractors` writes ``attractors.md``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from experiments.evaluation import corridor_attractors, horizon_optimality, optimal_at, tmaze_vaa
from experiments.results import mean_std
from experiments.run_dirs import is_finished, read_json, write_json
from experiments.tmaze import TMazeConfig
from supervised.datasets import CopyFirstInput
from supervised.train import SequenceModel, SupervisedConfig, config_from_dict, make_model

SUPERVISED_HORIZONS = (100, 1_000, 10_000, 100_000)
"""Sequence lengths ``T'`` at which a copy-first-input network is evaluated."""
TIME_CHUNK = 1_000
"""Steps of a long sequence run at once by :func:`copy_mse` (bounds the outputs held in memory)."""


# --------------------------------------------------------------------------------------------
# Copy first input at long horizons
# --------------------------------------------------------------------------------------------


def load_supervised_run(run_dir: str | Path) -> tuple[SupervisedConfig, SequenceModel]:
    """The config (``result.json``) and the best-validation network (``best.pt``) of a run directory
    written by ``supervised.train.train`` with a ``logdir``."""
    run_dir = Path(run_dir)
    for name in ("result.json", "best.pt"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(
                f"{run_dir / name} not found: RUN_DIR must be the logdir of a finished supervised.train run"
            )
    saved = json.loads((run_dir / "result.json").read_text())["config"]
    config = config_from_dict(saved)
    if config.task != "copy":
        raise ValueError(f"horizon evaluation supports task 'copy' only; {run_dir} is task {config.task!r}")
    model = make_model(config, CopyFirstInput(1, config.T))
    model.load_state_dict(torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True))
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
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive integer; got {T!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
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
        from experiments.grid import run_supervised

        metrics = run_supervised({**config, "task": "copy"}, run_dir, resume)
        tic = time.perf_counter()
        metrics["horizons"] = evaluate_supervised(run_dir, horizons, eval_sequences, seed=0)
        metrics["eval_seconds"] = time.perf_counter() - tic
        history = metrics["history"]
        metrics["vaa"] = history["val_vaa"][history["epoch"].index(metrics["best_epoch"])]
        return metrics
    if task != "tmaze":
        raise ValueError(f"config['task'] must be 'tmaze' or 'copy'; got {task!r}")
    from experiments.tmaze import run_tmaze_experiment
    from recurrent_q.drqn import DRQN

    model_path = run_dir / "model.zip"
    metrics = run_tmaze_experiment(**config, logdir=str(run_dir), save_path=str(model_path))
    q_net = DRQN.load(model_path, device="cpu").q_net.eval()
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
    return metrics


# --------------------------------------------------------------------------------------------
# Tables and plot
# --------------------------------------------------------------------------------------------


def summarise_horizon(runs: Sequence[Any], results: dict[str, dict]) -> dict[str, list[dict[str, Any]]]:
    """Rows per group of seeds: ``{"tmaze": [...], "copy": [...]}``; runs absent from ``results`` (not
    finished) are listed in ``not_finished``.

    T-Maze rows: ``length``, ``cell``, ``version``, ``horizons``, ``seeds`` (finished runs),
    ``seeds_list``, ``not_finished``, ``ever_optimal`` (optimal at ``length`` at some check),
    ``reached`` (optimal at ``length`` at the end of training: the runs evaluated at ``L'``),
    ``optimal`` (``{L': seeds still optimal}``, over the reached ones), ``first_optimal_episode`` (over
    the ever optimal ones) and ``vaa`` (mean, std), ``runs`` (per seed: ``first_optimal_episode``,
    ``episodes``, ``optimal_at_end``, ``optimal_checks`` and ``checks_since_first`` (the checks where the
    policy was optimal, and all the checks, from the first optimal one to the end), ``last_optimal``
    (the last optimal check), ``optimal_since``
    (the first check of the final streak of optimal checks, None when not optimal at the end), ``vaa``,
    ``optimal`` ``{L': bool}``). Copy rows: the same labels, ``diverged``, ``test_loss``, ``mse``
    (``{T': (mean, std)}`` over the finite values), ``vaa`` (at the best epoch) and ``runs``.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        config = run.config
        task = config["task"]
        size = ("length", config["length"]) if task == "tmaze" else ("T", config["T"])
        row = groups.setdefault(
            (task, run.group),
            {
                size[0]: size[1],
                "cell": config["cell"],
                "version": config["version"],
                "horizons": [int(h) for h in config["horizons"]],
                "not_finished": [],
                "_runs": [],
                "_config": config,
            },
        )
        if run.name in results:
            row["_runs"].append((run.seed, results[run.name]))
        else:
            row["not_finished"].append(run.seed)
    tables: dict[str, list[dict[str, Any]]] = {"tmaze": [], "copy": []}
    for (task, _), row in groups.items():
        config = row.pop("_config")
        runs_of = sorted(row.pop("_runs"), key=lambda item: item[0])
        row["seeds"] = len(runs_of)
        row["seeds_list"] = [seed for seed, _ in runs_of]
        vaas = [m.get("vaa") for _, m in runs_of]
        row["vaa"] = mean_std([float(v) for v in vaas if isinstance(v, (int, float)) and math.isfinite(v)])
        if task == "tmaze":
            check_freq = config.get("check_freq", TMazeConfig.check_freq)
            row["runs"] = [
                {
                    "seed": seed,
                    "first_optimal_episode": m["first_optimal_episode"],
                    "episodes": m["episodes"],
                    "optimal_at_end": bool(m["optimal_at_end"]),
                    **_check_history(m, check_freq),
                    "vaa": m.get("vaa"),
                    "optimal": {h["length"]: bool(h["optimal"]) for h in m.get("horizons", [])},
                }
                for seed, m in runs_of
            ]
            reached = [r for r in row["runs"] if r["optimal"]]  # evaluated: optimal at L at the end
            ever = [r for r in row["runs"] if r["first_optimal_episode"] is not None]
            row["ever_optimal"] = len(ever)
            row["reached"] = len(reached)
            row["optimal"] = (
                {h: sum(r["optimal"][h] for r in reached) for h in row["horizons"]} if reached else {}
            )
            row["first_optimal_episode"] = mean_std([float(r["first_optimal_episode"]) for r in ever])
        else:
            row["diverged"] = sum(bool(m.get("diverged")) for _, m in runs_of)
            row["runs"] = [
                {
                    "seed": seed,
                    "diverged": bool(m.get("diverged")),
                    "test_loss": m.get("test_loss"),
                    "vaa": m.get("vaa"),
                    "mse": {h["T"]: h["mse"] for h in m.get("horizons", [])},
                }
                for seed, m in runs_of
            ]
            ok = [r for r in row["runs"] if not r["diverged"]]
            row["test_loss"] = mean_std([r["test_loss"] for r in ok if _finite(r["test_loss"])])
            row["mse"] = {
                t: mean_std([r["mse"][t] for r in ok if _finite(r["mse"].get(t))]) for t in row["horizons"]
            }
            row["zero_mse"] = {t: zero_prediction_mse(t, config["eval_sequences"]) for t in row["horizons"]}
        tables[task].append(row)
    return tables


def _check_history(metrics: dict[str, Any], check_freq: int) -> dict[str, Any]:
    """From a T-Maze run's ``first_optimal_episode``, ``optimal_checks`` and ``episodes``: the optimal
    checks and all the checks from the first optimal one to the end (the checks are every ``check_freq``
    episodes, ``TMazeOptimalCallback``), ``last_optimal``, the last optimal check, and ``optimal_since``,
    the first check of the final streak of optimal checks (None when the policy is not optimal at the
    last check)."""
    first = metrics["first_optimal_episode"]
    if first is None:
        return {"optimal_checks": 0, "checks_since_first": 0, "last_optimal": None, "optimal_since": None}
    checks = range(first, metrics["episodes"] + 1, check_freq)
    optimal = set(metrics["optimal_checks"]) & set(checks)
    since = None
    for episode in reversed(checks):
        if episode not in optimal:
            break
        since = episode
    return {
        "optimal_checks": len(optimal),
        "checks_since_first": len(checks),
        "last_optimal": max(optimal, default=None),
        "optimal_since": since,
    }


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt_mean(value: tuple[float, float] | None, digits: str = ".3g") -> str:
    if value is None:
        return "—"
    return f"{value[0]:{digits}} ± {value[1]:.2g}"


def _fmt(value: Any, digits: str = ".3g") -> str:
    return f"{value:{digits}}" if _finite(value) else "—"


def _seeds(row: dict[str, Any]) -> str:
    text = f"{row['seeds']} ({', '.join(map(str, row['seeds_list']))})" if row["seeds"] else "0"
    if row["not_finished"]:
        text += f"; not finished: {', '.join(map(str, row['not_finished']))}"
    if row.get("diverged"):
        text += f"; {row['diverged']} diverged"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows] + [""]


def markdown_tables(tables: dict[str, list[dict[str, Any]]], title: str) -> str:
    """The T-Maze table (seeds still optimal at each ``L'`` out of those optimal at the training ``L``),
    the copy table (test MSE at each ``T'``), then every run."""
    lines = [f"## {title}", ""]
    rl, sup = tables["tmaze"], tables["copy"]
    rl_h = sorted({h for row in rl for h in row["horizons"]})
    sup_h = sorted({t for row in sup for t in row["horizons"]})
    if rl:
        lines += [
            "### T-Maze: seeds still optimal at L' (out of those optimal at the training length L at the end "
            "of training)",
            "",
        ]
        header = ["L", "cell", "version", "seeds", "ever optimal at L", "optimal at L at the end"]
        header += [f"L'={h:,}" for h in rl_h]
        rows = []
        for row in rl:
            cells = [
                str(row["length"]),
                row["cell"],
                row["version"],
                _seeds(row),
                f"{row['ever_optimal']}/{row['seeds']}" if row["seeds"] else "—",
                f"{row['reached']}/{row['seeds']}" if row["seeds"] else "—",
            ]
            cells += [f"{row['optimal'][h]}/{row['reached']}" if row["reached"] else "—" for h in rl_h]
            rows.append(
                cells + [_fmt_mean(row["first_optimal_episode"], ".0f"), _fmt_mean(row["vaa"], ".2f")]
            )
        lines += _table(header + ["first optimal episode (ever optimal seeds)", "VAA"], rows)
    if sup:
        lines += ["### Copy first input: test MSE at T' (mean ± std over seeds)", ""]
        header = ["T", "cell", "version", "seeds", "test MSE at T"] + [f"T'={t:,}" for t in sup_h] + ["VAA"]
        rows = []
        for row in sup:
            cells = [str(row["T"]), row["cell"], row["version"], _seeds(row), _fmt_mean(row["test_loss"])]
            rows.append(
                cells + [_fmt_mean(row["mse"].get(t)) for t in sup_h] + [_fmt_mean(row["vaa"], ".2f")]
            )
        first = sup[0]
        rows.append(
            [str(first["T"]), "predict 0 (no memory)", "—", "—", "1"]
            + [f"{first['zero_mse'][t]:.3g}" if t in first["zero_mse"] else "—" for t in sup_h]
            + ["—"]
        )
        lines += _table(header, rows)
        lines += [
            "The last row is the MSE of predicting 0, the mean of u_1² over the same test sequences at "
            "each T' (at T, its expectation): a network above it is worse than no memory.",
            "",
        ]
    if rl:
        lines += [
            "### T-Maze, every run (✓ optimal, ✗ not; — not evaluated at L': not optimal at L at the end "
            "of training)",
            "",
            "first optimal episode (of): the first optimal check, out of the episodes trained; optimal "
            "checks: those where the greedy policy was optimal at L, out of all the checks from the first "
            "optimal one to the end; last optimal: the last optimal check; optimal since: the first check of "
            "the final streak of optimal checks; the network evaluated at L' is the one at the end of "
            "training.",
            "",
        ]
        header = ["L", "cell", "version", "seed", "first optimal episode (of)", "optimal at L at the end"]
        header += ["optimal checks", "last optimal", "optimal since", "VAA"] + [f"L'={h:,}" for h in rl_h]
        rows = []
        for row in rl:
            for r in row["runs"]:
                first = r["first_optimal_episode"]
                cells = [str(row["length"]), row["cell"], row["version"], str(r["seed"])]
                cells += [f"{'never' if first is None else first} ({r['episodes']})"]
                cells += ["✓" if r["optimal_at_end"] else "✗"]
                cells += [f"{r['optimal_checks']}/{r['checks_since_first']}" if first is not None else "—"]
                cells += ["—" if r[key] is None else str(r[key]) for key in ("last_optimal", "optimal_since")]
                cells += [_fmt(r["vaa"], ".3f")]
                rows.append(
                    cells + [("✓" if r["optimal"][h] else "✗") if h in r["optimal"] else "—" for h in rl_h]
                )
        lines += _table(header, rows)
    if sup:
        lines += ["### Copy first input, every run (test MSE)", ""]
        header = ["T", "cell", "version", "seed", "at T"] + [f"T'={t:,}" for t in sup_h] + ["VAA"]
        rows = []
        for row in sup:
            for r in row["runs"]:
                cells = [
                    str(row["T"]),
                    row["cell"],
                    row["version"],
                    str(r["seed"]) + (" (diverged)" if r["diverged"] else ""),
                ]
                cells += (
                    [_fmt(r["test_loss"])] + [_fmt(r["mse"].get(t)) for t in sup_h] + [_fmt(r["vaa"], ".2f")]
                )
                rows.append(cells)
        lines += _table(header, rows)
    return "\n".join(lines)


_VERSION_STYLES = {"classic": "-", "warmup": "--", "double": ":"}
_MARKERS = "osD^vP*Xh<>"
_JITTER = 0.012
"""Vertical offset between the lines of a T-Maze panel (several lie on 0 or 1)."""


def plot_horizon(tables: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Fraction of the seeds optimal at the training ``L`` still optimal at ``L'`` (one panel per ``L``;
    the first point is ``L`` itself) and test MSE against ``T'`` (the first point is the training ``T``),
    log x-axis, one line per cell and version. Groups that never reached the optimal policy are named in
    the legend without a line; T-Maze lines are offset by a few hundredths so that equal ones stay
    visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rl, sup = tables["tmaze"], tables["copy"]
    lengths = sorted({row["length"] for row in rl})
    panels = max(len(lengths) + bool(sup), 1)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5), squeeze=False)
    groups = list(dict.fromkeys((row["cell"], row["version"]) for row in rl + sup))
    style = {
        group: {
            "color": plt.get_cmap("tab10")(i % 10),
            "linestyle": _VERSION_STYLES.get(group[1], "-"),
            "marker": _MARKERS[i % len(_MARKERS)],
        }
        for i, group in enumerate(groups)
    }
    for ax, length in zip(axes[0], lengths, strict=False):
        for row in (r for r in rl if r["length"] == length):
            group = (row["cell"], row["version"])
            label = (
                f"{row['cell']} {row['version']} ({row['reached']}/{row['seeds']} optimal at L at the end)"
            )
            if not row["reached"]:
                ax.plot([], [], label=label + ": no line", **style[group])
                continue
            offset = _JITTER * (groups.index(group) - len(groups) / 2)
            xs = [length] + [h for h in row["horizons"] if h in row["optimal"] and h != length]
            ys = [1.0] + [row["optimal"][h] / row["reached"] for h in xs[1:]]
            ax.plot(xs, [y + offset for y in ys], label=label, **style[group])
        ax.set(
            xscale="log",
            ylim=(-0.1, 1.1),
            xlabel="corridor length L' (first point: the training length L)",
            ylabel="fraction of the seeds optimal at L still optimal at L'",
            title=f"T-Maze, DRQN trained at L = {length}",
        )
        ax.legend(fontsize=7)
    if sup:
        ax = axes[0][-1]
        for row in sup:
            group = (row["cell"], row["version"])
            ts = [row["T"]] + [t for t in row["horizons"] if row["mse"].get(t) is not None]
            ys = [row["test_loss"]] + [row["mse"][t] for t in ts[1:]]
            points = [(t, y[0]) for t, y in zip(ts, ys, strict=True) if y is not None]
            label = f"{row['cell']} {row['version']} ({row['seeds']} seeds)"
            ax.plot(*zip(*points, strict=True), label=label, **style[group])
        zero = {sup[0]["T"]: 1.0, **sup[0]["zero_mse"]}  # at T: its expectation, Var(u_1) = 1
        ts = sorted(zero)
        ax.plot(ts, [zero[t] for t in ts], "k:", linewidth=1.5, label="predict 0 (no memory)")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="sequence length T' (first point: the training length T)",
            ylabel="test MSE (mean over seeds)",
            title=f"Copy first input, trained at T = {sup[0]['T']}",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_horizon_results(
    runs: Sequence[Any], results: dict[str, dict], root: Path, command: str
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Write ``results.md``, ``results.json`` and ``results.png`` of a horizon grid under ``root``
    (runs absent from ``results`` are reported as not finished)."""

    tables = summarise_horizon(runs, results)
    text = markdown_tables(tables, f"horizon, preset {root.name}")
    (root / "results.md").write_text(f"{text}\nCommand: `{command}`\n")
    write_json(root / "results.json", tables)
    plot_horizon(tables, root / "results.png")
    return tables, text


def write_finished(preset: str, out: str | Path = "results") -> tuple[dict[str, list[dict[str, Any]]], str]:
    """The tables and plot of the runs of the horizon grid ``preset`` that have finished under ``out``,
    without running anything (for a grid stopped before its end; the others show as not finished)."""
    from experiments.presets import build_grid

    root = Path(out) / "horizon" / preset
    runs = build_grid("horizon", preset)
    results = {
        run.name: read_json(root / run.name / "metrics.json") for run in runs if is_finished(run, root)
    }
    command = f"python scripts/reproduce.py horizon --preset {preset}"
    return write_horizon_results(runs, results, root, command)


def write_corridor_attractors(
    preset: str, out: str | Path = "results", steps: int = 100_000
) -> list[dict[str, Any]]:
    """:func:`corridor_attractors` of every finished T-Maze run of the horizon grid ``preset`` under
    ``out`` (read from its ``model.zip``), written to ``attractors.md`` and ``attractors.json`` beside
    the grid's tables: does each trained network end the two layouts in distinct attractors of the
    corridor input, and are they read at the junction as their layouts?"""
    from experiments.presets import build_grid
    from recurrent_q.drqn import DRQN

    root = Path(out) / "horizon" / preset
    rows = []
    for run in build_grid("horizon", preset):
        if run.config["task"] != "tmaze" or not is_finished(run, root):
            continue
        metrics = read_json(root / run.name / "metrics.json")
        q_net = DRQN.load(root / run.name / "model.zip", device="cpu").q_net.eval()
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
            + [longest, _fmt(r["vaa"], ".3f"), f"{r['distance']:.3g}", junction]
            + ["—" if r["first_not_right"] is None else f"{r['first_not_right']:,}"]
        )
    (root / "attractors.md").write_text("\n".join(lines + _table(header, table)))
    return rows


__all__ = [
    "SUPERVISED_HORIZONS",
    "copy_mse",
    "copy_test_seed",
    "evaluate_supervised",
    "load_supervised_run",
    "markdown_tables",
    "plot_horizon",
    "run_horizon",
    "summarise_horizon",
    "write_corridor_attractors",
    "write_finished",
    "write_horizon_results",
    "zero_prediction_mse",
]
