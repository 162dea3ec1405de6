"""The results of the horizon grid (``scripts/reproduce.py horizon``), its results writer
(:func:`write_horizon_results`): the T-Maze table (seeds still optimal at each ``L'``), the copy table
(test MSE at each ``T'``), every run, in ``results.md`` and ``results.json``, and the plot against ``L'``
and ``T'`` in ``results.png``; :func:`write_finished` writes them for the finished runs of a grid stopped
early.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.horizon import zero_prediction_mse
from experiments.horizon_presets import horizon_grid
from experiments.presets import from_seed, grid_root, reproduce_command
from experiments.results import format_number, mean_std, table_lines
from experiments.run_dirs import is_finished, read_json, write_json
from experiments.tmaze_config import TMazeConfig


def summarise_horizon(runs: Sequence[Any], results: dict[str, dict]) -> dict[str, list[dict[str, Any]]]:
    """Rows per group of seeds: ``{"tmaze": [...], "copy": [...]}``; runs absent from ``results`` (not
    finished) are listed in ``not_finished``.

    T-Maze rows: ``length``, ``cell``, ``version``, ``horizons``, ``seeds`` (finished runs),
    ``seeds_list``, ``not_finished``, ``ever_optimal`` (optimal at ``length`` at some check),
    ``reached`` (optimal at ``length`` at the end of training: the runs evaluated at ``L'``),
    ``optimal`` (``{L': seeds still optimal}``, over the reached ones), ``first_optimal_episode`` (over
    the ever optimal ones) and ``vaa`` (mean, std), ``runs`` (per seed: ``first_optimal_episode``,
    ``episodes``, ``optimal_at_end``, ``optimal_checks`` and ``checks_since_first`` (the checks where the
    policy was optimal, and all the checks, from the first optimal one to the end), ``last_optimal``
    (the last optimal check), ``optimal_since``
    (the first check of the final streak of optimal checks, None when not optimal at the end), ``vaa``,
    ``optimal`` ``{L': bool}``, ``predicted`` (the horizon diagnosis of the network, None when not run)),
    ``diagnosis`` (of the reached runs diagnosed: how many, how many predicted to generalise, how many
    predictions agree with the outcome at the longest ``L'``). Copy rows: the same labels, ``diverged``,
    ``test_loss``, ``mse`` (``{T': (mean, std)}`` over the finite values), ``vaa`` (at the best epoch) and
    ``runs``.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        config = run.config
        task = config["task"]
        size = ("length", config["length"]) if task == "tmaze" else ("T", config["T"])
        row = groups.setdefault(
            (task, run.group),
            {
                size[0]: size[1],
                "cell": config["cell"],
                # a named recipe (presets' `recipes`) shows in every table and plot beside the version
                "version": config["version"]
                + (f" ({recipe})" if (recipe := dict(run.labels).get("recipe")) else ""),
                "recipe": recipe,
                "horizons": [int(h) for h in config["horizons"]],
                "not_finished": [],
                "_runs": [],
                "_config": config,
            },
        )
        if run.name in results:
            row["_runs"].append((run.seed, results[run.name]))
        else:
            row["not_finished"].append(run.seed)
    tables: dict[str, list[dict[str, Any]]] = {"tmaze": [], "copy": []}
    for (task, _), row in groups.items():
        config = row.pop("_config")
        runs_of = sorted(row.pop("_runs"), key=lambda item: item[0])
        row["seeds"] = len(runs_of)
        row["seeds_list"] = [seed for seed, _ in runs_of]
        vaas = [m.get("vaa") for _, m in runs_of]
        row["vaa"] = mean_std([float(v) for v in vaas if isinstance(v, (int, float)) and math.isfinite(v)])
        if task == "tmaze":
            check_freq = config.get("check_freq", TMazeConfig.check_freq)
            row["runs"] = [
                {
                    "seed": seed,
                    "first_optimal_episode": m["first_optimal_episode"],
                    "episodes": m["episodes"],
                    "optimal_at_end": bool(m["optimal_at_end"]),
                    **_check_history(m, check_freq),
                    "vaa": m.get("vaa"),
                    "optimal": {h["length"]: bool(h["optimal"]) for h in m.get("horizons", [])},
                    "predicted": (m.get("diagnosis") or {}).get("predicts_generalisation"),
                }
                for seed, m in runs_of
            ]
            reached = [r for r in row["runs"] if r["optimal"]]  # evaluated: optimal at L at the end
            ever = [r for r in row["runs"] if r["first_optimal_episode"] is not None]
            row["ever_optimal"] = len(ever)
            row["reached"] = len(reached)
            row["optimal"] = (
                {h: sum(r["optimal"][h] for r in reached) for h in row["horizons"]} if reached else {}
            )
            row["first_optimal_episode"] = mean_std([float(r["first_optimal_episode"]) for r in ever])
            diagnosed = [r for r in reached if r["predicted"] is not None]
            longest = max(row["horizons"])
            row["diagnosis"] = {
                "diagnosed": len(diagnosed),
                "predicted": sum(r["predicted"] for r in diagnosed),
                "agrees": sum(r["predicted"] == r["optimal"].get(longest) for r in diagnosed),
            }
        else:
            row["diverged"] = sum(bool(m.get("diverged")) for _, m in runs_of)
            row["runs"] = [
                {
                    "seed": seed,
                    "diverged": bool(m.get("diverged")),
                    "test_loss": m.get("test_loss"),
                    "vaa": m.get("vaa"),
                    "mse": {h["T"]: h["mse"] for h in m.get("horizons", [])},
                }
                for seed, m in runs_of
            ]
            ok = [r for r in row["runs"] if not r["diverged"]]
            row["test_loss"] = mean_std([r["test_loss"] for r in ok if _finite(r["test_loss"])])
            row["mse"] = {
                t: mean_std([r["mse"][t] for r in ok if _finite(r["mse"].get(t))]) for t in row["horizons"]
            }
            row["zero_mse"] = {t: zero_prediction_mse(t, config["eval_sequences"]) for t in row["horizons"]}
        tables[task].append(row)
    return tables


def _check_history(metrics: dict[str, Any], check_freq: int) -> dict[str, Any]:
    """From a T-Maze run's ``first_optimal_episode``, ``optimal_checks`` and ``episodes``: the optimal
    checks and all the checks from the first optimal one to the end (the checks are every ``check_freq``
    episodes, ``TMazeOptimalCallback``), ``last_optimal``, the last optimal check, and ``optimal_since``,
    the first check of the final streak of optimal checks (None when the policy is not optimal at the
    last check)."""
    first = metrics["first_optimal_episode"]
    if first is None:
        return {"optimal_checks": 0, "checks_since_first": 0, "last_optimal": None, "optimal_since": None}
    checks = range(first, metrics["episodes"] + 1, check_freq)
    optimal = set(metrics["optimal_checks"]) & set(checks)
    since = None
    for episode in reversed(checks):
        if episode not in optimal:
            break
        since = episode
    return {
        "optimal_checks": len(optimal),
        "checks_since_first": len(checks),
        "last_optimal": max(optimal, default=None),
        "optimal_since": since,
    }


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt_mean(value: tuple[float, float] | None, digits: str = ".3g") -> str:
    if value is None:
        return "—"
    return f"{value[0]:{digits}} ± {value[1]:.2g}"


def _seeds(row: dict[str, Any]) -> str:
    text = f"{row['seeds']} ({', '.join(map(str, row['seeds_list']))})" if row["seeds"] else "0"
    if row["not_finished"]:
        text += f"; not finished: {', '.join(map(str, row['not_finished']))}"
    if row.get("diverged"):
        text += f"; {row['diverged']} diverged"
    return text


def markdown_tables(tables: dict[str, list[dict[str, Any]]], title: str) -> str:
    """The T-Maze table (seeds still optimal at each ``L'`` out of those optimal at the training ``L``),
    the copy table (test MSE at each ``T'``), then every run."""
    lines = [f"## {title}", ""]
    rl, sup = tables["tmaze"], tables["copy"]
    rl_h = sorted({h for row in rl for h in row["horizons"]})
    sup_h = sorted({t for row in sup for t in row["horizons"]})
    if rl:
        lines += [
            "### T-Maze: seeds still optimal at L' (out of those optimal at the training length L at the end "
            "of training)",
            "",
        ]
        header = ["L", "cell", "version", "seeds", "ever optimal at L", "optimal at L at the end"]
        header += [f"L'={h:,}" for h in rl_h]
        rows = []
        for row in rl:
            cells = [
                str(row["length"]),
                row["cell"],
                row["version"],
                _seeds(row),
                f"{row['ever_optimal']}/{row['seeds']}" if row["seeds"] else "—",
                f"{row['reached']}/{row['seeds']}" if row["seeds"] else "—",
            ]
            cells += [f"{row['optimal'][h]}/{row['reached']}" if row["reached"] else "—" for h in rl_h]
            d = row.get("diagnosis") or {}
            diagnosis = (
                f"{d['predicted']}/{d['diagnosed']} ({d['agrees']}/{d['diagnosed']})"
                if d.get("diagnosed")
                else "—"
            )
            rows.append(
                cells
                + [_fmt_mean(row["first_optimal_episode"], ".0f"), _fmt_mean(row["vaa"], ".2f"), diagnosis]
            )
        lines += table_lines(
            header
            + [
                "first optimal episode (ever optimal seeds)",
                "VAA",
                f"predicted to generalise (agrees at L'={max(rl_h):,})",
            ],
            rows,
        )
    if sup:
        lines += ["### Copy first input: test MSE at T' (mean ± std over seeds)", ""]
        header = ["T", "cell", "version", "seeds", "test MSE at T"] + [f"T'={t:,}" for t in sup_h] + ["VAA"]
        rows = []
        for row in sup:
            cells = [str(row["T"]), row["cell"], row["version"], _seeds(row), _fmt_mean(row["test_loss"])]
            rows.append(
                cells + [_fmt_mean(row["mse"].get(t)) for t in sup_h] + [_fmt_mean(row["vaa"], ".2f")]
            )
        first = sup[0]
        rows.append(
            [str(first["T"]), "predict 0 (no memory)", "—", "—", "1"]
            + [f"{first['zero_mse'][t]:.3g}" if t in first["zero_mse"] else "—" for t in sup_h]
            + ["—"]
        )
        lines += table_lines(header, rows)
        lines += [
            "The last row is the MSE of predicting 0, the mean of u_1² over the same test sequences at "
            "each T' (at T, its expectation): a network above it is worse than no memory.",
            "",
        ]
    if rl:
        lines += [
            "### T-Maze, every run (✓ optimal, ✗ not; — not evaluated at L': not optimal at L at the end "
            "of training)",
            "",
            "first optimal episode (of): the first optimal check, out of the episodes trained; optimal "
            "checks: those where the greedy policy was optimal at L, out of all the checks from the first "
            "optimal one to the end; last optimal: the last optimal check; optimal since: the first check of "
            "the final streak of optimal checks; the network evaluated at L' is the one at the end of "
            "training.",
            "",
        ]
        header = ["L", "cell", "version", "seed", "first optimal episode (of)", "optimal at L at the end"]
        header += ["optimal checks", "last optimal", "optimal since", "VAA"] + [f"L'={h:,}" for h in rl_h]
        rows = []
        for row in rl:
            for r in row["runs"]:
                first = r["first_optimal_episode"]
                cells = [str(row["length"]), row["cell"], row["version"], str(r["seed"])]
                cells += [f"{'never' if first is None else first} ({r['episodes']})"]
                cells += ["✓" if r["optimal_at_end"] else "✗"]
                cells += [f"{r['optimal_checks']}/{r['checks_since_first']}" if first is not None else "—"]
                cells += ["—" if r[key] is None else str(r[key]) for key in ("last_optimal", "optimal_since")]
                cells += [format_number(r["vaa"], ".3f")]
                rows.append(
                    cells + [("✓" if r["optimal"][h] else "✗") if h in r["optimal"] else "—" for h in rl_h]
                )
        lines += table_lines(header, rows)
    if sup:
        lines += ["### Copy first input, every run (test MSE)", ""]
        header = ["T", "cell", "version", "seed", "at T"] + [f"T'={t:,}" for t in sup_h] + ["VAA"]
        rows = []
        for row in sup:
            for r in row["runs"]:
                cells = [
                    str(row["T"]),
                    row["cell"],
                    row["version"],
                    str(r["seed"]) + (" (diverged)" if r["diverged"] else ""),
                ]
                cells += (
                    [format_number(r["test_loss"])]
                    + [format_number(r["mse"].get(t)) for t in sup_h]
                    + [format_number(r["vaa"], ".2f")]
                )
                rows.append(cells)
        lines += table_lines(header, rows)
    return "\n".join(lines)


_VERSION_STYLES = {"classic": "-", "warmup": "--", "double": ":"}
_MARKERS = "osD^vP*Xh<>"
_JITTER = 0.012
"""Vertical offset between the lines of a T-Maze panel (several lie on 0 or 1)."""


def plot_horizon(tables: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Fraction of the seeds optimal at the training ``L`` still optimal at ``L'`` (one panel per ``L``;
    the first point is ``L`` itself) and test MSE against ``T'`` (the first point is the training ``T``),
    log x-axis, one line per cell and version. Groups that never reached the optimal policy are named in
    the legend without a line; T-Maze lines are offset by a few hundredths so that equal ones stay
    visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rl, sup = tables["tmaze"], tables["copy"]
    lengths = sorted({row["length"] for row in rl})
    panels = max(len(lengths) + bool(sup), 1)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5), squeeze=False)
    groups = list(dict.fromkeys((row["cell"], row["version"]) for row in rl + sup))
    style = {
        group: {
            "color": plt.get_cmap("tab10")(i % 10),
            "linestyle": _VERSION_STYLES.get(group[1], "-"),
            "marker": _MARKERS[i % len(_MARKERS)],
        }
        for i, group in enumerate(groups)
    }
    for ax, length in zip(axes[0], lengths, strict=False):
        for row in (r for r in rl if r["length"] == length):
            group = (row["cell"], row["version"])
            label = (
                f"{row['cell']} {row['version']} ({row['reached']}/{row['seeds']} optimal at L at the end)"
            )
            if not row["reached"]:
                ax.plot([], [], label=label + ": no line", **style[group])
                continue
            offset = _JITTER * (groups.index(group) - len(groups) / 2)
            xs = [length] + [h for h in row["horizons"] if h in row["optimal"] and h != length]
            ys = [1.0] + [row["optimal"][h] / row["reached"] for h in xs[1:]]
            ax.plot(xs, [y + offset for y in ys], label=label, **style[group])
        ax.set(
            xscale="log",
            ylim=(-0.1, 1.1),
            xlabel="corridor length L' (first point: the training length L)",
            ylabel="fraction of the seeds optimal at L still optimal at L'",
            title=f"T-Maze, DRQN trained at L = {length}",
        )
        ax.legend(fontsize=7)
    if sup:
        ax = axes[0][-1]
        for row in sup:
            group = (row["cell"], row["version"])
            ts = [row["T"]] + [t for t in row["horizons"] if row["mse"].get(t) is not None]
            ys = [row["test_loss"]] + [row["mse"][t] for t in ts[1:]]
            points = [(t, y[0]) for t, y in zip(ts, ys, strict=True) if y is not None]
            label = f"{row['cell']} {row['version']} ({row['seeds']} seeds)"
            ax.plot(*zip(*points, strict=True), label=label, **style[group])
        zero = {sup[0]["T"]: 1.0, **sup[0]["zero_mse"]}  # at T: its expectation, Var(u_1) = 1
        ts = sorted(zero)
        ax.plot(ts, [zero[t] for t in ts], "k:", linewidth=1.5, label="predict 0 (no memory)")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="sequence length T' (first point: the training length T)",
            ylabel="test MSE (mean over seeds)",
            title=f"Copy first input, trained at T = {sup[0]['T']}",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_horizon_results(
    runs: Sequence[Any], results: dict[str, dict], root: Path, command: str
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Write ``results.md``, ``results.json`` and ``results.png`` of a horizon grid under ``root``
    (runs absent from ``results`` are reported as not finished)."""

    tables = summarise_horizon(runs, results)
    text = markdown_tables(tables, f"horizon, preset {root.name}")
    (root / "results.md").write_text(f"{text}\nCommand: `{command}`\n")
    write_json(root / "results.json", tables)
    plot_horizon(tables, root / "results.png")
    return tables, text


def write_finished(
    preset: str, out: str | Path = "results", first_seed: int = 0
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """The tables and plot of the runs of the horizon grid ``preset`` that have finished under ``out``,
    without running anything (for a grid stopped before its end; the others show as not finished);
    ``first_seed`` as ``mm-reproduce --first-seed`` (the runs under ``<preset>-from-seed-<first_seed>``)."""
    root = grid_root(out, "horizon", preset, first_seed)
    runs = from_seed(horizon_grid(preset), first_seed)
    results = {
        run.name: read_json(root / run.name / "metrics.json") for run in runs if is_finished(run, root)
    }
    return write_horizon_results(runs, results, root, reproduce_command("horizon", preset, first_seed))


__all__ = [
    "markdown_tables",
    "plot_horizon",
    "summarise_horizon",
    "write_finished",
    "write_horizon_results",
]
