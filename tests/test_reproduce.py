"""Experiment grids of ``scripts/reproduce.py``: grid contents, tables, and end-to-end runs through
the local executor and (when installed) a local Ray instance, including the skip of finished runs."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce.py"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("reproduce", None)


def run_script(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--no-progress"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("experiment", ["copy", "denoising", "tmaze", "vaa-vs-loss", "psmnist", "plsmnist"])
@pytest.mark.parametrize("preset", ["small", "paper", "smoke"])
def test_grid_names_are_unique_and_seeded(reproduce, experiment, preset):
    runs = reproduce.build_grid(experiment, preset)
    assert runs
    assert len({run.name for run in runs}) == len(runs)
    for run in runs:
        assert run.config["seed"] == run.seed
        assert f"seed={run.seed}" in run.name


def test_paper_grids_follow_the_paper(reproduce):
    copy = reproduce.build_grid("copy", "paper")
    assert {r.config["T"] for r in copy} == {50, 300, 600}
    assert all(
        r.config["width"] == 128 and r.config["layers"] == 1 and r.config["epochs"] == 50 for r in copy
    )
    # warmable cells in three versions, bistable cells classic only
    pairs = {(r.config["cell"], r.config["version"]) for r in copy}
    assert ("gru", "double") in pairs and ("nbrc", "classic") in pairs and ("nbrc", "warmup") not in pairs
    tmaze = reproduce.build_grid("tmaze", "paper")
    assert {r.config["length"] for r in tmaze} == {20, 100, 200}
    denoising = reproduce.build_grid("denoising", "paper")
    assert {(r.config["T"], r.config["N"]) for r in denoising} == {(200, 5), (200, 100)}
    plsmnist = reproduce.build_grid("plsmnist", "paper")
    assert {r.config["N"] for r in plsmnist} == {72, 472}
    assert all(r.config["epochs"] == 70 for r in plsmnist)


def test_bad_experiment_and_preset_are_named(reproduce):
    with pytest.raises(ValueError, match="experiment must be one of"):
        reproduce.build_grid("mnist", "small")
    with pytest.raises(ValueError, match="preset must be one of"):
        reproduce.build_grid("copy", "huge")


def test_summary_is_mean_and_std_over_seeds(reproduce):
    runs = [
        reproduce.Run(
            "tmaze", "tmaze", (("length", 5), ("cell", "gru"), ("version", "warmup")), s, {"seed": s}
        )
        for s in range(3)
    ]
    results = {
        runs[0].name: {"first_optimal_episode": 20, "optimal_at_end": True, "wall_time_s": 1.0},
        runs[1].name: {"first_optimal_episode": 60, "optimal_at_end": True, "wall_time_s": 3.0},
        runs[2].name: {"first_optimal_episode": None, "optimal_at_end": False, "wall_time_s": 2.0},
    }
    (row,) = reproduce.summarise(runs, results)
    assert row["seeds"] == 3
    assert row["first_optimal_episode"] == (40.0, 20.0)  # over the seeds that reached it
    assert row["first_optimal_episode_reached"] == 2
    assert row["wall_time_s"][0] == pytest.approx(2.0)
    assert row["wall_time_s"][1] == pytest.approx(math.sqrt(2 / 3))
    table = reproduce.markdown_table([row], "t")
    assert "40 ± 20 (2/3 reached)" in table


def _check_grid_output(root: Path, runs: int) -> dict[str, float]:
    table = (root / "results.md").read_text()
    assert table.count("| gru |") == runs
    assert (root / "results.png").stat().st_size > 1000
    mtimes = {}
    run_dirs = [d for d in root.iterdir() if d.is_dir()]
    assert len(run_dirs) == runs
    for run_dir in run_dirs:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        config = json.loads((run_dir / "config.json").read_text())
        assert config["cell"] == "gru"
        assert "wall_time_s" in metrics
        assert any(p.name.startswith("events.out.tfevents") for p in run_dir.rglob("*"))
        mtimes[run_dir.name] = (run_dir / "metrics.json").stat().st_mtime_ns
    return mtimes


def test_local_grid_end_to_end_and_relaunch_skips_finished_runs(tmp_path):
    out = run_script("copy", "--preset", "smoke", "--out", str(tmp_path), "--workers", "2")
    assert "2 runs, 0 already finished" in out
    root = tmp_path / "copy" / "smoke"
    before = _check_grid_output(root, runs=2)
    rows = json.loads((root / "results.json").read_text())
    assert {row["version"] for row in rows} == {"classic", "warmup"}
    assert all(math.isfinite(row["test_loss"][0]) for row in rows)
    # crash simulation: one run lost its metrics; the re-launch runs only that one
    lost = sorted(before)[0]
    (root / lost / "metrics.json").unlink()
    out = run_script("copy", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1")
    assert "2 runs, 1 already finished" in out
    after = _check_grid_output(root, runs=2)
    for name, mtime in before.items():
        assert (after[name] == mtime) == (name != lost)
    # a run made with another config (an older grid definition) is not taken as finished: it runs again
    changed = root / lost / "config.json"
    changed.write_text(changed.read_text().replace('"epochs": 1', '"epochs": 99'))
    out = run_script("copy", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1")
    assert "2 runs, 1 already finished" in out
    assert '"epochs": 1' in changed.read_text()


def test_ray_grid_end_to_end(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra [sweep]")
    out = run_script("tmaze", "--preset", "smoke", "--out", str(tmp_path), "--ray-address", "local")
    assert "2 runs, 0 already finished" in out
    root = tmp_path / "tmaze" / "smoke"
    before = _check_grid_output(root, runs=2)
    assert "first_optimal_episode" in (root / "results.md").read_text()
    # results collected by Ray are skipped by the local executor too: same files, same layout
    out = run_script("tmaze", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1")
    assert "2 runs, 2 already finished" in out
    assert _check_grid_output(root, runs=2) == before
