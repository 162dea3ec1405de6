"""Reproduce the paper's experiments: one command per figure, at any scale.

    python scripts/reproduce.py copy --preset small            # local worker processes
    python scripts/reproduce.py tmaze --preset paper --ray-address auto   # on a Ray cluster

Each experiment is a grid of runs (cells x versions x task sizes x seeds). Every run writes, in
``<out>/<experiment>/<preset>/<run name>/``, its ``config.json``, its TensorBoard log and, when it
has finished, its ``metrics.json``. A run whose ``metrics.json`` exists is skipped, so re-launching a
grid after a crash or a pre-empted node only runs what is missing. The grid ends with
``results.md`` (mean +- std over seeds), ``results.json`` and ``results.png``.

Experiments (paper figures): ``copy`` (Figs. 11, 17), ``denoising`` (Figs. 12, 18), ``tmaze``
(Fig. 13), ``vaa-vs-loss`` (Figs. 3-4), ``psmnist`` (Figs. 14, 19), ``plsmnist`` (Figs. 15, 20).
Presets: ``paper`` (the paper's sizes, for a GPU cluster), ``small`` (2 CPU cores, well under an
hour per experiment) and ``smoke`` (two tiny runs, for tests).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tyro

EXPERIMENTS = ("copy", "denoising", "tmaze", "vaa-vs-loss", "psmnist", "plsmnist")
PRESETS = ("small", "paper", "smoke")
WARMED_CELLS = ("lstm", "gru", "mgu", "chrono")
# The `small` preset's data, VAA and warmup budget (2 CPU cores): 3,200 training sequences (+ 800 for
# validation), the VAA per epoch with M = 1,000 and I = 2, and a warmup of S = 50 steps (the paper's
# 100 halved: VAA* is near its target k after ~20 steps of the curriculum).
SMALL_DATA = {
    "num_train": 4000,
    "num_test": 1000,
    "vaa_steps": 1000,
    "vaa_iterations": 2,
    "warmup": {"steps": 50},
}
BISTABLE_CELLS = ("brc", "nbrc")


@dataclass(frozen=True)
class Run:
    """One run of a grid: a trainer kind, the labels that identify its group, a seed, a config."""

    experiment: str
    kind: Literal["supervised", "tmaze"]
    labels: tuple[tuple[str, Any], ...]
    seed: int
    config: dict[str, Any] = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        return "__".join([f"{k}={v}" for k, v in self.labels] + [f"seed={self.seed}"])

    @property
    def group(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.labels)


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


def _cell_versions(cells: Iterable[str], versions: Iterable[str], bistable: Iterable[str] = ()):
    """(cell, version) pairs: every version of each warmable cell, ``classic`` of bistable cells."""
    pairs = [(c, v) for c in cells for v in versions]
    return pairs + [(c, "classic") for c in bistable]


def _supervised_grid(
    experiment: str,
    sizes: list[dict[str, Any]],
    pairs: list[tuple[str, str]],
    seeds: int,
    common: dict[str, Any],
) -> list[Run]:
    runs = []
    for size, (cell, version), seed in itertools.product(sizes, pairs, range(seeds)):
        labels = tuple(size.items()) + (("cell", cell), ("version", version))
        config = {**common, **size, "cell": cell, "version": version, "seed": seed}
        runs.append(Run(experiment, "supervised", labels, seed, config))
    return runs


def build_grid(experiment: str, preset: str) -> list[Run]:
    """The runs of ``experiment`` at ``preset`` scale."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}; got {experiment!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    paper = preset == "paper"
    if preset == "smoke":
        common = {"num_train": 64, "num_test": 64, "epochs": 1, "layers": 1, "width": 8, "vaa_steps": 20}
        if experiment == "tmaze":
            return [
                Run(
                    experiment,
                    "tmaze",
                    (("length", 3), ("cell", "gru"), ("version", v)),
                    0,
                    {
                        "length": 3,
                        "cell": "gru",
                        "version": v,
                        "episodes": 20,
                        "seed": 0,
                        "warmup_steps": 5,
                        "buffer_size": 256,
                        "vaa_measure_interval": 0,
                    },
                )
                for v in ("classic", "warmup")
            ]
        task = {
            "copy": "copy",
            "vaa-vs-loss": "copy",
            "denoising": "denoising",
            "psmnist": "psmnist",
            "plsmnist": "plsmnist",
        }[experiment]
        size = {"copy": {"T": 10}, "denoising": {"T": 20, "N": 5}, "psmnist": {}, "plsmnist": {"N": 2}}[task]
        return _supervised_grid(
            experiment,
            [size],
            [("gru", "classic"), ("gru", "warmup")],
            1,
            {**common, "task": task, "warmup": {"steps": 5}},
        )

    if experiment == "copy":
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup", "double"), BISTABLE_CELLS)
        if paper:
            sizes = [{"T": t} for t in (50, 300, 600)]
            common = {"task": "copy", "layers": 1, "width": 128, "epochs": 50}
            return _supervised_grid(experiment, sizes, pairs, 3, common)
        pairs = _cell_versions(("gru", "lstm", "mgu", "chrono"), ("classic", "warmup")) + [
            ("gru", "double"),
            ("nbrc", "classic"),
        ]
        common = {"task": "copy", "layers": 1, "width": 128, "epochs": 10, **SMALL_DATA}
        return _supervised_grid(experiment, [{"T": 50}], pairs, 3, common)
    if experiment == "denoising":
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup", "double"), BISTABLE_CELLS)
        if paper:
            sizes = [{"T": 200, "N": n} for n in (5, 100)]
            common = {"task": "denoising", "layers": 2, "width": 256, "epochs": 50}
            return _supervised_grid(experiment, sizes, pairs, 3, common)
        pairs = _cell_versions(("gru",), ("classic", "warmup", "double"), ("nbrc",))
        common = {
            "task": "denoising",
            "layers": 2,
            "width": 64,
            "epochs": 15,
            **SMALL_DATA,
            "num_train": 8000,
        }
        return _supervised_grid(experiment, [{"T": 60, "N": 30}], pairs, 2, common)
    if experiment == "vaa-vs-loss":
        pairs = [(c, "classic") for c in ("lstm", "chrono", "gru", "mgu", "brc", "nbrc")]
        if paper:
            common = {"task": "copy", "layers": 1, "width": 128, "epochs": 50}
            return _supervised_grid(experiment, [{"T": 50}], pairs, 5, common)
        common = {"task": "copy", "layers": 1, "width": 128, "epochs": 15, **SMALL_DATA}
        return _supervised_grid(experiment, [{"T": 50}], pairs, 3, common)
    if experiment in ("psmnist", "plsmnist"):
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup", "double"), BISTABLE_CELLS)
        sizes = [{}] if experiment == "psmnist" else [{"N": n} for n in (72, 472)]
        if paper:
            common = {"task": experiment, "layers": 2, "width": 256, "epochs": 70}
            return _supervised_grid(experiment, sizes, pairs, 3, common)
        pairs = _cell_versions(("gru",), ("classic", "warmup", "double"))
        sizes = [{}] if experiment == "psmnist" else [{"N": 72}]
        common = {"task": experiment, "layers": 2, "width": 64, "epochs": 5, "vaa_iterations": 0}
        return _supervised_grid(experiment, sizes, pairs, 2, common)
    # tmaze, Fig. 13: episodes to the optimal policy
    if paper:
        pairs = _cell_versions(WARMED_CELLS, ("classic", "warmup"), BISTABLE_CELLS)
        lengths, seeds, extra = (20, 100, 200), 5, {"hidden_size": 256, "episodes": 2000}
    else:  # the paper's lengths with the library's defaults (GRU 2 × 32), as scripts/train_tmaze.py runs them
        pairs = _cell_versions(("gru",), ("classic", "warmup"))
        lengths, seeds, extra = (50, 100, 200), 5, {"stop_when_optimal": True, "vaa_measure_interval": 0}
    budget = {50: 600, 100: 600, 200: 600}  # training episodes at most (small preset)
    seeds_at: dict[int, int] = {}
    return [
        Run(
            experiment,
            "tmaze",
            (("length", length), ("cell", cell), ("version", version)),
            seed,
            {
                "length": length,
                "cell": cell,
                "version": version,
                "seed": seed,
                **({} if paper else {"episodes": budget[length]}),
                **extra,
            },
        )
        for length, (cell, version) in itertools.product(lengths, pairs)
        for seed in range(seeds_at.get(length, seeds))
    ]


# --------------------------------------------------------------------------------------------
# Runners (executed in worker processes: they import the project lazily)
# --------------------------------------------------------------------------------------------


def run_supervised(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    from recurrent_q.multistability import WarmupConfig
    from supervised.train import SupervisedConfig, train

    warmup = WarmupConfig(**config.pop("warmup", {}))
    settings = SupervisedConfig(**config, warmup=warmup, logdir=str(run_dir), resume=resume, progress=False)
    return train(settings).to_dict()


def run_tmaze(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """A T-Maze run has no checkpoint: an interrupted one starts again (``resume`` is ignored)."""
    from recurrent_q.drqn import run_tmaze_experiment

    return run_tmaze_experiment(**config, logdir=str(run_dir))


RUNNERS: dict[str, Callable[[dict[str, Any], Path, bool], dict[str, Any]]] = {
    "supervised": run_supervised,
    "tmaze": run_tmaze,
}


def _same_config(run: Run, run_dir: Path) -> bool:
    """True when ``run_dir`` holds a ``config.json`` equal to ``run``'s config."""
    config_file = run_dir / "config.json"
    return config_file.exists() and json.loads(config_file.read_text()) == {"kind": run.kind, **run.config}


def is_finished(run: Run, root: str | Path) -> bool:
    """True when ``run`` has its ``metrics.json`` under ``root``, written with the same config."""
    run_dir = Path(root) / run.name
    return (run_dir / "metrics.json").exists() and _same_config(run, run_dir)


def execute_run(run: Run, root: str, threads: int = 1) -> tuple[str, dict[str, Any], bool]:
    """Run ``run`` under ``root`` unless :func:`is_finished`. Returns (name, metrics, ran)."""
    run_dir = Path(root) / run.name
    metrics_file = run_dir / "metrics.json"
    same_config = _same_config(run, run_dir)
    if same_config and metrics_file.exists():
        return run.name, json.loads(metrics_file.read_text()), False
    import torch

    torch.set_num_threads(threads)
    if run_dir.exists() and not same_config:  # a run of an older grid definition: start afresh
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"kind": run.kind, **run.config}, indent=2))
    start = time.perf_counter()
    # an interrupted attempt of the same run continues from its last checkpoint where the trainer has one
    metrics = RUNNERS[run.kind](dict(run.config), run_dir, same_config)
    metrics["wall_time_s"] = time.perf_counter() - start
    tmp = metrics_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, default=float))
    tmp.replace(metrics_file)  # atomic: a crash never leaves a half-written metrics.json
    return run.name, metrics, True


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


def run_local(runs: list[Run], root: Path, workers: int, progress: bool = True) -> dict[str, dict]:
    """Run the grid in ``workers`` local processes (inline when ``workers == 1``)."""
    from tqdm.auto import tqdm

    results: dict[str, dict] = {}
    bar = tqdm(total=len(runs), desc="runs", disable=not progress)
    if workers == 1:
        for run in runs:
            name, metrics, _ = execute_run(run, str(root))
            results[name] = metrics
            bar.update()
    else:
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(execute_run, run, str(root), threads) for run in runs]
            for future in as_completed(futures):
                name, metrics, _ = future.result()
                results[name] = metrics
                bar.update()
    bar.close()
    return results


def run_ray(runs: list[Run], root: Path, address: str, progress: bool = True) -> dict[str, dict]:
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
        pending = [remote.remote(run, str(root)) for run in runs]
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


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return mean, math.sqrt(var)


def summarise(runs: list[Run], results: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per group: labels, number of seeds, mean and std of every metric."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = rows.setdefault(run.group, {**dict(run.labels), "kind": run.kind, "seeds": 0, "_v": {}})
        row["seeds"] += 1
        metrics = results[run.name]
        for key in METRICS[run.kind]:
            value = metrics.get(key)
            if value is None and key == "first_optimal_episode":
                value = math.inf  # never optimal within the budget
            if isinstance(value, (int, float)):
                row["_v"].setdefault(key, []).append(float(value))
    table = []
    for row in rows.values():
        values = row.pop("_v")
        for key, vals in values.items():
            finite = [v for v in vals if math.isfinite(v)]
            row[key] = _mean_std(finite) if finite else (math.inf, 0.0)
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
        if k not in ("kind", "seeds") and not isinstance(table[0][k], tuple) and not k.endswith("_reached")
    ]
    metric_keys = [k for k in METRICS[table[0]["kind"]] if k in table[0]]
    header = labels + ["seeds"] + metric_keys
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [str(row[k]) for k in labels] + [str(row["seeds"])]
        for key in metric_keys:
            text = _fmt(row[key], key)
            if key == "first_optimal_episode":
                text += f" ({row[f'{key}_reached']}/{row['seeds']} reached)"
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
            if key == "test_loss":
                ax.set_yscale("log")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("tab:gray", "tab:red", "tab:blue")]
        axes[0][-1].legend(handles, ["classic", "warmup", "double"], fontsize=8)
    fig.suptitle(f"{experiment} (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@dataclass
class Args:
    experiment: tyro.conf.Positional[
        Literal["copy", "denoising", "tmaze", "vaa-vs-loss", "psmnist", "plsmnist"]
    ]
    """which paper figure to reproduce"""
    preset: Literal["small", "paper", "smoke"] = "small"
    """grid scale: `small` (2 CPU cores), `paper` (the paper's sizes), `smoke` (two tiny runs)"""
    out: str = "results"
    """root folder; runs go to <out>/<experiment>/<preset>/<run name>/"""
    workers: int = 2
    """local worker processes (1 = run inline)"""
    ray_address: str | None = None
    """run on Ray instead: a cluster address (`auto`, `ray://host:10001`) or `local`"""
    data_dir: str | None = None
    """MNIST IDX folder for psmnist/plsmnist"""
    progress: bool = True
    """show a progress bar over runs"""


def reproduce(args: Args) -> dict[str, Any]:
    """Run (or resume) a grid and write its table and plot. Returns the summary."""
    runs = build_grid(args.experiment, args.preset)
    if args.data_dir is not None:
        runs = [
            Run(r.experiment, r.kind, r.labels, r.seed, {**r.config, "data_dir": args.data_dir})
            if r.config.get("task", "").endswith("mnist")
            else r
            for r in runs
        ]
    if args.workers < 1:
        raise ValueError(f"workers must be >= 1, got {args.workers}")
    root = Path(args.out) / args.experiment / args.preset
    root.mkdir(parents=True, exist_ok=True)
    finished = sum(is_finished(r, root) for r in runs)
    print(f"{args.experiment} ({args.preset}): {len(runs)} runs, {finished} already finished, in {root}")
    start = time.perf_counter()
    if args.ray_address:
        results = run_ray(runs, root, args.ray_address, args.progress)
    else:
        results = run_local(runs, root, args.workers, args.progress)
    table = summarise(runs, results)
    title = f"{args.experiment}, preset {args.preset}"
    text = markdown_table(table, title)
    command = f"python scripts/reproduce.py {args.experiment} --preset {args.preset}"
    (root / "results.md").write_text(f"{text}\nCommand: `{command}`\n")
    (root / "results.json").write_text(json.dumps(table, indent=2, default=str))
    plot(args.experiment, runs, results, table, root / "results.png")
    print(text)
    seconds = time.perf_counter() - start
    print(f"wall time {seconds:.0f} s; table {root / 'results.md'}; plot {root / 'results.png'}")
    return {"runs": len(runs), "ran": len(runs) - finished, "table": table}


if __name__ == "__main__":
    reproduce(tyro.cli(Args))
