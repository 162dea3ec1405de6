"""Temporal horizon generalisation (``experiments.horizon``): the copy MSE at T' equals a direct
computation (also through ``scripts/evaluate_supervised.py``), and ``scripts/reproduce.py horizon --preset
smoke`` trains, evaluates and writes its tables, its plot and the corridor attractors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.cli import evaluate_supervised as evaluate_supervised_command
from experiments.cli import reproduce
from experiments.horizon import (
    copy_mse,
    copy_test_seed,
    evaluate_supervised,
    load_supervised_run,
    write_corridor_attractors,
)
from supervised.datasets import CopyFirstInput
from supervised.train import SupervisedConfig, evaluate, make_model, train

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
        hidden_size=8,
        epochs=2,
        num_train=80,
        num_test=40,
        vaa_iterations=0,
        seed=3,
        logdir=str(logdir),
        progress_bar=False,
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
    logdir, _ = copy_run
    out = tmp_path / "rows.json"
    flags = ["--T", "12", "40", "--sequences", "8", "--json", str(out)]
    rows = evaluate_supervised_command.run([str(logdir), *flags])
    assert [r["T"] for r in rows] == [12, 40]
    assert json.loads(out.read_text())[1]["mse"] == pytest.approx(rows[1]["mse"])
    assert "test MSE" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="result.json"):
        evaluate_supervised_command.run([str(tmp_path), "--T", "12"])
    # the command: a missing, cut or damaged run is one error line naming the file, exit 2
    broken = tmp_path / "broken"
    shutil.copytree(logdir, broken)
    (broken / "best.pt").write_bytes((logdir / "best.pt").read_bytes()[:100])
    damaged = tmp_path / "damaged"
    shutil.copytree(logdir, damaged)
    (damaged / "result.json").write_text("{not json")
    capsys.readouterr()
    for run_dir, file in ((tmp_path / "none", "result.json"), (broken, "best.pt"), (damaged, "result.json")):
        assert evaluate_supervised_command.main([str(run_dir), "--T", "12"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {run_dir / file}") and err.count("\n") == 1


# --------------------------------------------------------------------------------------------
# The smoke grid, end to end
# --------------------------------------------------------------------------------------------


def test_reproduce_horizon_smoke_writes_the_tables_and_the_plot(tmp_path):
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
