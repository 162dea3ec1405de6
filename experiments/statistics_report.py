"""The statistics of every multi-seed comparison whose per-seed records are committed under ``results/``,
computed by :mod:`experiments.statistics` from those records alone (nothing is trained): one Markdown page
of tables and one PNG per section, written by :func:`write_statistics` (the command ``mm-stats``).

Sections, each read from its records:

- T-Maze, Fig. 13 (``tmaze/small/*/metrics.json``): episodes to the optimal policy, warmup against classic;
- T-Maze on reporting seeds (``tmaze-reporting/*.jsonl``): the runner's defaults at L = 20, 50, 100
  (2 × 32; ``-h64``: 2 × 64), and its two comparisons on the shared seeds (warmup against classic,
  C = 2 against C = 20);
- DRQN ablation (``drqn-ablation/*.jsonl``, the tables of ``docs/drqn-parity.md``): every variant against
  round 3's defaults (``S-none``) at the same length;
- horizon generalisation (``horizon/small``, ``horizon/train-on``): T-Maze episodes at L and the number of
  longer corridors L' where the policy is still optimal, copy first input's MSE at T and T';
- supervised grids (``copy/small``, ``vaa-vs-loss/small``, ``denoising/small``): test MSE.

Conventions (also printed on the page): a T-Maze run that never reached the optimal policy counts as
reaching it at the episode budget (censored, never dropped); "final policy optimal" and other yes/no
outcomes are fractions (the mean of 0/1 runs: an IQM of 0s and 1s would say little); methods are compared
on the seeds they share.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.results import table_lines
from experiments.run_dirs import read_json
from experiments.statistics import (
    CONFIDENCE,
    REPS,
    Estimate,
    censor,
    compare,
    interval_estimates,
    performance_profiles,
    probability_of_improvement,
)

COLORS = {"classic": "tab:gray", "warmup": "tab:red", "double": "tab:blue"}
HORIZON_SCORE = "corridors L' ∈ {50, 100, 10³, 10⁴, 10⁵} where the policy is still optimal (0-5)"


class Report:
    """The settings of the bootstraps, and what was left out (named on the page)."""

    def __init__(self, results: Path, out: Path, reps: int = REPS, seed: int = 0) -> None:
        self.results, self.out, self.options = results, out, {"reps": reps, "seed": seed}
        self.left_out: list[str] = []

    def estimates(self, scores: Mapping[str, Any], aggregate: str = "iqm") -> dict[str, Estimate]:
        """Each method's IQM (or ``aggregate``) with its interval."""
        return interval_estimates(scores, aggregate=aggregate, **self.options)

    def improvement(self, x: Any, y: Any, lower_is_better: bool) -> Estimate:
        """P(a run of x is better than a run of y), with its interval."""
        return probability_of_improvement(x, y, lower_is_better=lower_is_better, **self.options)


# ---- reading the records ----


def grid_runs(root: Path) -> list[dict[str, Any]]:
    """Each finished run of a grid's ``root``: its ``config.json`` and its ``metrics.json`` (``metrics``)."""
    return [
        {**read_json(config), "metrics": read_json(config.with_name("metrics.json"))}
        for config in sorted(root.glob("*/config.json"))
        if config.with_name("metrics.json").is_file()
    ]


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file, one per line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def episodes_to_optimal(records: Sequence[dict[str, Any]], budget: float) -> dict[int, float]:
    """Seed → first optimal episode of T-Maze ``records``, censored at the episode ``budget`` when never
    reached."""
    ordered = sorted(records, key=lambda r: r["seed"])
    censored = censor([r["first_optimal_episode"] for r in ordered], budget)
    return {r["seed"]: float(v) for r, v in zip(ordered, censored, strict=True)}


def trained_budget(records: Sequence[dict[str, Any]]) -> float:
    """The episode budget of JSON-lines T-Maze ``records`` that trained their whole budget
    (``--no-stop-when-optimal``: their ``episodes``), the same for all of them."""
    if any(r.get("stop_when_optimal", True) for r in records):
        raise ValueError("records of runs that stopped at the first optimal check do not hold their budget")
    budgets = {r["episodes"] for r in records}
    if len(budgets) != 1:
        raise ValueError(f"records with different episode budgets {sorted(budgets)} cannot be compared")
    return float(budgets.pop())


def horizon_score(metrics: dict[str, Any]) -> float:
    """How many corridors L' the policy at the end of training is optimal at (0 when it was not optimal at L,
    so never evaluated at L')."""
    return float(sum(bool(h["optimal"]) for h in metrics.get("horizons") or []))


def _group(runs: Sequence[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(run[key] for key in keys), []).append(run)
    return dict(sorted(groups.items(), key=lambda item: [(isinstance(v, str), v) for v in item[0]]))


def _shared(*scores: Mapping[int, Any]) -> list[dict[int, Any]]:
    seeds = set.intersection(*(set(s) for s in scores))
    return [{seed: s[seed] for seed in sorted(seeds)} for s in scores]


# ---- formatting ----


def _ci(estimate: Estimate | None, digits: str = ".0f") -> str:
    if estimate is None:
        return ""
    value, low, high = (format(v, digits) for v in estimate)
    return f"{value} [{low}, {high}]"


def _seeds(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]} ({len(seeds)})"
    return ", ".join(map(str, seeds))


def _episodes(scores: Mapping[int, float], budget: float) -> str:
    return ", ".join(f"{v:.0f}+" if v == budget else f"{v:.0f}" for v in scores.values())


def _reached(scores: Mapping[int, float], budget: float) -> str:
    return f"{sum(v < budget for v in scores.values())}/{len(scores)}"


def _fraction(records: Sequence[dict[str, Any]], key: str) -> dict[int, float]:
    return {r["seed"]: float(bool(r[key])) for r in sorted(records, key=lambda r: r["seed"])}


# ---- plots ----


def _axes(panels: int, width: float = 4.6, height: float = 3.6) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False)
    return fig, list(axes[0])


def _intervals(ax: Any, estimates: Mapping[str, Estimate], xlabel: str, log: bool = False) -> None:
    """One horizontal bar per method, from the interval's low to high end, the estimate marked on it (a
    log scale, when ``log``, only over more than a decade)."""
    names = list(estimates)
    for i, name in enumerate(names):
        estimate = estimates[name]
        color = next((c for version, c in COLORS.items() if version in name), "tab:green")
        y = len(names) - 1 - i
        ax.plot([estimate.low, estimate.high], [y, y], lw=7, alpha=0.45, color=color, solid_capstyle="butt")
        ax.plot([estimate.value], [y], "|", color="black", ms=14, mew=2)
    ax.set_yticks(range(len(names)), names[::-1], fontsize=7)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel(xlabel, fontsize=8)
    ends = [end for estimate in estimates.values() for end in (estimate.low, estimate.high)]
    if log and min(ends) > 0 and max(ends) > 10 * min(ends):
        ax.set_xscale("log")
    ax.grid(axis="x", alpha=0.3)


def _profiles(ax: Any, profiles: Mapping[str, Any], xlabel: str, title: str) -> None:
    """Each method's profile as steps, its pointwise interval as a band (one color per version if unique)."""
    colors = [next((c for version, c in COLORS.items() if version in name), None) for name in profiles]
    if len(set(colors)) < len(colors):
        colors = [f"C{i}" for i in range(len(colors))]
    for (name, profile), color in zip(profiles.items(), colors, strict=True):
        ax.step(profile.taus, profile.values, where="post", label=name, color=color)
        ax.fill_between(profile.taus, profile.low, profile.high, step="post", alpha=0.2, color=color)
    ax.set(xlabel=xlabel, ylabel="fraction of runs", ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=7)


def _save(fig: Any, path: Path, title: str) -> str:
    import matplotlib.pyplot as plt

    fig.suptitle(f"{title}: {CONFIDENCE:.0%} stratified bootstrap CIs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"![{path.stem}]({path.name})"


# ---- the sections ----


def _grid_budget(runs: Sequence[dict[str, Any]]) -> float:
    """The episode budget of T-Maze grid ``runs`` (their config's ``episodes``), the same for all of them."""
    budgets = {run["episodes"] for run in runs}
    if len(budgets) != 1:
        raise ValueError(f"runs with different episode budgets {sorted(budgets)} cannot be compared")
    return float(budgets.pop())


def tmaze_fig13(report: Report) -> list[str]:
    """Fig. 13's grid: episodes to the optimal policy per length, warmup against classic, then all lengths
    together (the lengths as tasks: runs resampled within each length, improvement averaged over them)."""
    runs = grid_runs(report.results / "tmaze" / "small")
    if not runs:
        report.left_out.append("T-Maze, Fig. 13: no run under `results/tmaze/small`")
        return []
    budget = _grid_budget(runs)
    scores = {
        key: episodes_to_optimal([run["metrics"] for run in group], budget)
        for key, group in _group(runs, "length", "version").items()
    }
    lengths = sorted({length for length, _ in scores})
    versions = ("warmup", "classic")
    taus = np.arange(0, budget, 5)  # the checks before the budget: a censored run is within none
    rows, plotted, profiles = [], {}, {}
    for length in lengths:
        pair = {version: scores[length, version] for version in versions}
        result = compare(pair, [versions], lower_is_better=True, **report.options)
        for version, seeds in pair.items():
            faster = result.improvement[versions] if version == "warmup" else None
            rows.append(
                [str(length), version, _seeds(seeds), _reached(seeds, budget), _episodes(seeds, budget)]
                + [_ci(result.estimates[version]), _ci(faster, ".2f")]
            )
            plotted[f"L={length} {version}"] = result.estimates[version]
        profiles[length] = performance_profiles(pair, taus, lower_is_better=True, **report.options)
    pooled = {
        version: {
            seed: [scores[length, version][seed] for length in lengths]
            for seed in scores[lengths[0], version]
        }
        for version in versions
    }
    result = compare(pooled, [versions], lower_is_better=True, **report.options)
    for version in versions:
        faster = result.improvement[versions] if version == "warmup" else None
        runs_text = f"{len(pooled[version])} × {len(lengths)} runs"
        rows.append(["all", version, runs_text, "", "", _ci(result.estimates[version]), _ci(faster, ".2f")])
    fig, axes = _axes(1 + len(lengths))
    _intervals(axes[0], plotted, "episodes to the optimal policy (IQM)")
    for ax, length in zip(axes[1:], lengths, strict=True):
        _profiles(ax, profiles[length], "τ (episodes)", f"optimal within τ episodes, L = {length}")
    header = ["L", "version", "seeds", "reached", f"episodes to optimal per seed ({budget:.0f}+: censored)"]
    header += ["IQM [95 % CI]", "P(warmup faster than classic) [95 % CI]"]
    return [
        "## T-Maze, Fig. 13: episodes to the optimal policy (tuning seeds 0–4)",
        "",
        "Records: `results/tmaze/small/*/metrics.json` (`mm-reproduce tmaze --preset small`, the table "
        f"*T-Maze (Fig. 13)* of `results/README.md`). Budget {budget:.0f} training episodes, stopping at the "
        f"first optimal check; a run never optimal counts as {budget:.0f} (censored, written "
        f"`{budget:.0f}+`). Lower is better. *all*: the three lengths together, runs resampled within each "
        "length; the probability is averaged over the lengths. Right: performance profiles (the fraction "
        "of runs optimal within τ episodes, with its 95 % CI band).",
        "",
        *table_lines(header, rows),
        _save(fig, report.out / "tmaze-fig13.png", "T-Maze, Fig. 13 grid"),
        "",
    ]


def tmaze_reporting(report: Report) -> list[str]:
    """The runner's defaults on the reporting seeds, and the two comparisons made on them (warmup against
    classic at L = 50, C = 2 against C = 20 at L = 20), on the seeds both records have."""
    files = {
        path.stem: jsonl_records(path)
        for path in sorted((report.results / "tmaze-reporting").glob("*.jsonl"))
    }
    if not files:
        report.left_out.append("T-Maze on reporting seeds: no record under `results/tmaze-reporting`")
        return []
    rows, plotted = [], {}
    # the network of each record: 2 x 32 (round 4's defaults) or, `-h64`, 2 x 64 (round 5's)
    defaults = [(f"L{n}", "2 × 32") for n in (20, 50, 100)] + [(f"L{n}-h64", "2 × 64") for n in (20, 50, 100)]
    for name, network in [(name, network) for name, network in defaults if name in files]:
        records = files[name]
        budget = trained_budget(records)
        episodes = episodes_to_optimal(records, budget)
        estimate = report.estimates({name: episodes})[name]
        final = report.estimates({name: _fraction(records, "optimal_at_end")}, aggregate="mean")[name]
        length = records[0]["length"]
        rows.append(
            [str(length), network, _seeds(episodes), f"{budget:.0f}", _reached(episodes, budget)]
            + [_ci(estimate), _ci(final, ".2f")]
        )
        plotted[f"L={length} warmup {network}, {len(episodes)} seeds"] = estimate
    header = ["L", "network", "seeds", "budget", "reached", "episodes to optimal, IQM [95 % CI]"]
    defaults = table_lines([*header, "final policy optimal [95 % CI]"], rows)
    comparisons = {
        "warmup vs classic": ("L50", "L50-classic", "warmup", "classic"),
        "C = 2 vs C = 20": ("L20", "L20-old", "C = 2 (warmup)", "C = 20 (warmup)"),
    }
    rows, profiles = [], {}
    for title, (new, old, new_name, old_name) in comparisons.items():
        if new not in files or old not in files:
            report.left_out.append(
                f"T-Maze on reporting seeds, {title}: `{new}.jsonl` or `{old}.jsonl` missing"
            )
            continue
        budget = trained_budget(files[new] + files[old])
        length = files[new][0]["length"]
        episodes = _shared(episodes_to_optimal(files[new], budget), episodes_to_optimal(files[old], budget))
        finals = _shared(_fraction(files[new], "optimal_at_end"), _fraction(files[old], "optimal_at_end"))
        names = (new_name, old_name)
        estimates = report.estimates(dict(zip(names, episodes, strict=True)))
        fractions = report.estimates(dict(zip(names, finals, strict=True)), aggregate="mean")
        faster = report.improvement(*episodes, lower_is_better=True)
        ends = report.improvement(*finals, lower_is_better=False)
        for i, name in enumerate(names):
            rows.append(
                [
                    title if i == 0 else "",
                    str(length),
                    name,
                    _seeds(episodes[i]),
                    _reached(episodes[i], budget),
                ]
                + [_ci(estimates[name]), _ci(fractions[name], ".2f")]
                + ([_ci(faster, ".2f"), _ci(ends, ".2f")] if i == 0 else ["", ""])
            )
            plotted[f"L={length} {name}, {len(episodes[i])} seeds"] = estimates[name]
        taus = np.arange(0, budget, 5)
        profiles[f"{title}, L = {length}"] = performance_profiles(
            dict(zip(names, episodes, strict=True)), taus, lower_is_better=True, **report.options
        )
    header = ["comparison", "L", "method", "seeds", "reached", "episodes to optimal, IQM [95 % CI]"]
    header += ["final policy optimal [95 % CI]", "P(first faster)", "P(first ends optimal, second not)"]
    fig, axes = _axes(1 + len(profiles))
    _intervals(axes[0], plotted, "episodes to the optimal policy (IQM)")
    for ax, (title, profile) in zip(axes[1:], profiles.items(), strict=True):
        _profiles(ax, profile, "τ (episodes)", f"optimal within τ episodes\n{title}")
    return [
        "## T-Maze on reporting seeds (the runner's defaults, seeds never used for a choice)",
        "",
        "Records: `results/tmaze-reporting/*.jsonl` (the section *T-Maze on reporting seeds* of "
        "`results/README.md`). Every run trained its whole budget, checks every 5 episodes; a run never "
        "optimal counts as the budget (censored). Final policy optimal: the fraction of runs, with its "
        "bootstrap CI.",
        "",
        *defaults,
        "The two comparisons, on the seeds both records have, the first method against the "
        "second. P(first ends optimal, second not): the probability of improvement on the 0/1 outcome "
        "*final policy optimal* (ties count one half).",
        "",
        *table_lines(header, rows),
        _save(fig, report.out / "tmaze-reporting.png", "T-Maze, reporting seeds"),
        "",
    ]


def drqn_ablation(report: Report, baseline: str = "gru-warmup-S-none") -> list[str]:
    """The ablation's variants (``docs/drqn-parity.md``, rounds 3 and 4) against ``baseline`` at each length,
    on the seeds each variant has."""
    folder = report.results / "drqn-ablation"
    records = [record for path in sorted(folder.glob("*.jsonl")) for record in jsonl_records(path)]
    if not records:
        report.left_out.append("DRQN ablation: no record under `results/drqn-ablation`")
        return []
    groups = _group(records, "length", "variant")
    rows, panels = [], {}
    for (length, variant), group in groups.items():
        budget = trained_budget(group)
        episodes = episodes_to_optimal(group, budget)
        estimate = report.estimates({variant: episodes})[variant]
        final = report.estimates({variant: _fraction(group, "optimal_at_end")}, aggregate="mean")[variant]
        faster = ends = None
        base = groups.get((length, baseline))
        if variant != baseline and base:
            base_episodes = episodes_to_optimal(base, trained_budget(base + group))
            faster = report.improvement(*_shared(episodes, base_episodes), lower_is_better=True)
            base_finals = _fraction(base, "optimal_at_end")
            ends = report.improvement(
                *_shared(_fraction(group, "optimal_at_end"), base_finals), lower_is_better=False
            )
        name = variant.removeprefix("gru-warmup-")
        rows.append(
            [str(length), f"`{name}`", _seeds(episodes), _reached(episodes, budget), _ci(estimate)]
            + [_ci(final, ".2f"), _ci(faster, ".2f"), _ci(ends, ".2f")]
        )
        panels.setdefault(length, {})[name] = estimate
    fig, axes = _axes(len(panels), height=4.2)
    for ax, (length, estimates) in zip(axes, panels.items(), strict=True):
        _intervals(ax, estimates, f"episodes to the optimal policy (IQM), L = {length}")
    short = baseline.removeprefix("gru-warmup-")
    header = ["L", "variant", "seeds", "reached", "episodes to optimal, IQM [95 % CI]"]
    header += [
        "final policy optimal [95 % CI]",
        f"P(faster than `{short}`)",
        f"P(ends optimal, `{short}` not)",
    ]
    return [
        "## DRQN ablation, rounds 3 and 4 (tuning seeds 0–9)",
        "",
        "Records: `results/drqn-ablation/*.jsonl` (the tables of rounds 3 and 4 in `docs/drqn-parity.md`; "
        "L = 20: 300 episodes, L = 50: 600, every run trained its whole budget). A run never optimal counts "
        f"as the budget (censored). Each variant is compared with `{short}` (round 3's defaults, C = 20) "
        "at the same length, on the seeds the variant has; `S-c2` is today's default.",
        "",
        *table_lines(header, rows),
        _save(fig, report.out / "drqn-ablation.png", "DRQN ablation"),
        "",
    ]


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


SECTIONS = (tmaze_fig13, tmaze_reporting, drqn_ablation, horizon, supervised)
"""The sections of the page, in its order: each takes the :class:`Report` and returns its Markdown lines."""


def write_statistics(
    results: str | Path = "results", out: str | Path | None = None, reps: int = REPS, seed: int = 0
) -> Path:
    """Compute every section of :data:`SECTIONS` from the records under ``results`` and write the page
    ``README.md`` and its PNGs into ``out`` (default ``<results>/statistics``); returns the page's path."""
    results = Path(results)
    out = Path(out) if out is not None else results / "statistics"
    out.mkdir(parents=True, exist_ok=True)
    report = Report(results, out, reps, seed)
    sections = [line for section in SECTIONS for line in section(report)]
    flags = "" if (reps, seed) == (REPS, 0) else f" --reps {reps} --seed {seed}"
    page = [
        "# Statistics of the committed results (IQM, 95 % stratified bootstrap CIs)",
        "",
        f"Written by `mm-stats{flags}` (in a checkout: `python scripts/stats.py{flags}`) from the per-seed "
        "records under `results/` alone (nothing is trained), by rliable "
        '(`pip install "multistable-memory[results]"`) through `experiments/statistics.py`:',
        "",
        "- **IQM**: the interquartile mean of the runs (rliable's `aggregate_iqm`, SciPy's `trim_mean(·, "
        "0.25)`: ⌊n/4⌋ runs cut at each end, so with fewer than 4 runs it is the mean). Yes/no outcomes "
        "(final policy optimal) are fractions: the mean of the 0/1 runs.",
        "- **95 % CI**: rliable's stratified bootstrap (runs resampled within each task), percentile "
        f"intervals, {reps} replications from seed {seed}: the same records give the same page. With 2 "
        "to 5 runs a percentile interval cannot reach beyond the values observed: [1.00, 1.00] says that "
        "every resample of these few runs agrees, not that the result is certain.",
        "- **P(X better than Y)**: rliable's probability of improvement, the probability that a run of X "
        "is better than a run of Y (ties count one half), averaged over tasks; its CI resamples the runs "
        "of X and of Y independently. 1: every run of X beats every run of Y; 0.5: no difference.",
        "- **Censoring**: a T-Maze run that never reached the optimal policy counts as reaching it at its "
        "episode budget (written `600+`); no run is dropped. A run first optimal at the last check ties "
        "with a censored one. Performance profiles (the fraction of runs optimal within τ episodes) stop "
        "before the budget, so a censored run is within no τ.",
        "",
        *sections,
        "## Not covered",
        "",
        *(f"- {item}" for item in report.left_out),
        "- `psmnist`, `plsmnist` (test accuracy): no run is committed.",
        "- `results/warmup-seeds/randn-2x256.jsonl`: one outcome, VAA = 1.00 for all 50 networks (every "
        "estimate would be 1.00 [1.00, 1.00]), no comparison.",
        "- `benchmarks/RESULTS.md` (L = 500 on seeds 0–4, speed): their per-seed records are not under "
        "`results/`.",
        "- CPU and wall times: measured on a machine shared with other jobs, not compared here.",
        "",
    ]
    path = out / "README.md"
    path.write_text("\n".join(page))
    return path


__all__ = [
    "SECTIONS",
    "Report",
    "drqn_ablation",
    "episodes_to_optimal",
    "grid_runs",
    "horizon",
    "horizon_score",
    "jsonl_records",
    "supervised",
    "tmaze_fig13",
    "tmaze_reporting",
    "trained_budget",
    "write_statistics",
]
