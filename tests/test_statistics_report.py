"""experiments.statistics_report and ``mm-stats``: the per-seed scores read from the committed records (runs
never optimal censored at their budget, never dropped), the page and plots written from them, and the
committed page is what the command writes today (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import stats
from experiments.run_dirs import write_json
from experiments.statistics_common import episodes_within
from experiments.statistics_report import (
    Report,
    episodes_to_optimal,
    grid_runs,
    horizon_score,
    jsonl_records,
    memory_suites,
    trained_budget,
    write_statistics,
)
from experiments.statistics_supervised import supervised
from experiments.statistics_tmaze import drqn_ablation, tmaze_reporting

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def test_the_fig13_scores_keep_the_runs_never_optimal():
    runs = [
        r for r in grid_runs(RESULTS / "tmaze" / "small") if (r["length"], r["version"]) == (50, "classic")
    ]
    assert episodes_to_optimal([r["metrics"] for r in runs], 600) == {0: 360, 1: 590, 2: 600, 3: 600, 4: 600}


def test_the_reporting_records_and_their_budgets():
    records = jsonl_records(RESULTS / "tmaze-reporting" / "L100.jsonl")
    assert trained_budget(records) == 800 and len(records) == 10
    assert episodes_to_optimal(records, 800)[1006] == 800  # never optimal within 800 episodes
    with pytest.raises(ValueError, match="different episode budgets"):
        trained_budget(records + jsonl_records(RESULTS / "tmaze-reporting" / "L20.jsonl"))
    with pytest.raises(ValueError, match="stopped at the first optimal check"):
        trained_budget([{**records[0], "stop_when_optimal": True}])


def test_the_horizon_score_counts_the_longer_corridors_still_optimal():
    root = RESULTS / "horizon" / "small"
    runs = {(r["task"], r.get("length"), r["cell"], r["version"], r["seed"]): r for r in grid_runs(root)}
    assert horizon_score(runs["tmaze", 20, "gru", "double", 2]["metrics"]) == 5  # up to L' = 100 000
    assert horizon_score(runs["tmaze", 20, "gru", "double", 0]["metrics"]) == 2  # L' = 50 and 100
    assert horizon_score(runs["tmaze", 20, "gru", "warmup", 1]["metrics"]) == 0  # never optimal at L


def test_the_command_writes_every_section_from_the_committed_records(tmp_path):
    assert stats.main(["--results", str(RESULTS), "--out", str(tmp_path), "--reps", "10"]) == 0
    page = (tmp_path / "README.md").read_text()
    for title in (
        "T-Maze, Fig. 13",
        "reporting seeds",
        "DRQN ablation",
        "horizon generalisation",
        "Supervised",
    ):
        assert f"## {title}" in page or title in page
    assert "| 200 | classic | 0–4 (5) | 0/5 | 600+, 600+, 600+, 600+, 600+ | 600 [600, 600] |  |" in page
    assert "`mm-stats --reps 10 --seed 0`" in page
    # rounds 17 and 18's L = 200 runs stopped at their first optimal check: no budget to censor at, so named
    named = "stopped at their first optimal check (variants"
    (stopped,) = [line for line in page.splitlines() if named in line]
    for variant in ("gru-classic", "gru-warmup", "gru-warmup-g99", "gru-warmup-g995"):
        assert f"`{variant}`" in stopped
    pngs = sorted(path.name for path in tmp_path.glob("*.png"))
    assert pngs == [
        "drqn-ablation.png",
        "horizon.png",
        "memory-suites.png",
        "supervised.png",
        "tmaze-fig13.png",
        "tmaze-reporting.png",
    ]
    assert all(f"![{Path(name).stem}]({name})" in page for name in pngs)


def test_missing_records_are_named_not_fatal(tmp_path):
    page = write_statistics(tmp_path / "empty", tmp_path / "out").read_text()
    assert "no run under `results/tmaze/small`" in page
    assert "no run under `results/memory-suites/small`" in page
    assert "no record under `results/drqn-ablation`" in page
    assert "copy (long): no run under `results/copy/long`" in page


def test_an_ablation_of_only_stopped_runs_is_named_not_fatal(tmp_path):
    folder = tmp_path / "results" / "drqn-ablation"
    folder.mkdir(parents=True)
    run = {"variant": "gru-warmup-g995", "length": 200, "seed": 0, "episodes": 245}
    (folder / "stopped.jsonl").write_text(json.dumps(run | {"stop_when_optimal": True}) + "\n")
    (tmp_path / "out").mkdir()
    report = Report(tmp_path / "results", tmp_path / "out", reps=10)
    assert drqn_ablation(report) == []
    assert report.left_out == [
        "DRQN ablation: runs that stopped at their first optimal check (variants `gru-warmup-g995`; "
        "their tables are in `docs/drqn-parity.md`)"
    ]


@pytest.mark.slow
def test_the_committed_page_is_what_the_command_writes(tmp_path):
    write_statistics(RESULTS, tmp_path)
    assert (tmp_path / "README.md").read_text() == (RESULTS / "statistics" / "README.md").read_text()


def _memory_run(root: Path, task: str, method: str, seed: int, metrics: dict) -> None:
    run = root / f"task={task}__method={method}__seed={seed}"
    run.mkdir(parents=True)
    write_json(run / "config.json", {"kind": "memory", "task": task, "method": method, "seed": seed})
    write_json(run / "metrics.json", metrics)


def test_the_memory_suites_section_compares_each_method_with_its_warmup(tmp_path):
    # Two tasks, four methods, three seeds: DRQN with warmup above DRQN on every seed of both tasks (P = 1),
    # RecurrentPPO with and without warmup equal (P = 0.5); a diverged run is left out, not scored.
    root = tmp_path / "results" / "memory-suites" / "small"
    mmer = {"drqn": 0.1, "drqn-warmup": 0.5, "rppo": 0.3, "rppo-warmup": 0.3}
    for task in ("RepeatPreviousEasy", "CountRecallEasy"):
        for method, value in mmer.items():
            for seed in range(3):
                metrics = {"mmer": value + 0.01 * seed, "final_return": value, "diverged": False}
                _memory_run(root, task, method, seed, metrics)
    _memory_run(root, "CountRecallEasy", "drqn", 3, {"mmer": None, "final_return": None, "diverged": True})
    (tmp_path / "out").mkdir()
    lines = memory_suites(Report(tmp_path / "results", tmp_path / "out", reps=50))
    rows = {tuple(line.split(" | ")[:2]): line for line in lines if line.startswith("| ")}
    cells = rows["| RepeatPreviousEasy", "drqn-warmup"].strip("| ").split(" | ")
    assert cells[2] == "0.500, 0.510, 0.520" and cells[3].startswith("0.510 [0.50")  # IQM of 3: the mean
    assert cells[4:] == ["0.500 [0.500, 0.500]", "1.00 [1.00, 1.00]"]
    # the diverged run is left out
    assert rows["| CountRecallEasy", "drqn"].split(" | ")[2] == "0.100, 0.110, 0.120"
    assert rows["| CountRecallEasy", "rppo-warmup"].split(" | ")[-1].startswith("0.50 [")  # equal runs: 0.5
    assert rows["| all 2 tasks", "drqn-warmup"].endswith("| 1.00 [1.00, 1.00] |")
    assert rows["| all 2 tasks", "rppo-warmup"].split(" | ")[-1].startswith("0.50 [")
    assert (tmp_path / "out" / "memory-suites.png").is_file()


def test_the_windows_score_optimal_within_and_compare_warmup_with_classic(tmp_path):
    """Warmup runs that trained their budget (600) and classic runs that gave up after the window (300),
    both scored on "optimal within 300": a first optimal check past the window counts as the window, one
    at the window is within it."""
    folder = tmp_path / "results" / "tmaze-reporting"
    folder.mkdir(parents=True)

    def record(seed: int, first: int | None, stop: bool) -> dict:
        episodes = 600 if not stop else (first if first is not None else 300)
        labels = {"seed": seed, "length": 50, "first_optimal_episode": first, "optimal_at_end": True}
        return labels | {
            "episodes": episodes,
            "stop_when_optimal": stop,
            "give_up_after": 300 if stop else None,
        }

    warmup = [record(s, f, False) for s, f in enumerate([100, 200, 350, None])]
    classic = [record(s, f, True) for s, f in enumerate([250, None, None, 300])]
    assert episodes_within(warmup, 300) == {0: 100, 1: 200, 2: 300, 3: 300}
    # a later round's warmup alone, at L = 200 (window 600): its own table, no comparison
    later = [record(s, f, True) | {"length": 200} for s, f in enumerate([590, 610, None])]
    records = (("L50-r10", warmup), ("L50-classic-r10", classic), ("L200-r15", later))
    for name, runs in records:
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    (tmp_path / "out").mkdir()
    lines = tmaze_reporting(Report(tmp_path / "results", tmp_path / "out", reps=50))
    rows = [line for line in lines if line.startswith("| 50 | 300 |")]
    assert rows[0].startswith("| 50 | 300 | warmup | 0–3 (4) | 2/4 | ")
    assert rows[1].startswith("| 50 | 300 | classic | 0–3 (4) | 2/4 | 300 [") and rows[1].endswith(" |  |")
    assert float(rows[0].split(" | ")[-1].split(" [")[0]) > 0.5  # warmup faster on most pairs of seeds
    titles = [line for line in lines if "defaults within the robust-learning windows" in line]
    assert [title.split(" defaults")[0] for title in titles] == ["Round 10's", "Round 15's"]
    (row,) = [line for line in lines if line.startswith("| 200 | 600 |")]
    assert row.startswith("| 200 | 600 | warmup | 0–2 (3) | 1/3 | ") and row.endswith(" |  |")


def _supervised_run(root: Path, config: dict, metrics: dict) -> None:
    name = "__".join(f"{key}={value}" for key, value in config.items() if key not in ("kind", "task"))
    (root / name).mkdir(parents=True)
    write_json(root / name / "config.json", config)
    write_json(root / name / "metrics.json", metrics)


def test_the_supervised_section_compares_versions_at_each_size_and_scores_mnist_by_accuracy(tmp_path):
    # copy at two lengths: the warmup below classic on every seed at T = 300 (P = 1), above it at T = 600
    # (P = 0); psMNIST scored by accuracy, higher is better: the warmup's 0.9 beats classic's 0.5 (P = 1)
    copy, mnist = tmp_path / "results" / "copy" / "long", tmp_path / "results" / "psmnist" / "small"
    for T, (warm, classic) in {300: (0.01, 1.0), 600: (1.0, 0.01)}.items():
        for version, mse in (("classic", classic), ("warmup", warm)):
            for seed in range(3):
                config = {"kind": "supervised", "task": "copy", "T": T, "cell": "gru", "version": version}
                _supervised_run(copy, config | {"seed": seed}, {"test_loss": mse + 0.001 * seed})
    # a second cell at T = 300 whose warmup ran on seed 0 alone (a grid stopped before its end): the cells
    # are pooled on that seed (one run per cell: every resample is the same)
    for version, seeds in (("classic", range(3)), ("warmup", range(1))):
        for seed in seeds:
            config = {"kind": "supervised", "task": "copy", "T": 300, "cell": "lstm", "version": version}
            _supervised_run(copy, config | {"seed": seed}, {"test_loss": 0.5 if version == "warmup" else 1.0})
    for version, accuracy in (("classic", 0.5), ("warmup", 0.9)):
        for seed in range(2):
            config = {"kind": "supervised", "task": "psmnist", "cell": "gru", "version": version}
            metrics = {"test_loss": 1.0, "test_accuracy": accuracy + 0.01 * seed}
            _supervised_run(mnist, config | {"seed": seed}, metrics)
    (tmp_path / "out").mkdir()
    report = Report(tmp_path / "results", tmp_path / "out", reps=50)
    lines = supervised(report, (("copy", "long"), ("psmnist", "small"), ("denoising", "long")))
    assert [line for line in lines if line.startswith("### ")] == [
        "### copy long, T = 300 (`results/copy/long`)",
        "### copy long, T = 600 (`results/copy/long`)",
        "### psmnist small (`results/psmnist/small`)",
    ]
    warmup = [line.strip("| ").split(" | ") for line in lines if line.startswith("| gru | warmup")]
    assert [row[2] for row in warmup] == ["0.01, 0.011, 0.012", "1, 1, 1", "0.9, 0.91"]
    assert [row[4] for row in warmup] == ["1.00 [1.00, 1.00]", "0.00 [0.00, 0.00]", "1.00 [1.00, 1.00]"]
    pooled = [line for line in lines if line.startswith("| all cells (gru, lstm) | warmup")]
    assert pooled == ["| all cells (gru, lstm) | warmup |  | 0.255 [0.255, 0.255] | 1.00 [1.00, 1.00] |"]
    assert "P(higher accuracy than classic)" in "\n".join(lines)
    assert report.left_out == ["denoising (long): no run under `results/denoising/long`"]
    assert (tmp_path / "out" / "supervised.png").is_file()
