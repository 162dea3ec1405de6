"""The horizon grid's results (``experiments.horizon_results``): a policy no longer optimal at the end of
training is shown in the tables and not evaluated at L'."""

from __future__ import annotations

from experiments.horizon_results import markdown_tables, summarise_horizon
from experiments.registry import build_grid


def test_a_policy_no_longer_optimal_at_the_end_is_shown_and_not_evaluated():
    runs = build_grid("horizon", "train-on")[:3]  # GRU classic, seeds 0, 1, 2
    horizons = [{"length": h, "optimal": h <= 100} for h in run_horizons(runs[0])]
    base = {"episodes": 300, "vaa": 0.5}
    results = {
        # optimal at 40, lost at 100, optimal again from 200 to the end: evaluated
        runs[0].name: {
            **base,
            "first_optimal_episode": 40,
            "optimal_at_end": True,
            "optimal_checks": [40, 45, 50] + list(range(200, 301, 5)),
            "horizons": horizons,
        },
        # optimal at 40 only: not optimal at the end, not evaluated
        runs[1].name: {
            **base,
            "first_optimal_episode": 40,
            "optimal_at_end": False,
            "optimal_checks": [40],
            "horizons": [],
        },
        runs[2].name: {
            **base,
            "first_optimal_episode": None,
            "optimal_at_end": False,
            "optimal_checks": [],
            "horizons": [],
        },
    }
    (row,) = summarise_horizon(runs, results)["tmaze"]
    assert (row["ever_optimal"], row["reached"]) == (2, 1)
    assert row["optimal"] == {50: 1, 100: 1, 1000: 0, 10000: 0, 100000: 0}
    assert row["first_optimal_episode"] == (40.0, 0.0)  # over the ever optimal seeds
    first, second, third = row["runs"]
    keys = ("optimal_checks", "checks_since_first", "last_optimal", "optimal_since")
    assert [first[k] for k in keys] == [24, 53, 300, 200]
    assert [second[k] for k in keys] == [1, 53, 40, None]
    assert [third[k] for k in keys] == [0, 0, None, None]
    text = markdown_tables({"tmaze": [row], "copy": []}, "t")
    assert "| 20 | gru | classic | 3 (0, 1, 2) | 2/3 | 1/3 | 1/1 | 1/1 | 0/1 | 0/1 | 0/1 | 40 ± 0 |" in text
    assert "| 20 | gru | classic | 0 | 40 (300) | ✓ | 24/53 | 300 | 200 | 0.500 | ✓ | ✓ | ✗ | ✗ | ✗ |" in text
    assert "| 20 | gru | classic | 1 | 40 (300) | ✗ | 1/53 | 40 | — | 0.500 | — | — | — | — | — |" in text
    assert "| 20 | gru | classic | 2 | never (300) | ✗ | — | — | — | 0.500 | — | — | — | — | — |" in text


def run_horizons(run) -> list[int]:
    return [int(h) for h in run.config["horizons"]]


def test_the_finished_runs_of_a_grid_moved_to_other_seeds_are_reported(tmp_path):
    """write_finished with first_seed: the runs under <preset>-from-seed-<first_seed> (those of the
    committed report of NBRC's drift recipe), the unfinished ones named, the command with its seeds."""
    import shutil
    from pathlib import Path

    from experiments.horizon_results import write_finished

    name = "hold-nbrc-drift003-from-seed-4000"
    source = Path(__file__).resolve().parents[1] / "results" / "horizon" / name
    shutil.copytree(source, tmp_path / "horizon" / name)
    tables, text = write_finished("hold-nbrc-drift003", tmp_path, first_seed=4000)
    row = next(line for line in text.splitlines() if line.startswith("| 20 | nbrc | classic (drift003) |"))
    assert "| 10 (4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009) | 8/10 | 8/10 |" in row
    assert "not finished: 4003, 4004" in text  # the trained-on runs cut after seed 4002
    written = (tmp_path / "horizon" / name / "results.md").read_text()
    assert written.startswith(text) and "--preset hold-nbrc-drift003 --first-seed 4000`" in written
