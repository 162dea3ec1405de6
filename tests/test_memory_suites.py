"""The ``memory-suites`` experiment (issue 22 item 2): DRQN ± warmup and RecurrentPPO ± WarmupCallback on
POPGym and MiniGrid memory tasks. The tests that run an env are skipped when the extra ``memory-suites``
(popgym, minigrid) is absent; the grid, the metric and the import rules are checked without it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from experiments import memory_suites
from experiments.grid import reproduce
from experiments.memory_presets import MEMORY_METHODS, MEMORY_SETTINGS, MEMORY_TASKS, memory_grid
from experiments.memory_suites import make_memory_env, mmer, require_suite, run_memory_suite
from experiments.registry import EXPERIMENTS, RUNNERS, build_grid

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suites() -> None:
    pytest.importorskip("popgym")
    pytest.importorskip("minigrid")


def test_the_suites_are_optional_and_the_library_never_imports_them():
    """Only ``experiments.memory_suites`` imports popgym or minigrid, inside its functions (importing any
    module needs neither); ``recurrent_q``, ``supervised`` and ``tmaze_gym`` never do."""
    suites = {"popgym", "minigrid"}
    for path in [
        *(ROOT / "experiments").rglob("*.py"),
        *(ROOT / p for p in ("recurrent_q", "supervised", "tmaze_gym")),
    ]:
        for file in [path] if path.is_file() else path.glob("*.py"):
            tree = ast.parse(file.read_text())
            imported = {
                (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
                for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names
            }
            top = {
                (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
                for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names
            }
            assert not top & suites, f"{file.relative_to(ROOT)} imports {top & suites} at its top"
            if file.name != "memory_suites.py":
                assert not imported & suites, f"{file.relative_to(ROOT)} imports {imported & suites}"


def test_the_smoke_grid_runs_end_to_end_and_writes_its_table(suites, tmp_path):
    summary = reproduce("memory-suites", "smoke", out=tmp_path, workers=1, progress=False)
    assert summary["runs"] == summary["ran"] == 2 and not summary["diverged"]
    root = tmp_path / "memory-suites" / "smoke"
    text = (root / "results.md").read_text()
    assert "| task | drqn-warmup | rppo-warmup | POPGym GRU (published MMER) |" in text
    assert "| RepeatPreviousEasy |" in text and "MMER" in text
    assert "Command: `python scripts/reproduce.py memory-suites --preset smoke`" in text
    assert (root / "results.png").stat().st_size > 0
    rows = json.loads((root / "results.json").read_text())
    assert {row["method"] for row in rows} == {"drqn-warmup", "rppo-warmup"}
    for run in build_grid("memory-suites", "smoke"):
        metrics = json.loads((root / run.name / "metrics.json").read_text())
        assert metrics["timesteps"] >= metrics["budget"] == MEMORY_SETTINGS["smoke"]["timesteps"]
        assert -1.0 <= metrics["mmer"] <= 1.0 and -1.0 <= metrics["final_return"] <= 1.0
        assert metrics["train_episodes"] > 0 and metrics["eval_episodes"] == 2
        assert list((root / run.name).glob("run_1/events.out.tfevents.*"))  # TensorBoard
    again = reproduce("memory-suites", "smoke", out=tmp_path, workers=1, progress=False)
    assert again["ran"] == 0  # finished runs are not run again


def test_the_small_grid_is_what_the_docs_say():
    runs = build_grid("memory-suites", "small")
    tasks = ("RepeatPreviousEasy", "CountRecallEasy", "AutoencodeEasy", "PositionOnlyCartPoleEasy")
    assert {dict(run.labels)["task"] for run in runs} == {*tasks, "MiniGrid-MemoryS7"}
    assert {MEMORY_TASKS[task]["suite"] for task in tasks} == {"popgym"}
    assert (
        {dict(run.labels)["method"] for run in runs}
        == set(MEMORY_METHODS)
        == {
            "drqn",
            "drqn-warmup",
            "rppo",
            "rppo-warmup",
        }
    )
    assert len(runs) == 5 * 4 * 3 and {run.seed for run in runs} == {0, 1, 2}
    assert len({run.name for run in runs}) == len(runs)
    assert {run.config["timesteps"] for run in runs} == {50_000}  # the same budget for every method
    assert {run.kind for run in runs} == {"memory"} and "memory" in RUNNERS
    assert runs[0].seed == 0 and runs[4 * 5].seed == 1  # seed after seed
    for run in runs:  # each method gets its family's settings
        family = run.config["method"].split("-")[0]
        assert run.config["settings"] == MEMORY_SETTINGS["small"][family]
    readme = (ROOT / "README.md").read_text()
    assert "mm-reproduce memory-suites --preset small" in readme and "50,000 env steps" in readme
    assert set(EXPERIMENTS["memory-suites"].presets) == {"small", "smoke"}
    with pytest.raises(ValueError, match="preset must be one of small, smoke for memory-suites"):
        memory_grid("paper")


def test_a_bad_task_or_method_is_named():
    with pytest.raises(ValueError, match=r"task must be one of 'RepeatPreviousEasy', .*got 'RepeatPrevious'"):
        require_suite("RepeatPrevious")
    with pytest.raises(ValueError, match="task must be one of"):
        run_memory_suite("StatelessCartPoleEasy", "drqn", 0, 10, 1, 1, {})
    with pytest.raises(
        ValueError, match="method must be one of 'drqn', 'drqn-warmup', 'rppo', 'rppo-warmup'"
    ):
        run_memory_suite("RepeatPreviousEasy", "ppo", 0, 10, 1, 1, {})


def test_a_missing_suite_names_the_package_and_the_extra(monkeypatch):
    def no_suite(name: str):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(memory_suites.importlib, "import_module", no_suite)
    with pytest.raises(
        ValueError, match=r"'popgym', which is not installed: pip install \"\.\[memory-suites\]\""
    ):
        make_memory_env("CountRecallEasy")
    with pytest.raises(ValueError, match=r"'minigrid'.*pip install \"\.\[memory-suites\]\""):
        make_memory_env("MiniGrid-MemoryS7")


def test_every_method_sees_the_same_env_and_tuples_and_images_are_made_sb3_friendly(suites):
    autoencode = make_memory_env("AutoencodeEasy")  # Tuple(Discrete(2), Discrete(4)) -> MultiDiscrete
    assert autoencode.observation_space.nvec.tolist() == [2, 4]
    obs, _ = autoencode.reset(seed=0)
    assert autoencode.observation_space.contains(obs)
    minigrid = make_memory_env("MiniGrid-MemoryS7")  # the image alone, channel-first
    obs, _ = minigrid.reset(seed=0)
    assert obs.shape == minigrid.observation_space.shape == (3, 7, 7) and obs.dtype == np.uint8
    for task in MEMORY_TASKS:
        make_memory_env(task).reset(seed=0)


def test_mmer_is_the_best_span_mean_of_the_training_returns():
    best, means, edges = mmer([0.0, 1.0, -1.0, 0.5, 0.25], [10, 40, 60, 90, 120], budget=100, bins=4)
    # spans (0, 25], (25, 50], (50, 75], (75, 100]; the episode past the budget counts in the last one
    assert edges == [25, 50, 75, 100]
    assert means == [0.0, 1.0, -1.0, 0.375]
    assert best == 1.0
    nan, empty, _ = mmer([], [], budget=100, bins=2)
    assert np.isnan(nan) and empty == [None, None]


def test_a_run_is_seeded(suites):
    """The same seed gives the same run (Python, NumPy, torch and the envs seeded)."""
    for run in build_grid("memory-suites", "smoke"):
        config = {**run.config, "timesteps": 200, "eval_episodes": 1}
        first, again = run_memory_suite(**config), run_memory_suite(**config)
        keys = ("mmer", "final_return", "curve", "timesteps", "train_episodes")
        assert {k: first[k] for k in keys} == {k: again[k] for k in keys}, run.name
