"""Validation loss and VAA per epoch side by side, from TensorBoard logs (like the paper's Figs. 3–4).

    python scripts/plot_runs.py runs/copy__gru__classic__* runs/copy__gru__warmup__* --output copy.png

Runs whose directory names differ only by the trailing ``__{seed}`` (and ``__{time}``) are one
curve: the mean over seeds, with a band of ± one standard deviation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import tyro

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

PANELS = (("val/loss", "validation loss", "log"), ("val/vaa", "VAA", "linear"))


@dataclass
class Args:
    runs: tyro.conf.Positional[tuple[str, ...]]
    """run directories (each holding TensorBoard event files)"""
    output: str = "runs.png"
    """PNG file to write"""
    title: str = ""
    """figure title"""


def read_scalars(run: Path, tag: str) -> dict[int, float]:
    """``{epoch: value}`` of one tag in a run directory (the last value of a step wins, as after a resume)."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return {}
    return {event.step: event.value for event in events.Scalars(tag)}


def group_name(run: Path) -> str:
    return re.sub(r"(__\d+){1,2}$", "", run.name)


def main(argv: list[str] | None = None) -> None:
    args = tyro.cli(Args, args=argv, description=__doc__)
    groups: dict[str, list[Path]] = defaultdict(list)
    for run in map(Path, args.runs):
        if not run.is_dir():
            raise FileNotFoundError(f"run directory {run} does not exist")
        groups[group_name(run)].append(run)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, runs in sorted(groups.items()):
        for axis, (tag, _, _) in zip(axes, PANELS, strict=True):
            curves = [read_scalars(run, tag) for run in runs]
            epochs = sorted(set.intersection(*(set(curve) for curve in curves)))
            if not epochs:
                continue
            values = np.array([[curve[e] for e in epochs] for curve in curves])
            mean, std = values.mean(0), values.std(0)
            axis.plot(epochs, mean, label=f"{label} (n={len(runs)})")
            axis.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    for axis, (_, name, scale) in zip(axes, PANELS, strict=True):
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.set_yscale(scale)
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_ylim(0, 1.02)
    axes[0].legend(fontsize=8)
    if args.title:
        figure.suptitle(args.title)
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    plt.close(figure)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
