"""The section of the statistics page (:mod:`experiments.statistics_report`) on temporal horizon
generalisation (:func:`horizon`): the T-Maze part (episodes at L, corridors L' still optimal), the
``train-on`` preset against ``small``, and copy first input at T and T'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from experiments.results import table_lines
from experiments.statistics import Estimate
from experiments.statistics_common import (
    HORIZON_SCORE,
    Report,
    _axes,
    _ci,
    _episodes,
    _grid_budget,
    _group,
    _intervals,
    _save,
    _seeds,
    _shared,
    episodes_to_optimal,
    grid_runs,
    horizon_score,
)


def horizon(report: Report) -> list[str]:
    """Temporal horizon generalisation: the T-Maze part (episodes at L, corridors L' still optimal), the
    ``train-on`` preset against ``small``, and copy first input at T and T'."""
    small = grid_runs(report.results / "horizon" / "small")
    if not small:
        report.left_out.append("Horizon generalisation: no run under `results/horizon/small`")
        return []
    groups = _group([run for run in small if run["task"] == "tmaze"], "length", "cell", "version")
    episodes, scores = {}, {}
    for key, group in groups.items():
        episodes[key] = episodes_to_optimal([run["metrics"] for run in group], _grid_budget(group))
        scores[key] = {run["seed"]: horizon_score(run["metrics"]) for run in group}
    rows, plotted = [], {}
    for (length, cell, version), group in groups.items():
        key, classic = (length, cell, version), (length, cell, "classic")
        estimates = report.estimates({"episodes": episodes[key], "score": scores[key]})
        faster = better = None
        if version != "classic" and classic in groups:
            faster = report.improvement(*_shared(episodes[key], episodes[classic]), lower_is_better=True)
            better = report.improvement(*_shared(scores[key], scores[classic]), lower_is_better=False)
        rows.append(
            [
                str(length),
                cell,
                version,
                _episodes(episodes[key], _grid_budget(group)),
                _ci(estimates["episodes"]),
            ]
            + [", ".join(f"{v:.0f}" for v in scores[key].values()), _ci(estimates["score"], ".1f")]
            + [_ci(faster, ".2f"), _ci(better, ".2f")]
        )
        plotted[f"L={length} {cell} {version}"] = estimates["score"]
    header = ["L", "cell", "version", "episodes to optimal at L", "episodes, IQM [95 % CI]"]
    header += ["horizon score per seed", "score, IQM [95 % CI]", "P(faster than classic)"]
    header += ["P(higher score than classic)"]
    copy_lines, column, copy_estimates = _copy_horizon(
        report, [run for run in small if run["task"] == "copy"]
    )
    fig, axes = _axes(2, width=5.5, height=5.5)
    _intervals(axes[0], plotted, "T-Maze horizon score (IQM)")
    if copy_estimates:
        _intervals(axes[1], copy_estimates, f"copy: test MSE at {column} (IQM)", log=True)
    return [
        "## Temporal horizon generalisation",
        "",
        "Records: `results/horizon/small/*/metrics.json` and `results/horizon/train-on/*/metrics.json` (the "
        "section *Temporal horizon generalisation* of `results/README.md`), seeds 0, 1, 2: with 3 runs the "
        f"IQM is the mean. Horizon score: the number of {HORIZON_SCORE}; a run not optimal at L (never "
        "evaluated at L') scores 0. A run never optimal at L counts as the episode budget (censored: 300+ "
        "at L = 20, 200+ at L = 50). Each warmup or double version is compared with the classic version of "
        "its cell.",
        "",
        "### T-Maze",
        "",
        *table_lines(header, rows),
        *_train_on(report, scores),
        *copy_lines,
        _save(fig, report.out / "horizon.png", "Horizon generalisation"),
        "",
    ]


def _train_on(report: Report, small_scores: Mapping[tuple, dict[int, float]]) -> list[str]:
    runs = grid_runs(report.results / "horizon" / "train-on")
    if not runs:
        report.left_out.append("Horizon generalisation, train-on: no run under `results/horizon/train-on`")
        return []
    rows = []
    for key, group in _group(runs, "length", "cell", "version").items():
        trained, stopped = _shared(
            {run["seed"]: horizon_score(run["metrics"]) for run in group}, small_scores[key]
        )
        estimates = report.estimates({"train-on": trained, "small": stopped})
        ends = {run["seed"]: float(bool(run["metrics"]["optimal_at_end"])) for run in group}
        fraction = report.estimates({"ends": ends}, aggregate="mean")["ends"]
        better = report.improvement(trained, stopped, lower_is_better=False)
        rows.append(
            [
                *map(str, key),
                _seeds(trained),
                _ci(estimates["small"], ".1f"),
                _ci(estimates["train-on"], ".1f"),
            ]
            + [_ci(better, ".2f"), _ci(fraction, ".2f")]
        )
    header = ["L", "cell", "version", "seeds", "horizon score, `small`, IQM [95 % CI]", "`train-on`"]
    header += ["P(`train-on` higher)", "`train-on`: optimal at L at the end [95 % CI]"]
    return [
        "`train-on` against `small` on the same seeds: the network at episode 300 against the one at the "
        "first optimal check (a network not optimal at L at the end scores 0).",
        "",
        *table_lines(header, rows),
    ]


def _copy_horizon(
    report: Report, runs: Sequence[dict[str, Any]]
) -> tuple[list[str], str, dict[str, Estimate]]:
    """The copy part of the horizon grid, and the estimates at the first T' (for the plot) with its name."""
    if not runs:
        report.left_out.append("Horizon generalisation, copy: no copy run under `results/horizon/small`")
        return [], "", {}
    columns = {f"T = {runs[0]['T']}": lambda m: m["test_loss"]}
    for t in [h["T"] for h in runs[0]["metrics"]["horizons"]]:
        columns[f"T' = {t:,}"] = lambda m, t=t: next(h["mse"] for h in m["horizons"] if h["T"] == t)
    groups = _group(runs, "cell", "version")
    mse = {
        (key, column): {run["seed"]: value(run["metrics"]) for run in group}
        for key, group in groups.items()
        for column, value in columns.items()
    }
    first = list(columns)[1]
    rows, pairs, plotted = [], [], {}
    for cell, version in groups:
        estimates = report.estimates({column: mse[(cell, version), column] for column in columns})
        rows.append([cell, version, *(_ci(estimates[column], ".3g") for column in columns)])
        plotted[f"{cell} {version}"] = estimates[first]
        if version != "classic" and (cell, "classic") in groups:
            better = [
                report.improvement(
                    *_shared(mse[(cell, version), c], mse[(cell, "classic"), c]), lower_is_better=True
                )
                for c in columns
            ]
            pairs.append([cell, f"{version} vs classic", *(_ci(b, ".2f") for b in better)])
    return (
        [
            "### Copy first input, trained at T = 50: test MSE at T and T' (lower is better)",
            "",
            *table_lines(["cell", "version", *(f"{column}, IQM [95 % CI]" for column in columns)], rows),
            "The probability that a run of the first version has a lower MSE than a run of the classic one:",
            "",
            *table_lines(["cell", "comparison", *columns], pairs),
        ],
        first,
        plotted,
    )
