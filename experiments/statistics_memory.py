"""The section of the statistics page (:mod:`experiments.statistics_report`) on the memory suites
(:func:`memory_suites`): POPGym's MMER and the final deterministic return of each method on each task of
``results/memory-suites/<preset>``, and what the warmup changes (DRQN with against without it, RecurrentPPO
with ``WarmupCallback`` against without), task by task and over all tasks."""

from __future__ import annotations

from experiments.memory_presets import MEMORY_METHODS
from experiments.results import table_lines
from experiments.statistics import compare
from experiments.statistics_common import Report, _axes, _ci, _group, _intervals, _save, _shared, grid_runs

PAIRS = (("drqn-warmup", "drqn"), ("rppo-warmup", "rppo"))
"""The comparisons of the section: each method with the warmup against the same method without it."""


def memory_suites(report: Report, preset: str = "small") -> list[str]:
    """MMER and final return, IQM with its interval, per task and method; P(the warmed-up method has the
    higher MMER) per task and over the tasks (rliable's tasks, on the seeds both methods have)."""
    root = report.results / "memory-suites" / preset
    runs = [run for run in grid_runs(root) if not run["metrics"].get("diverged")]
    if not runs:
        report.left_out.append(f"memory suites: no run under `results/memory-suites/{preset}`")
        return []
    order = {method: i for i, method in enumerate(MEMORY_METHODS)}
    mmer: dict[str, dict[str, dict[int, float]]] = {}
    final: dict[str, dict[str, dict[int, float]]] = {}
    for (task, method), group in _group(runs, "task", "method").items():
        mmer.setdefault(task, {})[method] = {run["seed"]: run["metrics"]["mmer"] for run in group}
        final.setdefault(task, {})[method] = {run["seed"]: run["metrics"]["final_return"] for run in group}
    rows, panels = [], {}
    for task, methods in mmer.items():
        methods = dict(sorted(methods.items(), key=lambda item: order.get(item[0], len(order))))
        estimates = report.estimates(methods)
        finals = report.estimates(final[task])
        better = {
            x: report.improvement(*_shared(methods[x], methods[y]), lower_is_better=False)
            for x, y in PAIRS
            if x in methods and y in methods
        }
        for method, scores in methods.items():
            per_seed = ", ".join(f"{v:.3f}" for v in scores.values())
            rows.append(
                [task, method, per_seed, _ci(estimates[method], ".3f"), _ci(finals[method], ".3f")]
                + [_ci(better.get(method), ".2f")]
            )
        panels[task] = estimates
    for x, y in PAIRS:  # over the tasks that have both methods, on the seeds every one of them has
        tasks = [task for task, methods in mmer.items() if x in methods and y in methods]
        if len(tasks) < 2:
            continue
        seeds = sorted(set.intersection(*(set(mmer[task][m]) for task in tasks for m in (x, y))))
        pooled = {m: {seed: [mmer[task][m][seed] for task in tasks] for seed in seeds} for m in (x, y)}
        both = compare(pooled, [(x, y)], lower_is_better=False, **report.options)
        label = f"all {len(tasks)} tasks"
        rows.append([label, x, "", _ci(both.estimates[x], ".3f"), "", _ci(both.improvement[x, y], ".2f")])
        rows.append([label, y, "", _ci(both.estimates[y], ".3f"), "", ""])
    fig, axes = _axes(len(panels), width=3.8, height=3.4)
    for ax, (task, estimates) in zip(axes, panels.items(), strict=True):
        _intervals(ax, estimates, f"{task}: MMER (IQM)")
    header = ["task", "method", "MMER per seed", "MMER, IQM [95 % CI]", "final return, IQM [95 % CI]"]
    header.append("P(higher MMER than without warmup)")
    return [
        "## Memory suites: POPGym's MMER (higher is better)",
        "",
        f"Records: `results/memory-suites/{preset}/*/metrics.json` (`mm-reproduce memory-suites --preset "
        f"{preset}`, the section *Memory suites* of `results/README.md`). MMER: the maximum over training "
        "of the mean return of the training episodes (POPGym's metric, returns in [-1, 1]; MiniGrid's in "
        "[0, 1]); final return: the mean of the deterministic evaluation episodes at the end. With 3 seeds "
        "the IQM is the mean. *all tasks*: the IQM over every (seed, task) score and the probability of "
        "improvement averaged over the tasks (rliable's convention), on the seeds the tasks share.",
        "",
        *table_lines(header, rows),
        _save(fig, report.out / "memory-suites.png", "Memory suites, MMER"),
        "",
    ]
