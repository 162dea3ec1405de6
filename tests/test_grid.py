"""The grid engine (``experiments.grid``, behind ``scripts/reproduce.py``): end-to-end runs through the
local executor and (when installed) a local Ray instance, relaunches that skip finished runs and never
delete one, diverged runs, a grid killed at random points, two launches on one ``--out``, and a Ray
cluster of two nodes that loses a node or a worker in the middle of a grid."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import grid, registry
from experiments.cli import reproduce as reproduce_command
from experiments.presets import Run
from experiments.run_dirs import CLAIMS, REPLACED

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce.py"


def run_script(*args: str, status: int = 0, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--no-progress"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
    assert done.returncode == status, done.stderr[-3000:]
    return done.stdout + done.stderr


def _check_grid_output(root: Path, runs: int) -> dict[str, float]:
    table = (root / "results.md").read_text()
    assert table.count("| gru |") == runs
    assert (root / "results.png").stat().st_size > 1000
    mtimes = {}
    run_dirs = [d for d in root.iterdir() if d.is_dir() and d.name not in (REPLACED, CLAIMS)]
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
    # a run made with other settings (an older grid definition) stops the grid, names the run and the
    # keys, and runs nothing; --restart-changed moves it aside (never deletes it) and runs it again
    changed = root / lost / "config.json"
    changed.write_text(changed.read_text().replace('"epochs": 1', '"epochs": 99'))
    old_metrics = (root / lost / "metrics.json").read_text()
    out = run_script("copy", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1", status=2)
    assert f"run {lost}" in out and "(epochs differ)" in out and "--restart-changed" in out
    assert '"epochs": 99' in changed.read_text() and (root / lost / "metrics.json").read_text() == old_metrics
    out = run_script(
        "copy", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1", "--restart-changed"
    )
    assert "2 runs, 1 already finished" in out
    assert '"epochs": 1' in changed.read_text()
    (aside,) = (root / REPLACED).iterdir()
    assert aside.name.startswith(lost) and (aside / "metrics.json").read_text() == old_metrics


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


def _smoke_runs() -> list:
    return registry.build_grid("copy", "smoke")


def test_a_diverged_run_is_counted_and_written_as_valid_json(tmp_path, monkeypatch, capsys):
    losses = iter([(0.5, 0.4), (math.nan, math.inf)])

    def fake_runner(config, run_dir, resume):
        test, val = next(losses)
        return {"test_loss": test, "test_accuracy": None, "best_epoch": 1, "best_val_loss": val}

    monkeypatch.setitem(registry.RUNNERS, "supervised", fake_runner)
    first = _smoke_runs()[0]
    same_group = [  # two seeds of one group
        Run(first.experiment, first.kind, first.labels, s, {**first.config, "seed": s}) for s in (0, 1)
    ]
    monkeypatch.setattr(grid, "build_grid", lambda *args: same_group)
    summary = grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False)
    root = tmp_path / "copy" / "smoke"
    assert summary["diverged"] == [same_group[1].name]
    strict = {"parse_constant": lambda name: pytest.fail(f"{name} is not JSON")}
    diverged = json.loads((root / same_group[1].name / "metrics.json").read_text(), **strict)
    assert diverged["diverged"] is True and diverged["test_loss"] is None
    assert diverged["non_finite"] == ["best_val_loss", "test_loss"]
    fine = json.loads((root / same_group[0].name / "metrics.json").read_text(), **strict)
    assert fine["diverged"] is False and fine["test_loss"] == 0.5 and "non_finite" not in fine
    (row,) = json.loads((root / "results.json").read_text(), **strict)
    assert row["seeds"] == 2 and row["diverged"] == 1 and row["test_loss_reached"] == 1
    assert row["test_loss"] == [0.5, 0.0]  # the mean is over the run that did not diverge
    assert "0.5 ± 0 (1/2, 1 diverged)" in (root / "results.md").read_text()
    assert "1 of 2 runs diverged" in capsys.readouterr().out


def test_a_run_whose_trainer_raises_floating_point_error_is_a_diverged_run_and_the_grid_goes_on(
    tmp_path, monkeypatch
):
    def fake_runner(config, run_dir, resume):
        if config["seed"] == 1:
            raise FloatingPointError("warmup step 12: the Adam update made parameter 'w' non-finite")
        return {"test_loss": 0.5, "test_accuracy": None, "best_epoch": 1, "best_val_loss": 0.4}

    monkeypatch.setitem(registry.RUNNERS, "supervised", fake_runner)
    first = _smoke_runs()[0]
    runs = [Run(first.experiment, first.kind, first.labels, s, {**first.config, "seed": s}) for s in range(3)]
    monkeypatch.setattr(grid, "build_grid", lambda *args: runs)
    summary = grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False)
    root = tmp_path / "copy" / "smoke"
    assert summary["ran"] == 3 and summary["diverged"] == [runs[1].name]  # the runs after it ran too
    diverged = json.loads((root / runs[1].name / "metrics.json").read_text())
    assert diverged["diverged"] is True and diverged["non_finite"] == ["raised"]
    assert (
        diverged["error"]
        == "FloatingPointError: warmup step 12: the Adam update made parameter 'w' non-finite"
    )
    assert "0.5 ± 0 (2/3, 1 diverged)" in (root / "results.md").read_text()


def test_the_script_exits_non_zero_when_a_run_diverged(monkeypatch, tmp_path):
    monkeypatch.setattr(reproduce_command, "reproduce", lambda **kwargs: {"diverged": ["a"]})
    assert reproduce_command.main(["copy", "--out", str(tmp_path)]) == 1
    monkeypatch.setattr(reproduce_command, "reproduce", lambda **kwargs: {"diverged": []})
    assert reproduce_command.main(["copy", "--out", str(tmp_path)]) == 0


def _metrics_files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.glob("*/metrics.json")}


def _table(root: Path) -> list[dict]:
    """results.json without the timings."""
    rows = json.loads((root / "results.json").read_text())
    return [{k: v for k, v in row.items() if not k.startswith(("wall_time", "cpu_time"))} for row in rows]


def test_a_grid_killed_at_random_points_ends_as_an_uninterrupted_one(tmp_path):
    """kill -9 of the grid (workers included or not) at random times, relaunched with other spellings
    of --out: no worker outlives the grid, no finished metrics.json ever changes, same final table."""
    run_script("copy", "--preset", "smoke", "--out", str(tmp_path / "straight"), "--workers", "2")
    expected = _table(tmp_path / "straight" / "copy" / "smoke")
    killed = tmp_path / "killed"
    root = killed / "copy" / "smoke"
    spellings = [str(killed), str(killed) + "/", "killed", "./killed/", "killed/../killed"]
    rng = random.Random(0)
    seen: dict[Path, bytes] = {}
    for attempt in range(5):
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "copy", "--preset", "smoke", "--out", spellings[attempt]]
            + ["--workers", "2", "--no-progress"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(1.0, 9.0))
        os.kill(process.pid, signal.SIGKILL)  # the grid only: its workers must notice and stop
        process.wait()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("worker processes outlived the killed grid")
        for path, content in _metrics_files(root).items():
            assert seen.setdefault(path, content) == content, f"{path} changed after it was finished"
    run_script("copy", "--preset", "smoke", "--out", "killed//", "--workers", "2", cwd=tmp_path)
    for path, content in seen.items():
        assert path.read_bytes() == content
    assert _table(root) == expected


WORKER_SCRIPT = """
import multiprocessing as mp, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from experiments.grid import exit_with_parent

if __name__ == "__main__":
    watch = {"initializer": exit_with_parent, "initargs": (os.getpid(),)} if sys.argv[1] == "1" else {}
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), **watch) as pool:
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 60).result()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to tell a zombie")
@pytest.mark.parametrize("watched", [True, False])
def test_a_worker_ends_when_the_grid_is_killed(tmp_path, watched):
    """The grid's workers watch their parent: after kill -9 of the grid, a worker in the middle of a
    (60 s) run is gone within seconds; without the watch it would go on (the control case)."""
    script = tmp_path / "pool.py"
    script.write_text(WORKER_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), "1" if watched else "0"], stdout=subprocess.PIPE, text=True
    )
    worker = int(process.stdout.readline())
    time.sleep(0.5)  # the worker is inside time.sleep(60)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.time() + 5
    alive = True
    while alive and time.time() < deadline:
        time.sleep(0.1)
        try:
            os.kill(worker, 0)
            alive = Path(f"/proc/{worker}/status").read_text().find("State:\tZ") < 0
        except (ProcessLookupError, FileNotFoundError):
            alive = False
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert alive != watched


def test_a_grid_from_another_first_seed(monkeypatch, tmp_path):
    """--first-seed 1000: the same grid on seeds never used for a choice, in its own folder."""
    seen = []

    def fake_runner(config, run_dir, resume):
        seen.append(config["seed"])
        return {"test_loss": 0.5, "test_accuracy": None, "best_epoch": 1, "best_val_loss": 0.5}

    monkeypatch.setitem(registry.RUNNERS, "supervised", fake_runner)
    summary = grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False, first_seed=1000)
    base = [run.seed for run in _smoke_runs()]
    assert sorted(seen) == sorted(s + 1000 for s in base) and summary["runs"] == len(base)
    root = tmp_path / "copy" / "smoke-from-seed-1000"
    assert sorted(p.name.rsplit("seed=", 1)[1] for p in root.glob("*seed=*")) == sorted(
        str(s + 1000) for s in base
    )
    assert "--first-seed 1000" in (root / "results.md").read_text()
    assert not (tmp_path / "copy" / "smoke").exists()
    with pytest.raises(ValueError, match="first_seed"):
        grid.reproduce("copy", "smoke", out=tmp_path, workers=1, progress=False, first_seed=-1)
    assert reproduce_command.Args("copy").first_seed == 0


def _event_files(root: Path) -> dict[str, int]:
    runs = [d for d in root.iterdir() if d.is_dir() and d.name not in (REPLACED, CLAIMS)]
    return {d.name: len(list(d.rglob("events.out.tfevents*"))) for d in runs}


def test_two_launches_on_one_out_run_each_run_once(tmp_path):
    """Two launches of one grid on one --out at once: both end with the whole table, equal to a grid
    run alone, and each run ran once (as many TensorBoard files as alone, nothing set aside)."""
    run_script("copy", "--preset", "smoke", "--out", str(tmp_path / "alone"), "--workers", "1")
    alone = tmp_path / "alone" / "copy" / "smoke"
    command = [sys.executable, str(SCRIPT), "copy", "--preset", "smoke", "--out", str(tmp_path / "both")]
    launches = [
        subprocess.Popen(command + ["--workers", "2", "--no-progress"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [launch.communicate(timeout=600)[0] for launch in launches]
    assert [launch.returncode for launch in launches] == [0, 0], outputs
    root = tmp_path / "both" / "copy" / "smoke"
    assert _table(root) == _table(alone)
    assert _event_files(root) == _event_files(alone)
    assert not (root / REPLACED).exists()
    assert sum("finished meanwhile by another launch" in out for out in outputs) >= 1, outputs


RAY_GRID_TIMEOUT = 600


def _ray_run_workers() -> dict[int, int]:
    """The processes of Ray workers that execute a run: pid -> parent pid (the raylet of their node)."""
    found = subprocess.run(["pgrep", "-f", "ray::execute_run"], capture_output=True, text=True).stdout.split()
    workers = {}
    for pid in map(int, found):
        with contextlib.suppress(FileNotFoundError, IndexError, ValueError):  # ended meanwhile
            # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces
            workers[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's worker processes in /proc")
@pytest.mark.parametrize("fault", ["worker node", "worker process"])
def test_a_ray_grid_on_two_nodes_survives_a_lost_node_or_worker(tmp_path, fault):
    """A Ray cluster of two nodes on this machine (Ray's own cluster utilities), a grid of two runs. While
    a run executes on the worker node, that node is removed (its raylet and workers killed), or every
    worker executing a run is killed. Ray runs the lost runs again; the grid finishes with the table of
    an uninterrupted grid."""
    pytest.importorskip("ray", reason="Ray is the optional extra [sweep]")
    from ray.cluster_utils import Cluster

    run_script("copy", "--preset", "smoke", "--out", str(tmp_path / "straight"), "--workers", "1")
    expected = _table(tmp_path / "straight" / "copy" / "smoke")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        worker_node = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        raylet = worker_node.all_processes["raylet"][0].process.pid
        grid = subprocess.Popen(
            [sys.executable, str(SCRIPT), "copy", "--preset", "smoke", "--out", str(tmp_path / "faulty")]
            + ["--ray-address", cluster.address, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        root = tmp_path / "faulty" / "copy" / "smoke"
        deadline = time.time() + RAY_GRID_TIMEOUT
        while time.time() < deadline and grid.poll() is None:
            workers = _ray_run_workers()
            on_worker_node = [pid for pid, parent in workers.items() if parent == raylet]
            if on_worker_node if fault == "worker node" else workers:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no run was ever executed on the worker node")
        finished_before = len(list(root.glob("*/metrics.json")))
        if fault == "worker node":
            cluster.remove_node(worker_node, allow_graceful=False)
        else:
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        output = grid.communicate(timeout=RAY_GRID_TIMEOUT)[0]
        assert grid.returncode == 0, output[-3000:]
    finally:
        cluster.shutdown()
    assert finished_before < 2, "both runs had ended before the fault: nothing was tested"
    assert "will be retried" in output or "retries remaining" in output, output[-3000:]
    assert _table(root) == expected
    assert len(list(root.glob("*/metrics.json"))) == 2


def test_write_finished_tables_the_finished_runs_of_a_stopped_grid_and_runs_nothing(tmp_path, capsys):
    first, second = _smoke_runs()[:2]
    assert first.group != second.group
    # nothing finished: nothing written, no folder made
    summary = grid.reproduce("copy", "smoke", out=tmp_path, progress=False, write_finished=True)
    assert summary["ran"] == 0 and summary["table"] is None and not (tmp_path / "copy").exists()
    assert "0 of 2 runs finished" in capsys.readouterr().out
    # one run finished (run inline as a grid of that run would), the other never started
    root = tmp_path / "copy" / "smoke"
    grid.execute_run(first, str(root))
    args = ["copy", "--preset", "smoke", "--out", str(tmp_path), "--write-finished"]
    assert reproduce_command.main(args) == 0
    assert "1 of 2 runs finished" in capsys.readouterr().out
    assert not (root / second.name).exists()  # not run
    rows = json.loads((root / "results.json").read_text())
    assert [(row["version"], row["seeds"]) for row in rows] == [(dict(first.labels)["version"], 1)]
    assert (root / "results.png").is_file() and "Command: `python scripts/reproduce.py copy" in (
        root / "results.md"
    ).read_text()
    assert reproduce_command.main([*args, "--dry-run"]) == 2
    assert "--dry-run and --write-finished are exclusive" in capsys.readouterr().err


def test_a_dry_run_lists_and_counts_the_runs_and_runs_nothing(tmp_path, capsys):
    summary = grid.reproduce("copy", "smoke", out=tmp_path, progress=False, dry_run=True)
    out = capsys.readouterr().out
    runs = _smoke_runs()
    assert summary == {"runs": len(runs), "ran": 0, "diverged": [], "table": None}
    assert "dry run, nothing is run" in out and f"still to run: {len(runs)} of {len(runs)} runs" in out
    assert not (tmp_path / "copy").exists()  # no folder made
    assert reproduce_command.main(["copy", "--preset", "smoke", "--dry-run", "--rate", "0"]) == 2
    assert "--rate must be a number > 0" in capsys.readouterr().err
    assert reproduce_command.main(["copy", "--workers", "0"]) == 2
    capsys.readouterr()
    # a preset that this experiment does not have: its presets named, no traceback, nothing made
    assert reproduce_command.main(["memory-suites", "--preset", "paper", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: preset must be one of small, smoke for memory-suites; got 'paper'")
    assert "Traceback" not in err and not (tmp_path / "memory-suites").exists()
