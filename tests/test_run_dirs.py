"""Run directories (``experiments.run_dirs``): a run is found again whatever the spelling of the data
folder, an unreadable file is named, set aside and its run runs again, the committed runs written under
former key names are finished runs, and the training commands name their run directories alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_grid import ROOT, run_script

from experiments import grid, registry
from experiments.run_dirs import REPLACED


def test_data_dir_spelling_or_absence_never_touches_a_finished_run(tmp_path):
    """Where the data is read is not part of a run: relative, absolute, trailing slash, omitted."""
    from test_train import write_idx_dir

    write_idx_dir(tmp_path / "mnist", n_train=100, n_test=80)
    out_dir = tmp_path / "out"
    run_script("psmnist", "--preset", "smoke", "--out", str(out_dir), "--data-dir", "mnist", cwd=tmp_path)
    root = out_dir / "psmnist" / "smoke"
    before = {p: p.read_bytes() for p in root.glob("*/metrics.json")}
    assert len(before) == 2
    for spelling in ([str(tmp_path / "mnist")], [str(tmp_path / "mnist") + "/"], ["./mnist/"], []):
        flags = ["--data-dir", *spelling] if spelling else []
        out = run_script("psmnist", "--preset", "smoke", "--out", "out/", *flags, cwd=tmp_path)
        assert "2 runs, 2 already finished" in out
        assert {p: p.read_bytes() for p in root.glob("*/metrics.json")} == before
    assert not (root / REPLACED).exists()


@pytest.mark.parametrize("broken", ["config.json", "metrics.json", "checkpoint.pt"])
def test_an_unreadable_file_is_named_set_aside_and_its_run_runs_again(tmp_path, broken):
    run_script("copy", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1")
    root = tmp_path / "copy" / "smoke"
    victim = sorted(p for p in root.iterdir() if p.is_dir())[0]
    expected = json.loads((victim / "metrics.json").read_text())
    if broken == "checkpoint.pt":  # an interrupted run whose last checkpoint was cut short
        (victim / "metrics.json").unlink()
    (victim / broken).write_bytes((victim / broken).read_bytes()[:37])
    with pytest.warns(UserWarning, match=rf"{broken}.* unreadable"):
        summary = grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False)
    assert summary["ran"] == 1
    again = json.loads((victim / "metrics.json").read_text())
    assert again["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-6)
    assert [p.name.split(".")[0] for p in (root / REPLACED).iterdir()] == [
        victim.name if broken == "config.json" else f"{victim.name}__{broken.split('.')[0]}"
    ]


def test_committed_runs_written_with_former_key_names_are_finished_runs(tmp_path, monkeypatch):
    """``results/vaa-vs-loss/small`` was written when the warmup settings were saved as ``warmup`` (now
    ``warmup_config``) and the network's size as ``layers`` and ``width`` (now ``num_layers`` and
    ``hidden_size``): a relaunch over it recognises every run as finished and runs nothing."""
    committed = ROOT / "results" / "vaa-vs-loss" / "small"
    assert any('"warmup": {' in p.read_text() for p in committed.glob("*/config.json"))
    assert all('"width": 128' in p.read_text() for p in committed.glob("*/config.json"))
    shutil.copytree(committed, tmp_path / "vaa-vs-loss" / "small")
    before = {p: p.read_bytes() for p in (tmp_path / "vaa-vs-loss" / "small").glob("*/metrics.json")}

    def no_run(config, run_dir, resume):
        raise AssertionError(f"{run_dir.name} ran again")

    monkeypatch.setitem(registry.RUNNERS, "supervised", no_run)
    summary = grid.reproduce("vaa-vs-loss", "small", out=tmp_path, workers=1, progress=False)
    assert summary["ran"] == 0 and len(before) == summary["runs"] == 18
    assert {p: p.read_bytes() for p in (tmp_path / "vaa-vs-loss" / "small").glob("*/metrics.json")} == before


class _Stop(Exception):
    """Raised by a stand-in trainer, carrying the config it was given."""


def test_both_training_commands_name_their_runs_with_run_name(tmp_path, monkeypatch):
    """CleanRL's ``{env_id}__{exp_name}__{seed}__{time}``, one helper for ``mm-train-tmaze`` and
    ``mm-train-supervised``."""
    from experiments import run_dirs
    from experiments.cli import train_supervised, train_tmaze

    assert run_dirs.run_name("TMaze-v0", "drqn-gru-warmup-L20", 3, 1700000000) == (
        "TMaze-v0__drqn-gru-warmup-L20__3__1700000000"
    )
    monkeypatch.setattr(run_dirs.time, "time", lambda: 1700000000.75)
    assert run_dirs.run_name("copy", "gru-warmup", 0) == "copy__gru-warmup__0__1700000000"

    def stop(config):
        raise _Stop(config)

    monkeypatch.setattr(train_tmaze, "run_tmaze_experiment", stop)
    with pytest.raises(_Stop) as tmaze:
        train_tmaze.run(["--length", "7", "--cell", "lstm", "--seed", "2", "--runs-dir", str(tmp_path)])
    assert tmaze.value.args[0].logdir == str(tmp_path / "TMaze-v0__drqn-lstm-warmup-L7__2__1700000000")
    monkeypatch.setattr(train_supervised, "train", stop)
    with pytest.raises(_Stop) as supervised:
        train_supervised.run(["--task", "denoising", "--version", "double", "--seed", "4"])
    assert supervised.value.args[0].logdir == str(Path("runs") / "denoising__gru-double__4__1700000000")
