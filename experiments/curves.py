"""Curves of runs, mean ± std over seeds (``scripts/plot_runs.py``): validation loss and VAA per epoch for
supervised runs (like the paper's Figs. 3–4), mean return and VAA against environment steps for T-Maze runs.

A run directory is read from its ``metrics.json`` (written by the grid runner) or ``result.json``
(``scripts/train_supervised.py``), whose ``history`` holds the per-epoch values, and otherwise from its
TensorBoard event files. A folder holding run directories (a grid's root) stands for all of them. Runs that
differ only by their seed are one curve (``__seed=N`` in a grid's run names, a trailing ``__{seed}`` or
``__{seed}__{time}`` in the training scripts' ones), with a band of ± one standard deviation; curves logged at
different steps are interpolated onto the union of their steps, each within its own range (the mean at a
step is over the runs that reached it).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

PAPER_LENGTHS = (20, 100, 200)
"""The corridor lengths of the paper's Fig. 13; :func:`plot_lengths` shades what lies beyond."""

# kind: ((history key, TensorBoard tag, axis label, y scale), ...), x label
PANELS = {
    "supervised": (
        (("val_loss", "val/loss", "validation loss", "log"), ("val_vaa", "val/vaa", "VAA", "linear")),
        "epoch",
    ),
    "tmaze": (
        ((None, "rollout/ep_rew_mean", "mean return", "linear"), (None, "train/vaa", "VAA", "linear")),
        "environment steps",
    ),
}


def read_scalars(run: Path, tag: str) -> dict[int, float]:
    """``{step: value}`` of one tag in a run directory (the last value of a step wins, as after a resume)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return {}
    return {event.step: event.value for event in events.Scalars(tag)}


def _saved(run: Path) -> dict:
    """The run's ``metrics.json`` or ``result.json`` (an empty dict when neither is readable)."""
    for name in ("metrics.json", "result.json"):
        try:
            return json.loads((run / name).read_text())
        except (OSError, ValueError):
            continue
    return {}


def run_kind(run: Path) -> str:
    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    if config.get("kind") in PANELS:
        return config["kind"]
    return "supervised" if "history" in _saved(run) else "tmaze"


def curve(run: Path, key: str | None, tag: str) -> dict[int, float]:
    """``{x: value}`` of a panel: from the saved history, else from the event files."""
    history = _saved(run).get("history", {})
    if key is not None and key in history:
        xs = history.get("epoch", range(len(history[key])))
        return {int(x): float(v) for x, v in zip(xs, history[key], strict=False) if v is not None}
    return read_scalars(run, tag)


def on_common_axis(curves: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Curves logged at different x (T-Maze runs log at the step where an episode ends) on the union
    of their x: each interpolated within its own range, NaN outside it (a run that stopped early)."""
    xs = np.array(sorted(set().union(*curves)), dtype=float)
    values = np.full((len(curves), len(xs)), np.nan)
    for i, c in enumerate(curves):
        own = np.array(sorted(c), dtype=float)
        inside = (xs >= own[0]) & (xs <= own[-1])
        values[i, inside] = np.interp(xs[inside], own, [c[int(x)] for x in own])
    return xs, values


def group_name(run: Path) -> str:
    """The run's name without its seed (and time): ``__seed=N`` anywhere, or trailing ``__N(__N)``."""
    name = re.sub(r"__seed=\d+", "", run.name)
    return re.sub(r"(__\d+){1,2}$", "", name)


def expand(paths: tuple[str, ...]) -> list[Path]:
    """Run directories: each path itself when it holds a run, else its sub-directories that do."""
    runs = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise SystemExit(f"error: run directory {path} does not exist")
        if _is_run(path):
            runs.append(path)
        else:
            runs.extend(sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p)))
    return runs


def _is_run(path: Path) -> bool:
    names = ("metrics.json", "result.json", "config.json")
    return any((path / n).exists() for n in names) or any(path.glob("events.out.tfevents*"))


def plot_lengths(paths: tuple[str, ...] | list[str], output: str | Path, title: str = "") -> str:
    """Plot episodes to the optimal policy against the corridor length L (Fig. 13's lower row, over any L)
    from the JSON-lines records of ``benchmarks/bench_drqn.py`` in ``paths``, to the PNG ``output``.

    One colour per variant: a dot per run at its first optimal episode, a cross at the episodes it trained
    without reaching it (a miss, censored there), and a line through the medians per L (misses counted at
    their censoring point: a median above the lowest miss is a lower bound); the variants' points are set
    slightly apart along L, and lengths beyond the paper's (:data:`PAPER_LENGTHS`) are shaded.

    :return: a one-line summary (variants, lengths, runs).
    :raises SystemExit: when a file is missing, holds no record, or a line is not a record.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, dict[int, list[tuple[float, bool]]]] = defaultdict(lambda: defaultdict(list))
    for path in map(Path, paths):
        if not path.is_file():
            raise SystemExit(f"error: {path} is not a file of bench_drqn.py records")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                first = record.get("first_optimal_episode")
                episodes = record["episodes"] if first is None else first
                length = record["length"]
            except (json.JSONDecodeError, KeyError, AttributeError) as error:
                message = f"error: line {number} of {path} is not a bench_drqn.py record ({error})"
                raise SystemExit(message) from None
            runs[record.get("variant", record.get("version", "?"))][length].append(
                (float(episodes), first is not None)
            )
    if not runs:
        raise SystemExit(f"error: no record in {', '.join(map(str, paths))}")
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    count = 0
    for index, (variant, by_length) in enumerate(sorted(runs.items())):
        lengths = sorted(by_length)
        medians = [float(np.median([e for e, _ in by_length[length]])) for length in lengths]
        (line,) = axis.plot(lengths, medians, "-", label=variant)
        shift = 1.06 ** (index - (len(runs) - 1) / 2)  # the variants' points side by side (log axis)
        for length in lengths:
            for episodes, reached in by_length[length]:
                marker = "o" if reached else "x"
                axis.plot(length * shift, episodes, marker, color=line.get_color(), alpha=0.6, ms=5)
                count += 1
    longest = max(length for by_length in runs.values() for length in by_length)
    if longest > PAPER_LENGTHS[-1]:
        axis.axvspan(PAPER_LENGTHS[-1] * 1.5, longest * 1.5, color="grey", alpha=0.1)
        axis.text(
            PAPER_LENGTHS[-1] * 1.6,
            0.98,
            "beyond the paper's lengths",
            transform=axis.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )
    axis.set(xscale="log", yscale="log", xlabel="corridor length L", ylabel="episodes to the optimal policy")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)
    all_lengths = sorted({length for by_length in runs.values() for length in by_length})
    return f"wrote {output} ({count} runs of {len(runs)} variants at L = {', '.join(map(str, all_lengths))})"


def plot_runs(paths: tuple[str, ...] | list[str], output: str | Path, title: str = "") -> str:
    """Plot the runs in ``paths`` (run directories, or folders of them) to the PNG ``output``; JSON-lines
    files of ``bench_drqn.py`` records instead give :func:`plot_lengths`.

    :return: a one-line summary (curves, runs, groups).
    :raises SystemExit: with a message naming the folders, when a path is missing or nothing can be plotted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if paths and all(str(path).endswith(".jsonl") for path in paths):
        return plot_lengths(paths, output, title)
    runs = expand(tuple(paths))
    if not runs:
        raise SystemExit(
            f"error: no run directory in {', '.join(map(str, paths))} (none holds metrics or events)"
        )
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for run in runs:
        groups[(run_kind(run), group_name(run))].append(run)
    kinds = sorted({kind for kind, _ in groups})
    figure, axes = plt.subplots(len(kinds), 2, figsize=(11, 4 * len(kinds)), squeeze=False)
    plotted = 0
    for row, kind in zip(axes, kinds, strict=True):
        panels, xlabel = PANELS[kind]
        for (group_kind, label), members in sorted(groups.items()):
            if group_kind != kind:
                continue
            for axis, (key, tag, _, _) in zip(row, panels, strict=True):
                curves = [c for c in (curve(run, key, tag) for run in members) if c]
                if not curves:
                    continue
                xs, values = on_common_axis(curves)
                mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
                axis.plot(xs, mean, label=f"{label} (n={len(members)})")
                axis.fill_between(xs, mean - std, mean + std, alpha=0.2)
                plotted += 1
        for axis, (_, _, name, scale) in zip(row, panels, strict=True):
            axis.set(xlabel=xlabel, ylabel=name, yscale=scale)
            axis.grid(alpha=0.3)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            if name == "VAA":
                axis.set_ylim(0, 1.02)
        if row[0].get_legend_handles_labels()[0]:
            row[0].legend(fontsize=7)
    if not plotted:
        plt.close(figure)
        names = ", ".join(str(r) for r in runs[:3]) + (" …" if len(runs) > 3 else "")
        wanted = "; ".join(f"{k}: {', '.join(p[2] for p in PANELS[k][0])}" for k in kinds)
        print(f"error: nothing to plot in {names} (looked for {wanted})", file=sys.stderr)
        raise SystemExit(1)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return f"wrote {output} ({plotted} curves from {len(runs)} runs in {len(groups)} groups)"
