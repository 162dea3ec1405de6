"""What every section of the statistics page (:mod:`experiments.statistics_report`) shares: the settings of
the bootstraps and what was left out (:class:`Report`), the reading of the committed records (runs of a grid,
JSON-lines records, episodes to the optimal policy censored at the budget, the horizon score), the
formatting of table cells and the plots of intervals and performance profiles. The public names are
importable from :mod:`experiments.statistics_report` too."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.results import VERSION_COLORS
from experiments.run_dirs import read_json
from experiments.statistics import (
    CONFIDENCE,
    REPS,
    Estimate,
    censor,
    interval_estimates,
    probability_of_improvement,
)

COLORS = VERSION_COLORS
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


def episodes_within(records: Sequence[dict[str, Any]], window: int) -> dict[int, float]:
    """Seed → first optimal episode of T-Maze ``records``, censored at ``window`` when not reached within
    it: an "optimal within ``window`` episodes" score, for runs that trained their whole budget and for
    runs that gave up after the window alike."""
    ordered = sorted(records, key=lambda r: r["seed"])
    firsts = [r["first_optimal_episode"] for r in ordered]
    return {
        r["seed"]: float(window if f is None or f > window else f)
        for r, f in zip(ordered, firsts, strict=True)
    }


def stopped_at_first_optimal(record: dict[str, Any]) -> bool:
    """Whether a JSON-lines T-Maze ``record``'s run stopped at its first optimal check (its ``episodes`` is
    then where it stopped, not its budget); a record without the field is read as one that stopped."""
    return record.get("stop_when_optimal", True)


def trained_budget(records: Sequence[dict[str, Any]]) -> float:
    """The episode budget of JSON-lines T-Maze ``records`` that trained their whole budget
    (``--no-stop-when-optimal``: their ``episodes``), the same for all of them."""
    if any(map(stopped_at_first_optimal, records)):
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


def _grid_budget(runs: Sequence[dict[str, Any]]) -> float:
    """The episode budget of T-Maze grid ``runs`` (their config's ``episodes``), the same for all of them."""
    budgets = {run["episodes"] for run in runs}
    if len(budgets) != 1:
        raise ValueError(f"runs with different episode budgets {sorted(budgets)} cannot be compared")
    return float(budgets.pop())


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


def _axes(
    panels: int, width: float = 4.6, height: float = 3.6, columns: int | None = None
) -> tuple[Any, list[Any]]:
    """A figure of ``panels`` axes, in one row or in rows of ``columns`` (the unused ones hidden)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(panels, columns or panels)
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


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
