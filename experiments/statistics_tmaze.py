"""The T-Maze sections of the statistics page (:mod:`experiments.statistics_report`): Fig. 13's grid
(:func:`tmaze_fig13`), the runner's defaults on the reporting seeds and their comparisons
(:func:`tmaze_reporting`), and the DRQN ablation of ``docs/drqn-parity.md`` (:func:`drqn_ablation`)."""

from __future__ import annotations

import numpy as np

from experiments.results import table_lines
from experiments.statistics import compare, performance_profiles
from experiments.statistics_common import (
    Report,
    _axes,
    _ci,
    _episodes,
    _fraction,
    _grid_budget,
    _group,
    _intervals,
    _profiles,
    _reached,
    _save,
    _seeds,
    _shared,
    episodes_to_optimal,
    episodes_within,
    grid_runs,
    jsonl_records,
    stopped_at_first_optimal,
    trained_budget,
)


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
    """The runner's defaults on the reporting seeds, and the comparisons made on them (warmup against
    classic at L = 50, C = 2 against C = 20 at L = 20, round 8's defaults against round 5's at L = 50 and
    100), on the seeds both records have."""
    files = {
        path.stem: jsonl_records(path)
        for path in sorted((report.results / "tmaze-reporting").glob("*.jsonl"))
    }
    if not files:
        report.left_out.append("T-Maze on reporting seeds: no record under `results/tmaze-reporting`")
        return []
    rows, plotted = [], {}
    # the network of each record: 2 x 32 (round 4's defaults), `-h64` 2 x 64 (round 5's), `-r8` round 8's
    # (2 x 64, 10-step Watkins returns, a decaying rate), `-r10` round 10's (the rate held, then decayed),
    # `-r11` round 11's (an averaged network checked and saved), `-r15` round 15's (advantage learning),
    # `-r21` round 21's (the loss on every step of the sampled episodes)
    defaults = [(f"L{n}", "2 × 32") for n in (20, 50, 100)] + [(f"L{n}-h64", "2 × 64") for n in (20, 50, 100)]
    defaults += [(f"L{n}-r8", "2 × 64, round 8") for n in (20, 50, 100)]
    defaults += [(f"L{n}-r10", "2 × 64, round 10") for n in (20, 50, 100)]
    defaults += [(f"L{n}-r11", "2 × 64, round 11") for n in (20, 50, 100)]
    defaults += [(f"L{n}-r15", "2 × 64, round 15") for n in (20, 50, 100)]
    defaults += [(f"L{n}-r21", "2 × 64, round 21") for n in (20, 50, 100)]
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
        "round 8 vs round 5 (L = 50)": ("L50-r8", "L50-h64", "round 8's defaults", "round 5's defaults"),
        "round 8 vs round 5 (L = 100)": ("L100-r8", "L100-h64", "round 8's defaults", "round 5's defaults"),
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
    windows = _windows(report, files, plotted)
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
        "The comparisons, on the seeds both records have, the first method against the "
        "second. P(first ends optimal, second not): the probability of improvement on the 0/1 outcome "
        "*final policy optimal* (ties count one half).",
        "",
        *table_lines(header, rows),
        *windows,
        _save(fig, report.out / "tmaze-reporting.png", "T-Maze, reporting seeds"),
        "",
    ]


WINDOWS = {50: 300, 100: 400, 200: 600}
"""The robust-learning goals' windows: the optimal policy within 300 episodes at L = 50, 400 at 100, 600 at
200."""


def _windows(report: Report, files: dict[str, list[dict]], plotted: dict) -> list[str]:
    """Each round's defaults scored on "optimal within the window" (:data:`WINDOWS`): warmup
    (``L{n}-r10``, ``L{n}-r15``, ``L{n}-r17``: round 17's γ of L = 200, ``L{n}-r21``: round 21's loss on every
    step of the sampled episodes) and, where it ran, classic (``L{n}-classic-r10``, ``-r15``, ``-r17``,
    ``-r21``), whose runs gave up after the window (``--give-up-after``)
    with the schedules of the warmup runs' budget."""
    lines = []
    rounds = (("r10", "Round 10's"), ("r15", "Round 15's"), ("r17", "Round 17's"), ("r21", "Round 21's"))
    for suffix, title in rounds:
        rows = []
        for length, window in WINDOWS.items():
            names = {"warmup": f"L{length}-{suffix}", "classic": f"L{length}-classic-{suffix}"}
            present = {version: files[name] for version, name in names.items() if name in files}
            if not present:
                continue
            scores = _shared(*(episodes_within(records, window) for records in present.values()))
            pair = dict(zip(present, scores, strict=True))
            estimates = report.estimates(pair)
            faster = (
                report.improvement(pair["warmup"], pair["classic"], lower_is_better=True)
                if len(pair) == 2
                else None
            )
            for version, seeds in pair.items():
                reached = sum(
                    r["first_optimal_episode"] is not None and r["first_optimal_episode"] <= window
                    for r in present[version]
                    if r["seed"] in seeds
                )
                compared = _ci(faster, ".2f") if faster is not None and version == "warmup" else ""
                rows.append(
                    [str(length), str(window), version, _seeds(seeds), f"{reached}/{len(seeds)}"]
                    + [_ci(estimates[version]), compared]
                )
                label = f"L={length} {version} round {suffix[1:]}, within {window}, {len(seeds)} seeds"
                plotted[label] = estimates[version]
        if not rows:
            continue
        header = ["L", "window", "version", "seeds", "optimal within the window"]
        header += ["episodes to optimal, IQM [95 % CI] (censored at the window)", "P(warmup faster)"]
        lines += [
            f"{title} defaults within the robust-learning windows (GRU 2 × 64; records "
            f"`L{{n}}-{suffix}.jsonl`, and `L{{n}}-classic-{suffix}.jsonl` where classic ran): a run not "
            "optimal within the window counts as the window.",
            "",
            *table_lines(header, rows),
        ]
    return lines


_ABLATION_BUDGET = {20: 300, 50: 600, 100: 400}  # the budgets of most rounds; others are named in the plot


def drqn_ablation(report: Report, baseline: str = "gru-warmup-S-none") -> list[str]:
    """The ablation's variants (``docs/drqn-parity.md``, rounds 3 to 12) against ``baseline`` at each length
    and episode budget, on the seeds each variant has."""
    folder = report.results / "drqn-ablation"
    records = [record for path in sorted(folder.glob("*.jsonl")) for record in jsonl_records(path)]
    if not records:
        report.left_out.append("DRQN ablation: no record under `results/drqn-ablation`")
        return []
    stopped = [r for r in records if stopped_at_first_optimal(r)]
    if stopped:  # their "episodes" is where they stopped, not a budget to censor at
        report.left_out.append(
            "DRQN ablation: runs that stopped at their first optimal check (variants "
            + ", ".join(f"`{v}`" for v in sorted({r["variant"] for r in stopped}))
            + "; their tables are in `docs/drqn-parity.md`)"
        )
        records = [r for r in records if not stopped_at_first_optimal(r)]
        if not records:
            return []
    groups = _group(records, "length", "episodes", "variant")  # a variant may have several budgets
    rows, panels = [], {}
    for (length, episodes_budget, variant), group in groups.items():
        budget = trained_budget(group)
        episodes = episodes_to_optimal(group, budget)
        estimate = report.estimates({variant: episodes})[variant]
        final = report.estimates({variant: _fraction(group, "optimal_at_end")}, aggregate="mean")[variant]
        faster = ends = None
        base = groups.get((length, episodes_budget, baseline))
        if variant != baseline and base:
            base_episodes = episodes_to_optimal(base, trained_budget(base + group))
            faster = report.improvement(*_shared(episodes, base_episodes), lower_is_better=True)
            base_finals = _fraction(base, "optimal_at_end")
            ends = report.improvement(
                *_shared(_fraction(group, "optimal_at_end"), base_finals), lower_is_better=False
            )
        name = variant.removeprefix("gru-warmup-")
        rows.append(
            [str(length), f"{budget:.0f}", f"`{name}`", _seeds(episodes), _reached(episodes, budget)]
            + [_ci(estimate)]
            + [_ci(final, ".2f"), _ci(faster, ".2f"), _ci(ends, ".2f")]
        )
        panels.setdefault(length, {})[
            name if budget == _ABLATION_BUDGET.get(length) else f"{name} ({budget:.0f})"
        ] = estimate
    fig, axes = _axes(len(panels), height=4.2)
    for ax, (length, estimates) in zip(axes, panels.items(), strict=True):
        _intervals(ax, estimates, f"episodes to the optimal policy (IQM), L = {length}")
    short = baseline.removeprefix("gru-warmup-")
    header = ["L", "budget", "variant", "seeds", "reached", "episodes to optimal, IQM [95 % CI]"]
    header += [
        "final policy optimal [95 % CI]",
        f"P(faster than `{short}`)",
        f"P(ends optimal, `{short}` not)",
    ]
    return [
        "## DRQN ablation, rounds 3 to 12 (tuning seeds 0–9)",
        "",
        "Records: `results/drqn-ablation/*.jsonl` (the tables of rounds 3 to 12 in `docs/drqn-parity.md`; "
        "the budget in episodes, every run trained it whole). A run never "
        f"optimal counts as the budget (censored). Each variant is compared with `{short}` (round 3's "
        "defaults, C = 20) at the same length and budget, on the seeds the variant has; `d-avg02-eval` is "
        "today's default (round 11).",
        "",
        *table_lines(header, rows),
        _save(fig, report.out / "drqn-ablation.png", "DRQN ablation"),
        "",
    ]
