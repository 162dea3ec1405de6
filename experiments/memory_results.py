"""The results writer of the ``memory-suites`` experiment: ``results.md`` (one table, task × method, of the
MMER, mean ± std over seeds, beside POPGym's published GRU figure where there is one; then the final
deterministic returns), ``results.json`` (the rows) and ``results.png`` (the MMER bars of each task).

The MMER is POPGym's metric (Morad et al., "POPGym: Benchmarking Partially Observable Reinforcement
Learning", ICLR 2023, arXiv 2303.01859): the maximum over training of the mean episodic return, POPGym's
returns being normalised to [-1, 1] by the envs themselves (:mod:`experiments.memory_suites` says how it is
measured here). With 3 seeds the interquartile mean is the plain mean (it drops ⌊n/4⌋ = 0 runs at each end).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.memory_presets import MEMORY_METHODS
from experiments.presets import Run
from experiments.results import mean_std, table_lines
from experiments.run_dirs import write_json

PUBLISHED_GRU_MMER: dict[str, tuple[float, str]] = {}
"""POPGym's published MMER of its GRU baseline (PPO + GRU, RLlib, 15M env steps), by task, with where
it comes from. Empty: the per-task figures (the paper's appendix) could not be retrieved from the sources
available when the experiment was written, so the table says "not found" rather than invent them; add
``"RepeatPreviousEasy": (value, "Morad et al. 2023, Table …")`` once checked against the paper."""


def summarise_memory(runs: Sequence[Run], results: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per (task, method): seeds, diverged runs, MMER and final return (mean, std) over the runs
    that did not diverge, the env steps of the runs, and the mean CPU time of a run."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        labels = dict(run.labels)
        row = rows.setdefault(
            (labels["task"], labels["method"]),
            {"task": labels["task"], "method": labels["method"], "seeds": 0, "diverged": 0, "_v": {}},
        )
        metrics = results[run.name]
        row["seeds"] += 1
        row["diverged"] += bool(metrics.get("diverged"))
        row["budget"] = metrics.get("budget", run.config.get("timesteps"))
        row["eval_episodes"] = run.config.get("eval_episodes")
        for key in ("mmer", "final_return", "timesteps", "cpu_time_s"):
            value = metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value) and not metrics.get("diverged"):
                row["_v"].setdefault(key, []).append(float(value))
    table = []
    for row in rows.values():
        values = row.pop("_v")
        for key in ("mmer", "final_return", "timesteps", "cpu_time_s"):
            row[key] = mean_std(values.get(key, []))
        row["runs"] = len(values.get("mmer", []))
        table.append(row)
    return table


def _cell(value: tuple[float, float] | None) -> str:
    return "—" if value is None else f"{value[0]:.3f} ± {value[1]:.3f}"


def memory_markdown(table: list[dict[str, Any]], title: str) -> str:
    """The MMER table (task × method, with the published GRU column) and the final-return table."""
    tasks = list(dict.fromkeys(row["task"] for row in table))
    methods = [m for m in MEMORY_METHODS if any(row["method"] == m for row in table)]
    by = {(row["task"], row["method"]): row for row in table}
    seeds = sorted({row["seeds"] for row in table})
    budgets = sorted({row["budget"] for row in table if row["budget"] is not None})
    episodes = sorted({row["eval_episodes"] for row in table if row["eval_episodes"] is not None})

    def cells(task: str, key: str) -> list[str]:
        out = []
        for method in methods:
            row = by.get((task, method))
            text = "—" if row is None else _cell(row[key])
            if row is not None and row["diverged"]:
                text += f" ({row['diverged']} diverged)"
            out.append(text)
        return out

    mmer_rows = [
        [
            task,
            *cells(task, "mmer"),
            f"{PUBLISHED_GRU_MMER[task][0]:.3f}" if task in PUBLISHED_GRU_MMER else "not found",
        ]
        for task in tasks
    ]
    final_rows = [[task, *cells(task, "final_return")] for task in tasks]

    def cpu(task: str, method: str) -> str:
        value = by[(task, method)]["cpu_time_s"] if (task, method) in by else None
        return "—" if value is None else f"{value[0]:.0f} ± {value[1]:.0f}"

    cpu_rows = [[task, *(cpu(task, m) for m in methods)] for task in tasks]
    sources = sorted({source for _, source in PUBLISHED_GRU_MMER.values()})
    lines = [
        f"## {title}",
        "",
        f"MMER (max over training of the mean episodic return of the training episodes, POPGym's metric), "
        f"mean ± std over seeds (seeds per cell: {'/'.join(map(str, seeds))}); budget of every run: "
        f"{', '.join(f'{b:,}' for b in budgets)} env steps (each run stops at the first episode or "
        f"rollout end past it).",
        "",
        *table_lines(["task", *methods, "POPGym GRU (published MMER)"], mmer_rows),
        "Published GRU: "
        + (
            "; ".join(sources)
            if sources
            else "not found (see `experiments.memory_results.PUBLISHED_GRU_MMER`)"
        )
        + ". POPGym's GRU is PPO + GRU in RLlib trained for far more env steps; MiniGrid is not in POPGym.",
        "",
        f"Final return: the mean return of {'/'.join(map(str, episodes))} deterministic evaluation episodes "
        f"after training, mean ± std over seeds.",
        "",
        *table_lines(["task", *methods], final_rows),
        "CPU time of a run (s), mean ± std over seeds.",
        "",
        *table_lines(["task", *methods], cpu_rows),
    ]
    return "\n".join(lines)


def plot_memory(table: list[dict[str, Any]], path: Path, title: str) -> None:
    """Bars of the MMER (mean ± std over seeds) of each method, one panel per task; the published GRU
    figure as a dashed line where there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(row["task"] for row in table))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.6), squeeze=False)
    colors = {"drqn": "tab:gray", "drqn-warmup": "tab:red", "rppo": "tab:blue", "rppo-warmup": "tab:purple"}
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = [row for m in MEMORY_METHODS for row in table if row["task"] == task and row["method"] == m]
        means = [row["mmer"][0] if row["mmer"] else float("nan") for row in rows]
        stds = [row["mmer"][1] if row["mmer"] else 0.0 for row in rows]
        ax.bar(range(len(rows)), means, yerr=stds, capsize=3, color=[colors[row["method"]] for row in rows])
        ax.set_xticks(range(len(rows)), [row["method"] for row in rows], rotation=30, fontsize=7)
        if task in PUBLISHED_GRU_MMER:
            ax.axhline(PUBLISHED_GRU_MMER[task][0], ls="--", color="black", lw=1, label="POPGym GRU")
            ax.legend(fontsize=7)
        ax.set(title=task, ylabel="MMER")
    fig.suptitle(f"{title} (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_memory_results(
    runs: Sequence[Run], results: dict[str, dict], root: Path, command: str
) -> tuple[list[dict[str, Any]], str]:
    """Write ``results.md``, ``results.json`` and ``results.png`` of a ``memory-suites`` grid under its
    ``root``; returns the rows and the Markdown text."""
    table = summarise_memory(runs, results)
    title = f"memory-suites, preset {root.name}"
    text = memory_markdown(table, title)
    (root / "results.md").write_text(f"{text}\nCommand: `{command}`\n")
    write_json(root / "results.json", table)
    plot_memory(table, root / "results.png", title)
    return table, text


__all__ = [
    "PUBLISHED_GRU_MMER",
    "memory_markdown",
    "plot_memory",
    "summarise_memory",
    "write_memory_results",
]
