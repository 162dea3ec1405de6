"""What a grid's results say: one row per group of seeds (mean ± std of each metric), its Markdown table
and its plot, written as ``results.md``, ``results.json`` and ``results.png`` (:func:`write_results`, the
results writer of every experiment of :mod:`experiments.registry` but ``horizon``, which has its own in
:mod:`experiments.horizon_results`). :func:`mean_std`, :func:`table_lines` (the one builder of Markdown
tables) and :func:`format_number` serve both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.presets import Run
from experiments.run_dirs import non_finite_keys, write_json

METRICS = {
    "supervised": ("test_loss", "test_accuracy", "best_epoch", "wall_time_s"),
    "tmaze": ("first_optimal_episode", "optimal_at_end", "cpu_time_s", "wall_time_s"),
}
"""The metrics of a run, by kind, in the order of the table's columns."""
HEADLINE = {"supervised": "test_loss", "tmaze": "first_optimal_episode"}
"""The metric whose cell also counts the seeds the mean is over, by kind."""


VERSION_COLORS = {"classic": "tab:gray", "warmup": "tab:red", "double": "tab:blue", "auxiliary": "tab:green"}
"""The colour of each version in the plots (``auxiliary``: Appendix H's baseline)."""


def mean_std(values: list[float]) -> tuple[float, float] | None:
    """Mean and (population) standard deviation of ``values``; None when there are none."""
    if not values:
        return None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def format_number(value: Any, digits: str = ".3g") -> str:
    """``value`` in the format ``digits``, or "—" when it is not a finite number (missing, NaN)."""
    return f"{value:{digits}}" if isinstance(value, (int, float)) and math.isfinite(value) else "—"


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table (``header``, then one line per row of cells) and an empty line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows] + [""]


def summarise(runs: Sequence[Run], results: dict[str, dict]) -> list[dict[str, Any]]:
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
    """The rows of :func:`summarise` as a Markdown table under the heading ``title``."""
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
    rows = []
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
        rows.append(cells)
    return "\n".join([f"## {title}", "", *table_lines(labels + ["seeds"] + metric_keys, rows)])


def plot_curves(experiment: str, runs: Sequence[Run], results: dict[str, dict], path: Path) -> None:
    """Validation loss and VAA per epoch (mean ± std over seeds), one curve per cell (``vaa-vs-loss``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_vaa) = plt.subplots(1, 2, figsize=(11, 4))
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(dict(run.labels)["cell"], []).append(results[run.name])
    for (cell, metrics), style in zip(groups.items(), itertools.cycle(("-", "--", "-.", ":")), strict=False):
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
    _save(fig, experiment, path)


def plot_bars(experiment: str, table: list[dict[str, Any]], path: Path, metric: str) -> None:
    """Bars (mean ± std over seeds) of ``metric`` for each cell and version, one panel per task size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        means = [r[metric][0] if math.isfinite(r[metric][0]) else float("nan") for r in rows]
        stds = [r[metric][1] for r in rows]
        colors = [VERSION_COLORS.get(r["version"], "tab:olive") for r in rows]
        ax.bar(range(len(rows)), means, yerr=stds, color=colors, capsize=3)
        if f"{metric}_reached" in rows[0]:  # how many seeds the mean is over (runs that never got there)
            for i, r in enumerate(rows):
                height = means[i] if math.isfinite(means[i]) else 0.0
                ax.annotate(
                    f"{r[f'{metric}_reached']}/{r['seeds']} reached",
                    (i, height),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                )
        ax.set_xticks(range(len(rows)), names, fontsize=7)
        ax.set(title=panel, ylabel=metric.replace("_", " "))
        positive = [m for m in means if math.isfinite(m) and m > 0]
        if metric == "test_loss" and positive:  # log scale around the bars that have a value
            tops = [m + s for m, s in zip(means, stds, strict=True) if math.isfinite(m) and m > 0]
            ax.set_yscale("log")
            ax.set_ylim(min(positive) / 3, max(tops) * 3)
    shown = [v for v in VERSION_COLORS if any(r["version"] == v for r in table)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=VERSION_COLORS[v]) for v in shown]
    axes[0][-1].legend(handles, shown, fontsize=8)
    _save(fig, experiment, path)


def _save(fig: Any, experiment: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.suptitle(f"{experiment} (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(
    runs: Sequence[Run],
    results: dict[str, dict],
    root: Path,
    command: str,
    metric: str = "test_loss",
    curves: bool = False,
) -> tuple[list[dict[str, Any]], str]:
    """Write ``results.md`` (the table and the ``command`` that made it), ``results.json`` (the rows) and
    ``results.png`` of a grid under its ``root``, ``<out>/<experiment>/<preset>``; returns the rows and the
    table.

    :param metric: the metric of the plot's bars.
    :param curves: plot the validation loss and VAA per epoch instead (:func:`plot_curves`).
    """
    experiment = runs[0].experiment
    table = summarise(runs, results)
    text = markdown_table(table, f"{experiment}, preset {root.name}")
    (root / "results.md").write_text(f"{text}\nCommand: `{command}`\n")
    write_json(root / "results.json", table)
    if curves:
        plot_curves(experiment, runs, results, root / "results.png")
    else:
        plot_bars(experiment, table, root / "results.png", metric)
    return table, text


__all__ = [
    "HEADLINE",
    "METRICS",
    "format_number",
    "markdown_table",
    "mean_std",
    "plot_bars",
    "plot_curves",
    "summarise",
    "table_lines",
    "write_results",
]
