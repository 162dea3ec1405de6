"""The section of the statistics page (:mod:`experiments.statistics_report`) on the supervised grids
(:func:`supervised`): the test MSE of ``copy``, ``vaa-vs-loss`` and ``denoising`` (presets ``small`` and
``long``) and the test accuracy of ``psmnist`` and ``plsmnist``, each version against the classic version of
its cell at the same task size."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.results import table_lines
from experiments.statistics import compare
from experiments.statistics_common import (
    Report,
    _axes,
    _ci,
    _group,
    _intervals,
    _save,
    _shared,
    grid_runs,
)

SUPERVISED_GRIDS = (
    ("copy", "small"),
    ("vaa-vs-loss", "small"),
    ("denoising", "small"),
    ("copy", "long"),
    ("denoising", "long"),
    ("psmnist", "small"),
    ("plsmnist", "small"),
)
"""The (experiment, preset) grids of the section, in its order; a grid without runs is named as left out."""
SIZE_KEYS = ("T", "N")
"""The task sizes of a supervised run's ``config.json`` (copy's T, denoising's T and N, plsMNIST's N)."""
ACCURACY_TASKS = ("psmnist", "plsmnist")
"""Classification tasks, scored by test accuracy (higher is better); the others by test MSE."""


def _size(run: dict) -> str:
    return ", ".join(f"{key} = {run[key]}" for key in SIZE_KEYS if run.get(key) is not None)


def supervised(report: Report, grids: Sequence[tuple[str, str]] = SUPERVISED_GRIDS) -> list[str]:
    """The test score of each supervised grid of ``grids``, each version against the classic version of its
    cell at the same size, then over every cell that has both (the cells as tasks)."""
    lines, panels = [], {}
    for experiment, preset in grids:
        root = f"results/{experiment}/{preset}"
        runs = grid_runs(report.results / experiment / preset)
        diverged = [
            f"{r['cell']} {r['version']} seed {r['seed']}" for r in runs if r["metrics"].get("diverged")
        ]
        if diverged:
            named = ", ".join(diverged)
            report.left_out.append(f"{experiment} ({preset}): diverged runs, without a test score ({named})")
        runs = [run for run in runs if not run["metrics"].get("diverged")]
        if not runs:
            report.left_out.append(f"{experiment} ({preset}): no run under `{root}`")
            continue
        accuracy = experiment in ACCURACY_TASKS
        metric, lower = ("test_accuracy", False) if accuracy else ("test_loss", True)
        score_name = "test accuracy" if accuracy else "test MSE"
        for (size,), sized in _group([{**run, "size": _size(run)} for run in runs], "size").items():
            scores = {
                key: {run["seed"]: run["metrics"][metric] for run in group}
                for key, group in _group(sized, "cell", "version").items()
            }
            estimates = report.estimates({f"{c} {v}": s for (c, v), s in scores.items()})
            rows = []
            for (cell, version), per_seed in scores.items():
                better = None
                if version != "classic" and (cell, "classic") in scores:
                    better = report.improvement(*_shared(per_seed, scores[cell, "classic"]), lower)
                values = ", ".join(f"{v:.3g}" for v in per_seed.values())
                rows.append([cell, version, values, _ci(estimates[f"{cell} {version}"], ".3g")])
                rows[-1].append(_ci(better, ".2f"))
            for version in sorted({v for _, v in scores} - {"classic"}):
                cells = [c for c, v in scores if v == version and (c, "classic") in scores]
                if len(cells) < 2:
                    continue
                # the seeds every cell has in both versions (a grid stopped before its end may lack some)
                seeds = sorted(
                    set.intersection(*(set(scores[c, n]) for c in cells for n in (version, "classic")))
                )
                if not seeds:
                    continue
                pooled = {
                    n: {seed: [scores[c, n][seed] for c in cells] for seed in seeds}
                    for n in (version, "classic")
                }
                both = compare(pooled, [(version, "classic")], lower_is_better=lower, **report.options)
                label = f"all cells ({', '.join(cells)})"
                rows.append([label, version, "", _ci(both.estimates[version], ".3g")])
                rows[-1].append(_ci(both.improvement[version, "classic"], ".2f"))
                rows.append([label, "classic", "", _ci(both.estimates["classic"], ".3g"), ""])
            better_than = f"P({'higher' if accuracy else 'lower'} {score_name[5:]} than classic)"
            header = ["cell", "version", f"{score_name} per seed", "IQM [95 % CI]", better_than]
            title = f"{experiment} {preset}{f', {size}' if size else ''}"
            lines += [f"### {title} (`{root}`)", "", *table_lines(header, rows), ""]
            panels[title] = (estimates, score_name, not accuracy)
    if not panels:
        return []
    fig, axes = _axes(len(panels), width=4.8, height=4.2, columns=3)
    for ax, (title, (estimates, score_name, log)) in zip(axes, panels.items(), strict=True):
        _intervals(ax, estimates, f"{title}: {score_name} (IQM)", log=log)
    return [
        "## Supervised benchmarks: test MSE (lower is better) and accuracy (higher is better)",
        "",
        "Records: `results/<experiment>/<preset>/*/metrics.json` (`mm-reproduce <experiment> --preset "
        "<preset>`, the sections *Copy first input*, *VAA vs loss*, *Denoising* and *Permuted (line-)"
        "sequential MNIST* of `results/README.md`). With 2 or 3 seeds the IQM is the mean. Each version is "
        "compared with the classic version of its cell at the same task size. *all cells*: every cell with "
        "both versions, the cells as tasks (runs resampled within each cell, the probability averaged over "
        "the cells).",
        "",
        *lines,
        _save(fig, report.out / "supervised.png", "Supervised benchmarks"),
        "",
    ]
