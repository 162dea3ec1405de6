"""Appendix F's selection (``experiments.selection``, ``mm-select``): the smoke study selects the setting
of lowest mean selection loss over its splits, a relaunch runs nothing, a study cut by a crash resumes to
the same table, and bad arguments are named."""

from __future__ import annotations

import json
import statistics
import sys

import pytest

from experiments import selection
from experiments.cli import select_settings

optuna = pytest.importorskip("optuna", reason="Optuna is the optional extra [sweep]")


def _split_losses(root) -> dict[tuple, list[float]]:
    """Mean selection loss per setting, read back from the runs' own files."""
    losses: dict[tuple, list[float]] = {}
    for metrics_file in sorted((root / "splits").glob("*/metrics.json")):
        config = json.loads((metrics_file.parent / "config.json").read_text())
        key = tuple(config[k] for k in selection.SEARCH_SPACES["smoke"])
        losses.setdefault(key, []).append(json.loads(metrics_file.read_text())["test_loss"])
    return losses


def test_the_smoke_study_selects_the_lowest_mean_selection_loss_and_a_relaunch_runs_nothing(tmp_path, capsys):
    assert (
        select_settings.main(
            ["copy", "--cell", "gru", "--version", "warmup", "--preset", "smoke"]
            + ["--out", str(tmp_path), "--workers", "1", "--no-progress"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    root = tmp_path / "selection" / "copy" / "smoke" / "T=10__cell=gru__version=warmup"
    losses = _split_losses(root)
    assert len(losses) == 2 and all(len(v) == selection.SPLITS["smoke"] for v in losses.values())
    means = {key: statistics.fmean(v) for key, v in losses.items()}
    best = min(means, key=means.get)
    saved = json.loads((root / "selection.json").read_text())
    assert tuple(saved["selected"][k] for k in selection.SEARCH_SPACES["smoke"]) == best
    assert saved["selection_loss"] == pytest.approx(means[best])
    assert [t["selection_loss"] for t in saved["trials"]] == sorted(means.values())
    assert f"selected: {saved['selected']}" in printed and "| trial | num_layers |" in printed
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("metrics.json")}
    again = selection.select("copy", "gru", "warmup", preset="smoke", out=tmp_path, workers=1, progress=False)
    assert again["selected"] == saved["selected"] and again["selection_loss"] == saved["selection_loss"]
    assert {p: p.stat().st_mtime_ns for p in root.rglob("metrics.json")} == stamps  # nothing ran again
    study = optuna.load_study(
        study_name=root.name,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(root / "study.log"))
        ),
    )
    assert len(study.trials) == 2


def test_a_study_cut_by_a_crash_resumes_to_the_same_table(tmp_path):
    """A launch that died in the middle of a trial leaves it RUNNING in the journal: the relaunch runs it
    again and ends with the table of a study never cut."""
    whole = selection.select(
        "copy", "gru", "classic", preset="smoke", out=tmp_path / "whole", workers=1, progress=False
    )
    root = tmp_path / "cut" / "selection" / "copy" / "smoke" / "T=10__cell=gru__version=classic"
    root.mkdir(parents=True)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(root / "study.log"))
    )
    study = optuna.create_study(study_name=root.name, storage=storage, direction="minimize")
    cut = study.ask()  # the trial the crashed launch was running, never told
    cut.suggest_categorical("learning_rate", selection.SEARCH_SPACES["smoke"]["learning_rate"])
    resumed = selection.select(
        "copy", "gru", "classic", preset="smoke", out=tmp_path / "cut", workers=1, progress=False
    )

    def settings_and_losses(summary):
        return [{k: v for k, v in t.items() if k != "number"} for t in summary["trials"]]

    assert settings_and_losses(resumed) == settings_and_losses(whole)
    assert resumed["selected"] == whole["selected"]
    states = [t.state.name for t in optuna.load_study(study_name=root.name, storage=storage).trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 2


def test_with_a_ray_address_ray_tunes_optuna_searcher_drives_the_same_study(tmp_path):
    """Ray Tune's ``OptunaSearch`` asks and tells the study's own journal: the same table as the local
    study, Tune's files in the study's folder, and a relaunch (with Ray or without) runs nothing."""
    pytest.importorskip("ray.tune", reason="Ray Tune is the optional extra [sweep]")
    local = selection.select(
        "copy", "gru", "warmup", preset="smoke", out=tmp_path / "local", workers=1, progress=False
    )
    tuned = selection.select(
        "copy", "gru", "warmup", preset="smoke", out=tmp_path / "tune", ray_address="local", progress=False
    )
    root = tmp_path / "tune" / "selection" / "copy" / "smoke" / "T=10__cell=gru__version=warmup"
    assert (root / "tune" / "trials").is_dir() and (root / "study.log").is_file()
    assert tuned["selected"] == local["selected"]
    for ours, theirs in zip(tuned["trials"], local["trials"], strict=True):  # best first
        assert ours["selection_loss"] == pytest.approx(theirs["selection_loss"], rel=1e-6)
    means = {key: statistics.fmean(v) for key, v in _split_losses(root).items()}
    assert sorted(t["selection_loss"] for t in tuned["trials"]) == pytest.approx(sorted(means.values()))
    assert "not recorded" not in tuned["text"]  # the per-split losses reached the trials
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("metrics.json")}
    again = selection.select("copy", "gru", "warmup", preset="smoke", out=tmp_path / "tune", progress=False)
    assert again["text"] == tuned["text"]
    assert {p: p.stat().st_mtime_ns for p in root.rglob("metrics.json")} == stamps


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"experiment": "tmaze"},
            r"experiment must be one of copy, denoising, psmnist, plsmnist; got 'tmaze'",
        ),
        ({"preset": "huge"}, r"preset must be one of small, paper, smoke; got 'huge'"),
        ({"sampler": "cma"}, r"sampler must be 'grid' or 'tpe'; got 'cma'"),
        ({"sampler": "tpe"}, r"n_trials must be an integer >= 1 with sampler 'tpe'; got None"),
        ({"splits": 0}, r"splits must be an integer >= 1; got 0"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    settings = {"experiment": "copy", "cell": "gru", "version": "classic", "preset": "smoke", "out": tmp_path}
    with pytest.raises(ValueError, match=message):
        selection.select(**(settings | kwargs))
    assert not (tmp_path / "selection").exists() or not any((tmp_path / "selection").rglob("metrics.json"))


def test_the_command_needs_optuna_only_when_it_runs(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install '.\[sweep\]'"):
        selection.select("copy", "gru", "classic", preset="smoke", out=tmp_path)
