"""experiments.statistics: the IQM is the interquartile mean, runs that never reached the target are kept
(censored at the budget), intervals hold their estimate, a method better on every run has probability of
improvement 1, performance profiles count the runs within each threshold, bad input gets a clear error;
importing the module does not need rliable, computing without it names the install command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.statistics import (
    INSTALL,
    Estimate,
    censor,
    compare,
    interval_estimates,
    performance_profiles,
    probability_of_improvement,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = {"reps": 200, "seed": 0}


def test_the_iqm_is_the_mean_of_the_middle_half():
    scores = np.array([7.0, 1000.0, 3.0, 1.0, 6.0, 2.0, 5.0, 4.0])  # 8 runs: 1, 2 and 7, 1000 are cut
    (estimate,) = interval_estimates({"m": scores}, **FAST).values()
    assert estimate.value == pytest.approx((3 + 4 + 5 + 6) / 4)


def test_the_iqm_of_fewer_than_four_runs_is_their_mean():
    (estimate,) = interval_estimates({"m": {0: 1.0, 1: 2.0, 2: 9.0}}, **FAST).values()
    assert estimate.value == pytest.approx(4.0)


def test_the_iqm_pools_runs_and_tasks():
    scores = np.arange(16.0).reshape(8, 2)  # the middle half of 0..15 is 4..11
    assert interval_estimates({"m": scores}, **FAST)["m"].value == pytest.approx(7.5)


def test_censoring_keeps_the_runs_that_never_reached_the_target():
    assert censor([120, None, 35, None], budget=600).tolist() == [120.0, 600.0, 35.0, 600.0]
    never = interval_estimates({"never": censor([None] * 5, budget=600)}, **FAST)["never"]
    assert never == Estimate(600.0, 600.0, 600.0)
    # one of four runs censored: the IQM (the mean of the middle two) moves, the run is not dropped
    some = interval_estimates({"some": censor([100, 200, 300, None], budget=600)}, **FAST)["some"]
    assert some.value == pytest.approx(250.0)


def test_censor_refuses_values_above_the_budget():
    with pytest.raises(ValueError, match="above the budget 300"):
        censor([100, 400], budget=300)
    with pytest.raises(ValueError, match="finite"):
        censor([100], budget=float("inf"))


def test_the_interval_holds_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    scores = {"a": rng.normal(size=10), "b": rng.exponential(size=(6, 3))}
    estimates = interval_estimates(scores, **FAST)
    for estimate in estimates.values():
        assert estimate.low <= estimate.value <= estimate.high
        assert estimate.low < estimate.high
    assert interval_estimates(scores, **FAST) == estimates  # the same seed, the same intervals
    assert interval_estimates({"b": scores["b"]}, **FAST)["b"] == estimates["b"]  # whatever else is computed
    mean = interval_estimates(scores, aggregate="mean", **FAST)["a"]
    assert mean.value == pytest.approx(scores["a"].mean())


def test_a_method_better_on_every_run_improves_with_probability_one():
    fast, slow = {0: 105, 1: 170, 2: 220}, {0: 600, 1: 360, 2: 590}  # episodes: lower is better
    assert probability_of_improvement(fast, slow, lower_is_better=True, **FAST) == Estimate(1.0, 1.0, 1.0)
    assert probability_of_improvement(slow, fast, lower_is_better=True, **FAST) == Estimate(0.0, 0.0, 0.0)
    assert probability_of_improvement(slow, fast, lower_is_better=False, **FAST).value == 1.0
    tie = probability_of_improvement([600, 600], [600, 600], lower_is_better=True, **FAST)
    assert tie == Estimate(0.5, 0.5, 0.5)
    # 2 of the 4 pairs better, 1 tied, 1 worse: (2 + 0.5) / 4
    half = probability_of_improvement([1.0, 3.0], [2.0, 3.0], lower_is_better=True, **FAST)
    assert half.value == pytest.approx(0.625) and half.low <= 0.625 <= half.high


def test_compare_gives_each_method_and_each_pair():
    scores = {"warmup": {0: 105.0, 1: 170.0, 2: 600.0}, "classic": {0: 600.0, 1: 360.0, 2: 600.0}}
    result = compare(scores, [("warmup", "classic")], lower_is_better=True, **FAST)
    assert set(result.estimates) == {"warmup", "classic"}
    assert result.estimates["classic"].value == pytest.approx(520.0)
    # pairs: 105 and 170 beat every classic run, 600 ties two of them and loses to 360
    assert result.improvement["warmup", "classic"].value == pytest.approx((3 + 3 + 1) / 9)


def test_performance_profiles_count_the_runs_within_each_threshold():
    scores = {"m": censor([100, 200, None, 300], budget=600)}
    profile = performance_profiles(scores, [50, 100, 250, 599], lower_is_better=True, **FAST)["m"]
    assert profile.values.tolist() == [0.0, 0.25, 0.5, 0.75]  # the censored run is within no τ < budget
    assert (profile.low <= profile.values).all() and (profile.values <= profile.high).all()
    above = performance_profiles(scores, [150], lower_is_better=False, **FAST)["m"]
    assert above.values.tolist() == [0.75]


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"m": []}, "scores of 'm' are empty"),
        ({"m": {}}, "scores of 'm' are empty"),
        ({}, "give at least one method"),
        ({"m": [1.0, None]}, "censor"),
        ({"m": [1.0, float("nan")]}, "must be finite"),
        ({"m": np.ones((2, 2, 2))}, r"\[runs\] or \[runs, tasks\]"),
    ],
)
def test_bad_scores_get_a_clear_error(scores, message):
    with pytest.raises(ValueError, match=message):
        interval_estimates(scores, **FAST)


def test_bad_comparisons_get_a_clear_error():
    with pytest.raises(ValueError, match=r"same seeds: only 'a' has \[2\], only 'b' has \[3\]"):
        compare({"a": {0: 1, 1: 2, 2: 3}, "b": {0: 1, 1: 2, 3: 3}}, [("a", "b")], lower_is_better=True)
    with pytest.raises(ValueError, match="no scores for method 'c'"):
        compare({"a": [1, 2]}, [("a", "c")], lower_is_better=True)
    with pytest.raises(ValueError, match="'a' has 2 tasks and 'b' 1"):
        compare({"a": np.ones((3, 2)), "b": np.ones(3)}, [("a", "b")], lower_is_better=True)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        interval_estimates({"a": [1.0]}, aggregate="max")
    with pytest.raises(ValueError, match="taus"):
        performance_profiles({"a": [1.0]}, [], lower_is_better=True)


def test_without_rliable_the_module_imports_and_computing_names_the_install():
    code = (
        "import sys; sys.modules['rliable'] = None\n"  # as if rliable were not installed
        "import experiments.statistics as s, experiments.statistics_report, experiments.cli.stats\n"
        "try:\n    s.interval_estimates({'m': [1.0, 2.0]})\n"
        "except ImportError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert INSTALL in done.stdout and INSTALL == 'pip install "multistable-memory[results]"'


def test_the_bootstrap_leaves_numpys_global_generator_as_it_was():
    np.random.seed(123)  # noqa: NPY002 (the global generator is what is tested)
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    interval_estimates({"m": [1.0, 2.0, 3.0, 4.0]}, **FAST)
    assert np.random.random() == expected  # noqa: NPY002
