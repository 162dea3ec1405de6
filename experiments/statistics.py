"""Statistics of few-seed results, computed by rliable: the interquartile mean (IQM) of each method's
per-seed scores with a 95 % stratified bootstrap confidence interval, the probability that one method
improves on another (with its interval) and performance profiles (the fraction of runs that score better
than τ, for every τ, with pointwise intervals).

Scores are given per method, as a mapping seed → score (or seed → one score per task), or as an array of
shape ``[runs]`` or ``[runs, tasks]``. Every number must be finite: a run that never reached the target is
kept, *censored* at the budget (:func:`censor`: its episodes to the optimal policy are the episode
budget), never dropped. Two methods compared on seed mappings must have the same seeds. Every bootstrap
starts from ``seed`` afresh, for each method and each pair, so an estimate does not depend on what else
is computed and the tables are reproducible (NumPy's global generator, which rliable's bootstraps draw
from, is seeded for the call and given back its state after it).

rliable is the extra ``results`` (``pip install "multistable-memory[results]"``); importing this module
does not need it, computing does (:class:`ImportError` naming that command otherwise).

IQM is rliable's ``metrics.aggregate_iqm``, SciPy's ``trim_mean(·, 0.25)`` over all runs and tasks: it
drops ⌊n/4⌋ scores at each end of the n scores, so with fewer than 4 runs it is the plain mean.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

REPS = 2000
"""Bootstrap replications by default."""
CONFIDENCE = 0.95
INSTALL = 'pip install "multistable-memory[results]"'
AGGREGATES = ("iqm", "mean", "median")

Scores = Mapping[int, Any] | Sequence[Any] | np.ndarray
"""One method's scores: seed → score (or seed → scores per task), or an array `[runs]` or `[runs, tasks]`."""


class Estimate(NamedTuple):
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float


class Comparison(NamedTuple):
    """:func:`compare`'s answer: an :class:`Estimate` per method, and per compared pair ``(x, y)`` the
    probability that a run of x is better than a run of y."""

    estimates: dict[str, Estimate]
    improvement: dict[tuple[str, str], Estimate]


class Profile(NamedTuple):
    """A performance profile: at each threshold ``taus[i]``, the fraction ``values[i]`` of runs better than
    it (``low[i]``, ``high[i]``: its pointwise confidence interval)."""

    taus: np.ndarray
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _rliable() -> tuple[Any, Any]:
    """rliable's ``library`` and ``metrics``, or an ImportError that says how to install them."""
    try:
        from rliable import library, metrics
    except (ImportError, TypeError) as error:  # TypeError: an arch release that does not work with pandas
        raise ImportError(f"the statistics need rliable and its dependencies: {INSTALL} ({error})") from error
    return library, metrics


def censor(values: Sequence[float | None], budget: float) -> np.ndarray:
    """``values`` (e.g. episodes to the optimal policy, None for a run that never reached it) with every None
    replaced by ``budget``: runs that never got there count as reaching it at the budget, not as missing.

    :raises ValueError: a value above the budget, or a budget that is not a finite number.
    """
    if not np.isfinite(budget):
        raise ValueError(f"budget must be a finite number, got {budget!r}")
    censored = np.array([budget if value is None else value for value in values], dtype=float)
    if (censored > budget).any():
        raise ValueError(f"values above the budget {budget}: {sorted(set(censored[censored > budget]))}")
    return censored


def _matrix(name: str, scores: Scores) -> tuple[tuple[int, ...] | None, np.ndarray]:
    """The seeds (None when not given) and the scores of method ``name`` as an array ``[runs, tasks]``."""
    seeds = None
    if isinstance(scores, Mapping):
        seeds = tuple(sorted(scores))
        scores = [scores[seed] for seed in seeds]
    try:
        array = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"scores of {name!r} must be numbers (a run that never reached the target: censor() it at "
            f"the budget), got {scores!r}"
        ) from error
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"scores of {name!r} must be [runs] or [runs, tasks], got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"scores of {name!r} are empty: at least one run is needed")
    if not np.isfinite(array).all():
        raise ValueError(
            f"scores of {name!r} must be finite (a run that never reached the target: censor() it at the "
            f"budget), got {array.ravel().tolist()}"
        )
    return seeds, array


def _pair(x: str, y: str, scores: Mapping[str, Scores]) -> tuple[np.ndarray, np.ndarray]:
    """The matrices of methods ``x`` and ``y``, checked to be comparable (same seeds, same tasks)."""
    for name in (x, y):
        if name not in scores:
            raise ValueError(f"no scores for method {name!r}; the methods are {sorted(scores)}")
    (seeds_x, scores_x), (seeds_y, scores_y) = _matrix(x, scores[x]), _matrix(y, scores[y])
    if seeds_x is not None and seeds_y is not None and seeds_x != seeds_y:
        raise ValueError(
            f"{x!r} and {y!r} must be compared on the same seeds: only {x!r} has "
            f"{sorted(set(seeds_x) - set(seeds_y))}, only {y!r} has {sorted(set(seeds_y) - set(seeds_x))}"
        )
    if scores_x.shape[1] != scores_y.shape[1]:
        raise ValueError(
            f"{x!r} has {scores_x.shape[1]} tasks and {y!r} {scores_y.shape[1]}: they must match"
        )
    return scores_x, scores_y


def _bootstrap(
    data: np.ndarray | list[np.ndarray], func: Any, reps: int, seed: int, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """rliable's ``get_interval_estimates`` of ``func`` on one method's ``data`` (a list: independent
    samples): the point estimate and the interval ``[2, ...]`` (lower bounds first)."""
    library, _ = _rliable()
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    # rliable's stratified bootstraps draw their indices from NumPy's global generator whatever random_state
    # they get: it is seeded for the call, and the caller's state put back after it
    state = np.random.get_state()  # noqa: NPY002 (the generator rliable draws from)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():  # arch deprecates the RandomState that rliable passes it
            warnings.filterwarnings("ignore", category=FutureWarning, module="arch")
            points, intervals = library.get_interval_estimates(
                {"x": data},
                func,
                reps=reps,
                confidence_interval_size=confidence,
                random_state=np.random.RandomState(seed),
            )
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return np.asarray(points["x"], dtype=float), np.asarray(intervals["x"], dtype=float)


def interval_estimates(
    scores: Mapping[str, Scores],
    *,
    aggregate: str = "iqm",
    reps: int = REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Estimate]:
    """The ``aggregate`` (``iqm``, ``mean`` or ``median``, rliable's ``metrics.aggregate_*``) of each method's
    runs and tasks, with its stratified bootstrap confidence interval (runs resampled within each task)."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    if not scores:
        raise ValueError("scores are empty: give at least one method")
    _, metrics = _rliable()
    function = getattr(metrics, f"aggregate_{aggregate}")
    estimates = {}
    for name, method_scores in scores.items():
        _, matrix = _matrix(name, method_scores)
        point, interval = _bootstrap(matrix, lambda s: np.array([function(s)]), reps, seed, confidence)
        estimates[name] = Estimate(float(point[0]), float(interval[0, 0]), float(interval[1, 0]))
    return estimates


def probability_of_improvement(
    x: Scores,
    y: Scores,
    *,
    lower_is_better: bool,
    reps: int = REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    names: tuple[str, str] = ("x", "y"),
) -> Estimate:
    """P(a run of x is better than a run of y), ties counting one half, averaged over tasks (rliable's
    ``metrics.probability_of_improvement``, a Mann-Whitney U statistic), with its bootstrap interval (the
    runs of x and of y resampled independently, within each task). 1 when every run of x is better than
    every run of y; ``lower_is_better`` for episodes or losses; ``names``: those of x and y in errors."""
    scores_x, scores_y = _pair(*names, dict(zip(names, (x, y), strict=True)))
    _, metrics = _rliable()
    sign = -1.0 if lower_is_better else 1.0  # rliable counts the larger score as the better one
    point, interval = _bootstrap(
        [sign * scores_x, sign * scores_y],
        lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
        reps,
        seed,
        confidence,
    )
    return Estimate(float(point[0]), float(interval[0, 0]), float(interval[1, 0]))


def compare(
    scores: Mapping[str, Scores],
    pairs: Sequence[tuple[str, str]] = (),
    *,
    lower_is_better: bool,
    aggregate: str = "iqm",
    reps: int = REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Each method's :func:`interval_estimates` (IQM by default) and, for each pair ``(x, y)`` of
    ``pairs``, the :func:`probability_of_improvement` of x over y.

    >>> c = compare({"warmup": {0: 105, 1: 170}, "classic": {0: 600, 1: 360}}, [("warmup", "classic")],
    ...             lower_is_better=True, reps=200)
    >>> c.improvement["warmup", "classic"].value
    1.0
    """
    for x, y in pairs:
        _pair(x, y, scores)
    options = {"reps": reps, "seed": seed, "confidence": confidence}
    return Comparison(
        interval_estimates(scores, aggregate=aggregate, **options),
        {
            (x, y): probability_of_improvement(
                scores[x], scores[y], lower_is_better=lower_is_better, names=(x, y), **options
            )
            for x, y in pairs
        },
    )


def performance_profiles(
    scores: Mapping[str, Scores],
    taus: Sequence[float] | np.ndarray,
    *,
    lower_is_better: bool,
    reps: int = REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Profile]:
    """Each method's run-score distribution at the thresholds ``taus``: the fraction of its runs (all tasks
    pooled) scoring at most τ when ``lower_is_better`` (e.g. optimal within τ episodes), above τ otherwise
    (rliable's ``library.score_distributions``), with pointwise stratified bootstrap intervals."""
    library, _ = _rliable()
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0 or not np.isfinite(taus).all():
        raise ValueError(f"taus must be a non-empty 1-D array of finite thresholds, got {taus!r}")
    if not scores:
        raise ValueError("scores are empty: give at least one method")

    def profile(s: np.ndarray) -> np.ndarray:
        above = library.score_distributions(s, taus)  # fraction of runs > τ
        return 1.0 - above if lower_is_better else above

    profiles = {}
    for name, method_scores in scores.items():
        _, matrix = _matrix(name, method_scores)
        point, interval = _bootstrap(matrix, profile, reps, seed, confidence)
        profiles[name] = Profile(taus, point, interval[0], interval[1])
    return profiles


__all__ = [
    "AGGREGATES",
    "CONFIDENCE",
    "INSTALL",
    "REPS",
    "Comparison",
    "Estimate",
    "Profile",
    "Scores",
    "censor",
    "compare",
    "interval_estimates",
    "performance_profiles",
    "probability_of_improvement",
]
