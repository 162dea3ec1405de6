"""Run directories (``experiments.run_dirs``): a run is found again whatever the spelling of the data
folder, an unreadable file is named, set aside and its run runs again, the committed runs written under
former key names are finished runs, the training commands name their run directories alike, a claim
on a run holds off a second claimer until its holder ends or dies, and a half-written metrics.json is
never a finished run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_grid import ROOT, run_script

from experiments import grid, registry
from experiments.run_dirs import CLAIMS, REPLACED, claimed, run_state, saved_config, write_json


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
    victim = sorted(p for p in root.iterdir() if p.is_dir() and p.name != CLAIMS)[0]
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


HOLDER = """
import sys, time
from experiments.run_dirs import claimed
with claimed(sys.argv[1], "run"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="claims are POSIX locks")
def test_a_claim_waits_for_its_holder_and_is_free_when_the_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        entered = threading.Event()

        def claim() -> None:
            with claimed(tmp_path, "run"):
                entered.set()

        waiter = threading.Thread(target=claim, daemon=True)
        waiter.start()
        assert not entered.wait(1.0), "a second claim got the run while its holder ran"
        with claimed(tmp_path, "other run"):  # claims of other runs are not held off
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a kill -9 leaves no stale claim
        holder.wait()
    assert entered.wait(10.0), "the claim of a killed holder was never released"
    waiter.join()


def test_a_half_written_or_unrenamed_metrics_file_is_never_a_finished_run(tmp_path, monkeypatch):
    """A run killed while writing metrics.json: whatever was written is not taken for finished."""
    run = registry.build_grid("copy", "smoke")[0]
    run_dir = tmp_path / run.name
    run_dir.mkdir()
    write_json(run_dir / "config.json", saved_config(run))
    assert run_state(run, run_dir)[0] == "partial"
    metrics = {"test_loss": 0.25, "best_epoch": 3, "curve": [0.5, 0.25], "diverged": False}
    content = json.dumps(metrics, indent=2)
    for cut in range(len(content)):  # a writer that wrote in place and died after `cut` characters
        (run_dir / "metrics.json").write_text(content[:cut])
        with pytest.warns(UserWarning, match="metrics.json is unreadable"):
            assert run_state(run, run_dir) == ("partial", [])
        assert not (run_dir / "metrics.json").exists()  # set aside: the run runs again

    # write_json writes beside and renames: killed before the rename, there is no metrics.json at all
    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_json(run_dir / "metrics.json", metrics)
    monkeypatch.undo()
    assert not (run_dir / "metrics.json").exists() and run_state(run, run_dir)[0] == "partial"
    write_json(run_dir / "metrics.json", metrics)
    assert run_state(run, run_dir)[0] == "finished"


def test_a_changed_default_of_the_code_is_a_changed_run_and_older_runs_stay_finished(tmp_path, monkeypatch):
    """Each run records the settings its config resolved to (``settings.json``: the defaults filled in); a
    relaunch after a default changed does not take the old run for the new one (a conflict naming the
    default), and runs made before the file existed are still finished runs."""
    from experiments.grid import resolved_settings
    from experiments.run_dirs import SETTINGS_FILE, RunConflictError

    summary = grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False)
    assert summary["ran"] == 2
    root = tmp_path / "copy" / "smoke"
    runs = registry.build_grid("copy", "smoke")
    for run in runs:
        recorded = json.loads((root / run.name / SETTINGS_FILE).read_text())
        assert recorded == resolved_settings(run)
        assert recorded["learning_rate"] == 1e-3  # a default: not in the config
        assert "learning_rate" not in run.config and "logdir" not in recorded
        assert run_state(run, root / run.name, settings=resolved_settings(run)) == ("finished", [])
    original = registry.SETTINGS["supervised"]
    changed = lambda config: {**original(config), "learning_rate": 3e-4}  # noqa: E731
    monkeypatch.setitem(registry.SETTINGS, "supervised", changed)
    state = run_state(runs[0], root / runs[0].name, settings=resolved_settings(runs[0]))
    assert state == ("changed", ["default learning_rate"])
    said = r"default learning_rate differ\) \(a default of the code changed"
    with pytest.raises(RunConflictError, match=said):
        grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False)
    (root / runs[0].name / SETTINGS_FILE).unlink()  # a run made before settings.json was written
    assert run_state(runs[0], root / runs[0].name, settings=resolved_settings(runs[0])) == ("finished", [])


def test_a_field_added_since_a_run_keeps_it_finished_when_its_default_keeps_the_old_behaviour(tmp_path):
    """An option added to ``TMazeConfig`` after a run recorded its ``settings.json`` is absent from that file:
    a relaunch reads it as the value that reproduces the old run (``ADDED_FIELDS``), so the run stays
    finished; a field absent for no such reason (or recorded with another value) stays a changed default."""
    from experiments.grid import resolved_settings
    from experiments.presets import Run
    from experiments.run_dirs import SETTINGS_FILE
    from experiments.tmaze_config import ADDED_FIELDS

    run = Run("tmaze", "tmaze", (("cell", "gru"),), 0, {"length": 20, "seed": 0})
    run_dir = tmp_path / run.name
    run_dir.mkdir()
    write_json(run_dir / "config.json", saved_config(run))
    write_json(run_dir / "metrics.json", {"first_optimal_episode": 100})
    settings = resolved_settings(run)
    assert "gradient_steps_after_optimal" in ADDED_FIELDS and settings["gradient_steps_after_optimal"] is None
    older = {k: v for k, v in settings.items() if k != "gradient_steps_after_optimal"}
    write_json(run_dir / SETTINGS_FILE, older)
    assert run_state(run, run_dir, settings=settings) == ("finished", [])
    write_json(run_dir / SETTINGS_FILE, {**older, "gradient_steps_after_optimal": 40})
    assert run_state(run, run_dir, settings=settings) == ("changed", ["default gradient_steps_after_optimal"])
    write_json(run_dir / SETTINGS_FILE, {k: v for k, v in older.items() if k != "advantage_learning"})
    assert run_state(run, run_dir, settings=settings) == ("changed", ["default advantage_learning"])


# TMazeConfig's fields on 2026-12-07 (commit 4e584b3), when this check was added. Grid runs recorded before
# a field existed lack it in their settings.json: a field added since must be in ADDED_FIELDS (with the value
# that keeps the old runs' behaviour), or in BEHAVIOUR_CHANGING_FIELDS (old runs become changed on purpose).
TMAZE_FIELDS_4E584B3 = set(
    [
        "advantage_learning",
        "average_collects",
        "average_tau",
        "batch_size",
        "best_model_save_path",
        "buffer_size",
        "cell",
        "check_freq",
        "clock",
        "cue_position",
        "device",
        "double_q",
        "env_id",
        "episodes",
        "exploration_final_rate",
        "exploration_fraction",
        "exploration_rate",
        "fixed_point_coef",
        "gamma",
        "give_up_after",
        "gradient_steps",
        "gradient_steps_after_optimal",
        "hidden_size",
        "hold_advantages",
        "hold_coef",
        "hold_coef_after_optimal",
        "hold_drift_coef",
        "hold_ends",
        "hold_steps",
        "init",
        "learning_rate",
        "learning_rate_decay_on_optimal",
        "learning_rate_final",
        "learning_rate_hold_fraction",
        "length",
        "logdir",
        "loss",
        "max_episode_steps",
        "max_grad_norm",
        "max_seconds",
        "n_step_correction",
        "n_steps",
        "num_layers",
        "progress_bar",
        "save_path",
        "seed",
        "stop_when_optimal",
        "target_update_interval",
        "tau",
        "train_mode",
        "use_previous_reward",
        "vaa_interval",
        "vaa_measure_interval",
        "version",
        "warmup_batch_size",
        "warmup_bptt_steps",
        "warmup_c",
        "warmup_held_input",
        "warmup_max_stabilisation",
        "warmup_objective",
        "warmup_steps",
    ]
)
BEHAVIOUR_CHANGING_FIELDS: set[str] = set()


def test_every_field_added_to_the_runner_since_says_how_old_runs_read_it():
    """A field added to ``TMazeConfig`` is either in ``ADDED_FIELDS`` with its default (finished grid runs
    recorded before it stay finished) or named here as one whose default changes what a run does."""
    import dataclasses

    from experiments.tmaze_config import ADDED_FIELDS, TMazeConfig

    fields = {f.name: f.default for f in dataclasses.fields(TMazeConfig)}
    added = set(fields) - TMAZE_FIELDS_4E584B3
    assert added <= set(ADDED_FIELDS) | BEHAVIOUR_CHANGING_FIELDS, added - set(ADDED_FIELDS)
    for name in added & set(ADDED_FIELDS):
        assert fields[name] == ADDED_FIELDS[name], name  # the default keeps the old behaviour
