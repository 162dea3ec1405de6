"""experiments.statistics_report and ``mm-stats``: the per-seed scores read from the committed records (runs
never optimal censored at their budget, never dropped), the page and plots written from them, and the
committed page is what the command writes today (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.cli import stats
from experiments.statistics_report import (
    episodes_to_optimal,
    grid_runs,
    horizon_score,
    jsonl_records,
    trained_budget,
    write_statistics,
)

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
    pngs = sorted(path.name for path in tmp_path.glob("*.png"))
    assert pngs == [
        "drqn-ablation.png",
        "horizon.png",
        "supervised.png",
        "tmaze-fig13.png",
        "tmaze-reporting.png",
    ]
    assert all(f"![{Path(name).stem}]({name})" in page for name in pngs)


def test_missing_records_are_named_not_fatal(tmp_path):
    page = write_statistics(tmp_path / "empty", tmp_path / "out").read_text()
    assert "no run under `results/tmaze/small`" in page
    assert "no record under `results/drqn-ablation`" in page


@pytest.mark.slow
def test_the_committed_page_is_what_the_command_writes(tmp_path):
    write_statistics(RESULTS, tmp_path)
    assert (tmp_path / "README.md").read_text() == (RESULTS / "statistics" / "README.md").read_text()
