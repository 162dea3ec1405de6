"""Run a grid of experiments, resumably, and summarise it: the engine of ``scripts/reproduce.py``.

Each run of a grid (:mod:`experiments.presets`) writes its files in its run directory
(:mod:`experiments.run_dirs` says what a relaunch does with each one: finished runs are skipped, nothing
is ever deleted). Re-launching a grid runs only what is missing; the grid ends with ``results.md``
(mean ± std over seeds), ``results.json`` and ``results.png``; the table counts diverged runs ("2/3, 1
diverged") and the end of the grid says so.

Worker processes stop when the process that launched them dies (a ``kill -9`` of the grid leaves no
worker writing into the run directories).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from experiments.presets import Run, build_grid
from experiments.run_dirs import (
    RunConflictError,
    conflict_error,
    finite_or_null,
    is_finished,
    non_finite_keys,
    read_json,
    run_identity,
    run_state,
    saved_config,
    set_aside,
    write_json,
)

# --------------------------------------------------------------------------------------------
# Runners (executed in worker processes: they import the project lazily)
# --------------------------------------------------------------------------------------------


def run_supervised(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    from recurrent_q.multistability import WarmupConfig
    from supervised.train import CheckpointError, SupervisedConfig, train

    warmup_config = WarmupConfig(**config.pop("warmup_config", {}))
    settings = SupervisedConfig(
        **config, warmup_config=warmup_config, logdir=str(run_dir), resume=resume, progress=False
    )
    try:
        return train(settings).to_dict()
    except CheckpointError as error:  # an unreadable checkpoint: set it aside, start the run again
        set_aside(error.path, f"{error}: the run starts again")
        settings.resume = False
        return train(settings).to_dict()


def run_tmaze(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """A T-Maze run has no checkpoint: an interrupted one starts again (``resume`` is ignored)."""
    from experiments.tmaze import run_tmaze_experiment

    return run_tmaze_experiment(**config, logdir=str(run_dir))


def run_horizon(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """Train, then evaluate at longer horizons: :func:`experiments.horizon.run_horizon`."""
    from experiments.horizon import run_horizon

    return run_horizon(config, run_dir, resume)


RUNNERS: dict[str, Callable[[dict[str, Any], Path, bool], dict[str, Any]]] = {
    "supervised": run_supervised,
    "tmaze": run_tmaze,
    "horizon": run_horizon,
}


def execute_run(
    run: Run, root: str, threads: int = 1, restart_changed: bool = False
) -> tuple[str, dict[str, Any], bool]:
    """Run ``run`` under ``root`` unless it has finished. Returns (name, metrics, ran).

    :raises RunConflictError: the run directory holds a run with other settings (and not
        ``restart_changed``).
    """
    run_dir = Path(root) / run.name
    state, differing = run_state(run, run_dir)
    if state == "finished":
        return run.name, read_json(run_dir / "metrics.json"), False
    if state == "changed":
        if not restart_changed:
            raise conflict_error(run, run_dir, differing)
        set_aside(run_dir, f"run {run.name} had other settings ({', '.join(differing)})")
    import torch

    torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", saved_config(run))
    start = time.perf_counter()
    # an interrupted attempt of the same run continues from its last checkpoint where the trainer has one
    metrics = RUNNERS[run.kind](dict(run.config), run_dir, state == "partial")
    metrics["wall_time_s"] = time.perf_counter() - start
    bad = non_finite_keys(metrics)
    metrics["diverged"] = bool(bad)
    if bad:
        metrics["non_finite"] = bad
    metrics = finite_or_null(metrics)
    write_json(run_dir / "metrics.json", metrics)
    return run.name, metrics, True


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


def exit_with_parent(parent: int) -> None:
    """Worker initialiser: end this process as soon as its parent is gone (``kill -9`` of the grid)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def run_local(
    runs: list[Run], root: Path, workers: int, progress: bool = True, restart_changed: bool = False
) -> dict[str, dict]:
    """Run the grid in ``workers`` local processes (inline when ``workers == 1``)."""
    from tqdm.auto import tqdm

    results: dict[str, dict] = {}
    bar = tqdm(total=len(runs), desc="runs", disable=not progress)
    if workers == 1:
        for run in runs:
            name, metrics, _ = execute_run(run, str(root), restart_changed=restart_changed)
            results[name] = metrics
            bar.update()
    else:
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // workers)
        context = mp.get_context("spawn")
        watch = {"initializer": exit_with_parent, "initargs": (os.getpid(),)}
        with ProcessPoolExecutor(workers, mp_context=context, **watch) as pool:
            futures = [pool.submit(execute_run, run, str(root), threads, restart_changed) for run in runs]
            for future in as_completed(futures):
                name, metrics, _ = future.result()
                results[name] = metrics
                bar.update()
    bar.close()
    return results


def run_ray(
    runs: list[Run], root: Path, address: str, progress: bool = True, restart_changed: bool = False
) -> dict[str, dict]:
    """Run the grid on a Ray cluster, one task (1 CPU) per run. ``address="local"`` starts one here.

    ``root`` must be on storage that every node sees (a shared file system), since skipping finished
    runs reads their ``metrics.json``, and the project must be installed on every node.
    """
    try:
        import ray
    except ImportError as error:
        raise ImportError("--ray-address needs Ray: pip install '.[sweep]'") from error
    from tqdm.auto import tqdm

    if address == "local":
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(execute_run)
        pending = [remote.remote(run, str(root), 1, restart_changed) for run in runs]
        results: dict[str, dict] = {}
        with tqdm(total=len(runs), desc="runs (ray)", disable=not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                name, metrics, _ = ray.get(done[0])
                results[name] = metrics
                bar.update()
        return results
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------------------------
# Tables and plots
# --------------------------------------------------------------------------------------------

METRICS = {
    "supervised": ("test_loss", "test_accuracy", "best_epoch", "wall_time_s"),
    "tmaze": ("first_optimal_episode", "optimal_at_end", "cpu_time_s", "wall_time_s"),
}
HEADLINE = {"supervised": "test_loss", "tmaze": "first_optimal_episode"}


def mean_std(values: list[float]) -> tuple[float, float] | None:
    """Mean and (population) standard deviation of ``values``; None when there are none."""
    if not values:
        return None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def summarise(runs: list[Run], results: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per group: labels, number of seeds, diverged runs, mean and std of every metric.

    Diverged runs (``"diverged": true``) are counted in ``seeds`` and ``diverged`` but enter no mean;
    ``<metric>_reached`` counts the runs the mean is over.
    """
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = rows.setdefault(
            run.group, {**dict(run.labels), "kind": run.kind, "seeds": 0, "diverged": 0, "_v": {}}
        )
        row["seeds"] += 1
        metrics = results[run.name]
        diverged = bool(metrics.get("diverged")) or bool(non_finite_keys(metrics))
        row["diverged"] += diverged
        for key in METRICS[run.kind]:
            value = metrics.get(key)
            if diverged and key not in ("wall_time_s", "cpu_time_s"):
                value = math.nan
            elif value is None and key == "first_optimal_episode":
                value = math.inf  # never optimal within the budget
            if isinstance(value, (int, float)):
                row["_v"].setdefault(key, []).append(float(value))
    table = []
    for row in rows.values():
        values = row.pop("_v")
        for key, vals in values.items():
            finite = [v for v in vals if math.isfinite(v)]
            row[key] = mean_std(finite) or (math.inf, 0.0)
            row[f"{key}_reached"] = len(finite)
        table.append(row)
    return table


def _fmt(value: tuple[float, float], key: str) -> str:
    mean, std = value
    if not math.isfinite(mean):
        return "not reached"
    if key in ("test_loss",):
        return f"{mean:.3g} ± {std:.2g}"
    if key == "test_accuracy":
        return f"{100 * mean:.1f} ± {100 * std:.1f} %"
    return f"{mean:.0f} ± {std:.0f}" if key != "optimal_at_end" else f"{mean:.2f}"


def markdown_table(table: list[dict[str, Any]], title: str) -> str:
    if not table:
        return f"## {title}\n\n(no runs)\n"
    labels = [
        k
        for k in table[0]
        if k not in ("kind", "seeds", "diverged")
        and not isinstance(table[0][k], tuple)
        and not k.endswith("_reached")
    ]
    metric_keys = [k for k in METRICS[table[0]["kind"]] if k in table[0]]
    header = labels + ["seeds"] + metric_keys
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [str(row[k]) for k in labels] + [str(row["seeds"])]
        for key in metric_keys:
            text = _fmt(row[key], key)
            if key == HEADLINE[row["kind"]]:
                counts = f"{row[f'{key}_reached']}/{row['seeds']}"
                counts += " reached" if key == "first_optimal_episode" else ""
                if row["diverged"]:
                    counts += f", {row['diverged']} diverged"
                text += f" ({counts})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(experiment: str, runs: list[Run], results: dict[str, dict], table: list[dict], path: Path) -> None:
    """Bars (mean +- std over seeds) of the headline metric; curves per epoch for ``vaa-vs-loss``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if experiment == "vaa-vs-loss":
        fig, (ax_loss, ax_vaa) = plt.subplots(1, 2, figsize=(11, 4))
        groups: dict[str, list[dict]] = {}
        for run in runs:
            groups.setdefault(dict(run.labels)["cell"], []).append(results[run.name])
        for (cell, metrics), style in zip(
            groups.items(), itertools.cycle(("-", "--", "-.", ":")), strict=False
        ):
            for ax, key in ((ax_loss, "val_loss"), (ax_vaa, "val_vaa")):
                curves = [m["history"][key] for m in metrics if key in m.get("history", {})]
                if not curves or any(v is None for c in curves for v in c):
                    continue
                n = min(len(c) for c in curves)
                mean = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
                std = [math.sqrt(sum((c[i] - mean[i]) ** 2 for c in curves) / len(curves)) for i in range(n)]
                epochs = metrics[0]["history"].get("epoch", range(n))[:n]  # epoch 0: before training
                ax.plot(epochs, mean, style, label=cell)
                ax.fill_between(
                    epochs,
                    [m - s for m, s in zip(mean, std, strict=True)],
                    [m + s for m, s in zip(mean, std, strict=True)],
                    alpha=0.2,
                )
        ax_loss.set(xlabel="epoch", ylabel="validation loss", yscale="log")
        ax_vaa.set(xlabel="epoch", ylabel="VAA", ylim=(0, 1.05))
        ax_loss.legend()
    else:
        key = {"tmaze": "first_optimal_episode"}.get(
            experiment, "test_accuracy" if "mnist" in experiment else "test_loss"
        )
        size_keys = [
            k
            for k in table[0]
            if k not in ("cell", "version", "kind", "seeds")
            and not isinstance(table[0][k], tuple)
            and not k.endswith("_reached")
        ]
        panels: dict[str, list[dict]] = {}
        for row in table:
            panels.setdefault(", ".join(f"{k}={row[k]}" for k in size_keys) or experiment, []).append(row)
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
        for ax, (panel, rows) in zip(axes[0], panels.items(), strict=True):
            names = [f"{r['cell']}\n{r['version']}" for r in rows]
            means = [r[key][0] if math.isfinite(r[key][0]) else float("nan") for r in rows]
            stds = [r[key][1] for r in rows]
            colors = [
                {"classic": "tab:gray", "warmup": "tab:red", "double": "tab:blue"}[r["version"]] for r in rows
            ]
            ax.bar(range(len(rows)), means, yerr=stds, color=colors, capsize=3)
            if f"{key}_reached" in rows[0]:  # how many seeds the mean is over (runs that never got there)
                for i, r in enumerate(rows):
                    height = means[i] if math.isfinite(means[i]) else 0.0
                    ax.annotate(
                        f"{r[f'{key}_reached']}/{r['seeds']} reached",
                        (i, height),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        fontsize=8,
                    )
            ax.set_xticks(range(len(rows)), names, fontsize=7)
            ax.set(title=panel, ylabel=key.replace("_", " "))
            positive = [m for m in means if math.isfinite(m) and m > 0]
            if key == "test_loss" and positive:  # log scale around the bars that have a value
                tops = [m + s for m, s in zip(means, stds, strict=True) if math.isfinite(m) and m > 0]
                ax.set_yscale("log")
                ax.set_ylim(min(positive) / 3, max(tops) * 3)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("tab:gray", "tab:red", "tab:blue")]
        axes[0][-1].legend(handles, ["classic", "warmup", "double"], fontsize=8)
    fig.suptitle(f"{experiment} (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# A whole grid
# --------------------------------------------------------------------------------------------


def reproduce(
    experiment: str,
    preset: str = "small",
    out: str | Path = "results",
    workers: int = 2,
    ray_address: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    restart_changed: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the grid of ``experiment`` at ``preset`` scale and write its table and plot.

    :return: ``{"runs", "ran", "diverged" (run names), "table"}``.
    :raises RunConflictError: a run directory holds a run with other settings (before anything runs).
    """
    runs = build_grid(experiment, preset)
    if data_dir is not None:
        runs = [
            Run(r.experiment, r.kind, r.labels, r.seed, {**r.config, "data_dir": str(data_dir)})
            if r.config.get("task", "").endswith("mnist")
            else r
            for r in runs
        ]
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    root = Path(out) / experiment / preset
    root.mkdir(parents=True, exist_ok=True)
    states = {run.name: run_state(run, root / run.name) for run in runs}
    changed = [run for run in runs if states[run.name][0] == "changed"]
    if changed and not restart_changed:
        raise conflict_error(changed[0], root / changed[0].name, states[changed[0].name][1])
    finished = sum(state == "finished" for state, _ in states.values())
    print(f"{experiment} ({preset}): {len(runs)} runs, {finished} already finished, in {root}")
    start = time.perf_counter()
    if ray_address:
        results = run_ray(runs, root, ray_address, progress, restart_changed)
    else:
        results = run_local(runs, root, workers, progress, restart_changed)
    command = f"python scripts/reproduce.py {experiment} --preset {preset}"
    if experiment == "horizon":  # two tables (T-Maze, copy) and a plot against L' and T'
        from experiments.horizon import write_horizon_results

        table, text = write_horizon_results(runs, results, root, command)
    else:
        table = summarise(runs, results)
        text = markdown_table(table, f"{experiment}, preset {preset}")
        (root / "results.md").write_text(f"{text}\nCommand: `{command}`\n")
        write_json(root / "results.json", table)
        plot(experiment, runs, results, table, root / "results.png")
    print(text)
    diverged = sorted(name for name, metrics in results.items() if metrics.get("diverged"))
    if diverged:
        print(f"{len(diverged)} of {len(runs)} runs diverged (non-finite metrics): {', '.join(diverged)}")
    seconds = time.perf_counter() - start
    print(f"wall time {seconds:.0f} s; table {root / 'results.md'}; plot {root / 'results.png'}")
    return {"runs": len(runs), "ran": len(runs) - finished, "diverged": diverged, "table": table}


__all__ = [
    "exit_with_parent",
    "mean_std",
    "read_json",
    "write_json",
    "RunConflictError",
    "execute_run",
    "finite_or_null",
    "is_finished",
    "markdown_table",
    "plot",
    "reproduce",
    "run_identity",
    "run_local",
    "run_ray",
    "run_state",
    "summarise",
]
