"""Temporal horizon generalisation (``experiments.horizon``): the batched greedy rollouts equal the
Gymnasium env's, the check tells a decaying memory from a held one, the copy MSE at T' equals a direct
computation, the grids' presets hold the intended runs, a policy no longer optimal at the end of training
is shown in the tables, and ``scripts/reproduce.py horizon --preset smoke`` writes its tables and plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.horizon import (
    copy_mse,
    copy_test_seed,
    evaluate_supervised,
    load_supervised_run,
    write_corridor_attractors,
)
from experiments.presets import build_grid
from experiments.run_dirs import is_finished
from experiments.tmaze import TMazeConfig
from supervised.datasets import CopyFirstInput
from supervised.train import SupervisedConfig, evaluate, make_model, train

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


# --------------------------------------------------------------------------------------------
# Copy first input at T'
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("copy_run")
    config = SupervisedConfig(
        task="copy",
        T=10,
        cell="gru",
        width=8,
        epochs=2,
        num_train=80,
        num_test=40,
        vaa_iterations=0,
        seed=3,
        logdir=str(logdir),
        progress=False,
    )
    return logdir, train(config)


def test_copy_mse_at_longer_horizons_equals_a_direct_computation(copy_run):
    logdir, result = copy_run
    config, model = load_supervised_run(logdir)
    for name, value in result.model.state_dict().items():  # best.pt holds the reported weights
        assert torch.equal(model.state_dict()[name], value)
    rows = evaluate_supervised(logdir, (10, 25, 63), num_sequences=16, seed=5, chunk=7)
    for row in rows:
        T = row["T"]
        assert row["data_seed"] == copy_test_seed(5, T)
        data = CopyFirstInput(16, T, row["data_seed"])
        direct_config = SupervisedConfig(**{**vars(config), "T": T})
        direct = make_model(direct_config, data)  # readout at step T - 1, whole sequences at once
        direct.load_state_dict(torch.load(logdir / "best.pt", weights_only=True))
        expected, _ = evaluate(direct, data, data.data, data.targets)
        assert row["mse"] == pytest.approx(expected, rel=1e-5)
        assert copy_mse(model, T, 16, row["data_seed"], chunk=T) == pytest.approx(expected, rel=1e-5)
    assert len({round(r["mse"], 6) for r in rows}) == 3


def test_evaluate_supervised_script(copy_run, tmp_path, capsys):
    import evaluate_supervised

    logdir, _ = copy_run
    out = tmp_path / "rows.json"
    rows = evaluate_supervised.main([str(logdir), "--T", "12", "40", "--sequences", "8", "--json", str(out)])
    assert [r["T"] for r in rows] == [12, 40]
    assert json.loads(out.read_text())[1]["mse"] == pytest.approx(rows[1]["mse"])
    assert "test MSE" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="result.json"):
        evaluate_supervised.main([str(tmp_path), "--T", "12"])


# --------------------------------------------------------------------------------------------
# The grids (experiments.presets) and their tables
# --------------------------------------------------------------------------------------------


def test_the_committed_small_grid_is_the_small_preset():
    # every run of `small` is finished under results/horizon/small with the settings it has now
    root = ROOT / "results" / "horizon" / "small"
    runs = build_grid("horizon", "small")
    assert len(runs) == 90 and all(is_finished(run, root) for run in runs)
    tasks = [(r.config["task"], r.config.get("length")) for r in runs]
    assert tasks == [("tmaze", 20)] * 30 + [("copy", None)] * 30 + [("tmaze", 50)] * 30


def test_the_paper_and_smoke_grids():
    paper = build_grid("horizon", "paper")
    assert len(paper) == 3 * 10 * 5 + 10 * 5
    assert [r.config["task"] for r in paper[:50]] == ["tmaze"] * 50
    assert [r.config["task"] for r in paper[50:100]] == ["copy"] * 50
    assert {r.config["length"] for r in paper[100:]} == {50, 100}
    assert all(r.config["stop_when_optimal"] for r in paper if r.config["task"] == "tmaze")
    assert [r.name for r in build_grid("horizon", "smoke")] == [
        "task=tmaze__length=2__cell=gru__version=warmup__seed=0",
        "task=tmaze__length=2__cell=lru__version=classic__seed=0",
        "task=copy__T=10__cell=gru__version=warmup__seed=0",
        "task=copy__T=10__cell=lru__version=classic__seed=0",
    ]
    smoke_copy = build_grid("horizon", "smoke")[2].config
    assert smoke_copy["vaa_steps"] == 20 and smoke_copy["warmup_config"] == {"steps": 5}


def test_the_train_on_grid_is_small_at_l20_trained_to_the_end():
    runs = build_grid("horizon", "train-on")
    pairs = [
        ("gru", "classic"),
        ("gru", "warmup"),
        ("gru", "double"),
        ("lstm", "warmup"),
        ("nbrc", "classic"),
    ]
    assert [(r.config["cell"], r.config["version"], r.seed) for r in runs] == [
        (cell, version, seed) for cell, version in pairs for seed in range(3)
    ]
    small = {r.name: r.config for r in build_grid("horizon", "small")}
    for run in runs:
        assert run.config["task"] == "tmaze" and run.config["length"] == 20 and run.config["episodes"] == 300
        assert run.config == {**small[run.name], "stop_when_optimal": False}  # the rest as in `small`
        tmaze = {k: v for k, v in run.config.items() if k not in ("task", "horizons", "eval_vaa")}
        TMazeConfig(**tmaze)  # unknown or misspelt settings would raise here
    with pytest.raises(ValueError, match="preset must be one of"):
        build_grid("copy", "train-on")
    with pytest.raises(ValueError, match="train-on for horizon"):
        build_grid("horizon", "huge")


# --------------------------------------------------------------------------------------------
# The smoke grid, end to end
# --------------------------------------------------------------------------------------------


def test_reproduce_horizon_smoke_writes_the_tables_and_the_plot(tmp_path):
    import reproduce

    assert (
        reproduce.main(
            ["horizon", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1", "--no-progress"]
        )
        == 0
    )
    root = tmp_path / "horizon" / "smoke"
    text = (root / "results.md").read_text()
    assert (
        "### T-Maze" in text and "### Copy first input" in text and "L'=1,000" in text and "T'=1,000" in text
    )
    assert (root / "results.png").stat().st_size > 10_000
    tables = json.loads((root / "results.json").read_text())
    assert {row["cell"] for row in tables["tmaze"]} == {"gru", "lru"}
    assert all(row["mse"]["1000"] is not None for row in tables["copy"])
    metrics = json.loads(
        (root / "task=tmaze__length=2__cell=gru__version=warmup__seed=0" / "metrics.json").read_text()
    )
    assert metrics["optimal_at_length_batched"] == metrics["optimal_at_end"]
    if metrics["optimal_at_end"]:
        assert [h["length"] for h in metrics["horizons"]] == [2, 10, 1000]
        assert metrics["horizons"][0]["optimal"]  # L' = L: the training check, batched
    assert 0.0 < metrics["vaa"] <= 1.0
    rows = write_corridor_attractors("smoke", out=tmp_path, steps=1000)
    assert [(r["cell"], r["seed"]) for r in rows] == [("gru", 0), ("lru", 0)]
    assert "junction" in (root / "attractors.md").read_text()
