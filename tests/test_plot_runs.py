"""mm-plot-runs (``experiments.cli.plot_runs``): curves from metrics.json alone (what results/ commits), from
event files, seeds grouped into mean ± std, and a clear failure when there is nothing to plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.cli import plot_runs


def write_run(root: Path, name: str, val_loss: list[float], vaa: list[float]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"kind": "supervised", "seed": 0}))
    history = {"epoch": list(range(len(val_loss))), "val_loss": val_loss, "val_vaa": vaa}
    (run / "metrics.json").write_text(json.dumps({"test_loss": val_loss[-1], "history": history}))
    return run


def test_a_grid_root_without_event_files_is_plotted_from_metrics(tmp_path, monkeypatch, capsys):
    for seed, shift in ((0, 0.0), (1, 0.2)):
        write_run(
            tmp_path, f"T=50__cell=gru__version=warmup__seed={seed}", [1.0 + shift, 0.5 + shift], [0.5, 1.0]
        )
        write_run(tmp_path, f"T=50__cell=gru__version=classic__seed={seed}", [1.0, 0.9], [0.1, 0.1])
    drawn = []
    import matplotlib.axes

    real_plot = matplotlib.axes.Axes.plot

    def spy(axis, xs, ys, *args, **kwargs):
        drawn.append((kwargs.get("label"), list(xs), list(ys)))
        return real_plot(axis, xs, ys, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    output = tmp_path / "curves.png"
    plot_runs.main([str(tmp_path), "--output", str(output)])
    assert output.stat().st_size > 10_000
    assert "4 curves from 4 runs in 2 groups" in capsys.readouterr().out
    warmup_loss = next(d for d in drawn if d[0] == "T=50__cell=gru__version=warmup (n=2)")
    assert warmup_loss[1] == [0, 1] and np.allclose(warmup_loss[2], [1.1, 0.6])  # the mean over seeds


def test_nothing_to_plot_exits_with_a_message(tmp_path, capsys):
    run = tmp_path / "run__0"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test_loss": 1.0, "history": {"epoch": [0]}}))
    with pytest.raises(SystemExit) as stop:
        plot_runs.main([str(run), "--output", str(tmp_path / "x.png")])
    assert stop.value.code == 1 and "nothing to plot" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(SystemExit, match="does not exist"):
        plot_runs.main([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no run directory in"):
        plot_runs.main([str(tmp_path / "empty")])


def test_bench_records_give_episodes_to_optimal_against_the_length_with_misses_at_their_budget(
    tmp_path, monkeypatch, capsys
):
    def record(length: int, seed: int, first: int | None, episodes: int) -> str:
        return json.dumps(
            {
                "variant": "gru-warmup",
                "length": length,
                "seed": seed,
                "first_optimal_episode": first,
                "episodes": episodes,
            }
        )

    short, long = tmp_path / "L100.jsonl", tmp_path / "L500.jsonl"
    short.write_text("\n".join(record(100, seed, first, first) for seed, first in enumerate((100, 300, 200))))
    long.write_text(record(500, 0, 400, 400) + "\n" + record(500, 1, None, 2000) + "\n")
    drawn = []
    import matplotlib.axes

    real_plot = matplotlib.axes.Axes.plot

    def spy(axis, xs, ys, *args, **kwargs):
        drawn.append((args[0] if args else None, xs, ys))
        return real_plot(axis, xs, ys, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    output = tmp_path / "lengths.png"
    plot_runs.main([str(short), str(long), "--output", str(output)])
    assert output.stat().st_size > 10_000
    assert "5 runs of 1 variants at L = 100, 500" in capsys.readouterr().out
    medians = next(d for d in drawn if d[0] == "-")
    assert list(medians[1]) == [100, 500] and list(medians[2]) == [200, 1200]  # the miss counts at 2 000
    assert ("x", 500, 2000.0) in [(d[0], d[1], d[2]) for d in drawn]  # the miss, at its budget
    with pytest.raises(SystemExit, match="not a file of bench_drqn.py records"):
        plot_runs.main([str(tmp_path / "missing.jsonl")])
    long.write_text(record(500, 0, 400, 400) + "\n{not json\n")
    with pytest.raises(SystemExit, match="line 2 of .*L500.jsonl is not a bench_drqn.py record"):
        plot_runs.main([str(long)])
