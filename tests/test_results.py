"""Results of a grid (``experiments.results``): one row per group of seeds, mean ± std over them, and its
Markdown table."""

from __future__ import annotations

import math

import pytest

from experiments.presets import Run
from experiments.results import markdown_table, summarise


def test_summary_is_mean_and_std_over_seeds():
    runs = [
        Run("tmaze", "tmaze", (("length", 5), ("cell", "gru"), ("version", "warmup")), s, {"seed": s})
        for s in range(3)
    ]
    results = {
        runs[0].name: {"first_optimal_episode": 20, "optimal_at_end": True, "wall_time_s": 1.0},
        runs[1].name: {"first_optimal_episode": 60, "optimal_at_end": True, "wall_time_s": 3.0},
        runs[2].name: {"first_optimal_episode": None, "optimal_at_end": False, "wall_time_s": 2.0},
    }
    (row,) = summarise(runs, results)
    assert row["seeds"] == 3
    assert row["first_optimal_episode"] == (40.0, 20.0)  # over the seeds that reached it
    assert row["first_optimal_episode_reached"] == 2
    assert row["wall_time_s"][0] == pytest.approx(2.0)
    assert row["wall_time_s"][1] == pytest.approx(math.sqrt(2 / 3))
    table = markdown_table([row], "t")
    assert "40 ± 20 (2/3 reached)" in table
