"""The section of the statistics page (:mod:`experiments.statistics_report`) on the supervised grids
(:func:`supervised`): the test MSE of ``copy``, ``vaa-vs-loss`` and ``denoising``, each version against the
classic version of its cell."""

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


def supervised(
    report: Report, experiments: Sequence[str] = ("copy", "vaa-vs-loss", "denoising")
) -> list[str]:
    """Test MSE of the supervised grids, each version against the classic version of its cell, then over
    every cell that has both (the cells as tasks)."""
    lines, panels = [], {}
    for experiment in experiments:
        runs = grid_runs(report.results / experiment / "small")
        diverged = [
            f"{r['cell']} {r['version']} seed {r['seed']}" for r in runs if r["metrics"].get("diverged")
        ]
        if diverged:
            report.left_out.append(f"{experiment}: diverged runs, without a test MSE ({', '.join(diverged)})")
        runs = [run for run in runs if not run["metrics"].get("diverged")]
        if not runs:
            report.left_out.append(f"{experiment}: no run under `results/{experiment}/small`")
            continue
        mse = {
            key: {run["seed"]: run["metrics"]["test_loss"] for run in group}
            for key, group in _group(runs, "cell", "version").items()
        }
        estimates = report.estimates({f"{cell} {version}": scores for (cell, version), scores in mse.items()})
        rows = []
        for (cell, version), scores in mse.items():
            better = None
            if version != "classic" and (cell, "classic") in mse:
                better = report.improvement(*_shared(scores, mse[cell, "classic"]), lower_is_better=True)
            per_seed = ", ".join(f"{v:.3g}" for v in scores.values())
            rows.append(
                [cell, version, per_seed, _ci(estimates[f"{cell} {version}"], ".3g"), _ci(better, ".2f")]
            )
        for version in sorted({v for _, v in mse} - {"classic"}):
            cells = [c for c, v in mse if v == version and (c, "classic") in mse]
            if len(cells) < 2:
                continue
            pooled = {}
            for name in (version, "classic"):
                seeds = sorted(set.intersection(*(set(mse[cell, name]) for cell in cells)))
                pooled[name] = {seed: [mse[cell, name][seed] for cell in cells] for seed in seeds}
            both = compare(pooled, [(version, "classic")], lower_is_better=True, **report.options)
            label = f"all cells ({', '.join(cells)})"
            rows.append([label, version, "", _ci(both.estimates[version], ".3g")])
            rows[-1].append(_ci(both.improvement[version, "classic"], ".2f"))
            rows.append([label, "classic", "", _ci(both.estimates["classic"], ".3g"), ""])
        header = ["cell", "version", "test MSE per seed", "IQM [95 % CI]", "P(lower MSE than classic)"]
        lines += [f"### {experiment} (`results/{experiment}/small`)", "", *table_lines(header, rows)]
        panels[experiment] = estimates
    if not panels:
        return []
    fig, axes = _axes(len(panels), width=4.8, height=4.2)
    for ax, (experiment, estimates) in zip(axes, panels.items(), strict=True):
        _intervals(ax, estimates, f"{experiment}: test MSE (IQM)", log=True)
    return [
        "## Supervised benchmarks: test MSE (lower is better)",
        "",
        "Records: `results/<experiment>/small/*/metrics.json` (`mm-reproduce <experiment> --preset small`, "
        "the sections *Copy first input*, *VAA vs loss* and *Denoising* of `results/README.md`). With 2 or 3 "
        "seeds the IQM is the mean. *all cells*: every cell with both versions, the cells as tasks (runs "
        "resampled within each cell, the probability averaged over the cells).",
        "",
        *lines,
        _save(fig, report.out / "supervised.png", "Supervised benchmarks"),
        "",
    ]
