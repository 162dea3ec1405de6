"""Run a grid of experiments, resumably, and summarise it: the engine of ``scripts/reproduce.py``, locally
or on Ray. What it runs and how it reports it comes from the experiment's entry in
:mod:`experiments.registry` (grid builder, runner of each run's kind, results writer).

Each run of a grid (:mod:`experiments.presets`) writes its files in its run directory
(:mod:`experiments.run_dirs` says what a relaunch does with each one: finished runs are skipped, nothing
is ever deleted). Re-launching a grid runs only what is missing; the grid ends with ``results.md``
(mean ± std over seeds), ``results.json`` and ``results.png``; the table counts diverged runs ("2/3, 1
diverged") and the end of the grid says so. A run whose trainer raises ``FloatingPointError`` (a warmup
that met non-finite values) is such a run, its message in its ``metrics.json``; the grid goes on.

Worker processes stop when the process that launched them dies (a ``kill -9`` of the grid leaves no
worker writing into the run directories). A run is run under its claim (:func:`run_dirs.claimed`): two
launches on the same ``--out`` at once share the work, each run runs once, and both end with the whole
table. On Ray, a run whose worker process or node dies is run again (from its last checkpoint where the
trainer has one) on a node that is still there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from experiments.presets import Run, from_seed, grid_root, reproduce_command
from experiments.registry import EXPERIMENTS, RUNNERS, SETTINGS, build_grid
from experiments.run_dirs import (
    SETTINGS_FILE,
    claimed,
    conflict_error,
    finite_or_null,
    is_finished,
    non_finite_keys,
    read_json,
    run_state,
    saved_config,
    set_aside,
    write_json,
)


def resolved_settings(run: Run) -> dict[str, Any] | None:
    """The settings ``run``'s config resolves to with the code's defaults (``experiments.registry.SETTINGS``),
    written to the run's ``settings.json``; None for a kind that has none, or a config that does not
    resolve."""
    resolve = SETTINGS.get(run.kind)
    if resolve is None:
        return None
    try:
        return resolve(dict(run.config))
    except (TypeError, ValueError):  # the run itself will say what is wrong with its config
        return None


def execute_run(
    run: Run, root: str, threads: int = 1, restart_changed: bool = False
) -> tuple[str, dict[str, Any], bool]:
    """Run ``run`` under ``root`` unless it has finished. Returns (name, metrics, ran).

    The run is inspected and run under its claim: if another process (another launch of the grid) is
    running it, this one waits for it and returns its metrics with ``ran`` false.

    :raises RunConflictError: the run directory holds a run with other settings (and not
        ``restart_changed``).
    """
    with claimed(root, run.name):
        return _execute_claimed(run, Path(root) / run.name, threads, restart_changed)


def _execute_claimed(
    run: Run, run_dir: Path, threads: int, restart_changed: bool
) -> tuple[str, dict[str, Any], bool]:
    settings = resolved_settings(run)
    state, differing = run_state(run, run_dir, settings=settings)
    if state == "finished":
        return run.name, read_json(run_dir / "metrics.json"), False
    if state == "changed":
        if not restart_changed:
            raise conflict_error(run, run_dir, differing)
        set_aside(run_dir, f"run {run.name} had other settings ({', '.join(differing)})")
    import torch

    torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", saved_config(run))
    if settings is not None:
        write_json(run_dir / SETTINGS_FILE, settings)
    start = time.perf_counter()
    # an interrupted attempt of the same run continues from its last checkpoint where the trainer has one
    raised = None
    try:
        metrics = RUNNERS[run.kind](dict(run.config), run_dir, state == "partial")
    except FloatingPointError as error:  # the trainer stopped on non-finite values (the warmup's, say)
        metrics, raised = {"error": f"FloatingPointError: {error}"}, ["raised"]
    metrics["wall_time_s"] = time.perf_counter() - start
    bad = raised or non_finite_keys(metrics)
    metrics["diverged"] = bool(bad)
    if bad:
        metrics["non_finite"] = bad
    metrics = finite_or_null(metrics)
    write_json(run_dir / "metrics.json", metrics)
    return run.name, metrics, True


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


def exit_with_parent(parent: int) -> None:
    """Worker initialiser: end this process as soon as its parent is gone (``kill -9`` of the grid)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def run_local(
    runs: list[Run], root: Path, workers: int, progress: bool = True, restart_changed: bool = False
) -> tuple[dict[str, dict], set[str]]:
    """Run the grid in ``workers`` local processes (inline when ``workers == 1``).

    :return: the metrics of every run, and the names of the runs that ran here (not finished before, nor
        by another launch).
    """
    if workers == 1:
        outcomes = (execute_run(run, str(root), restart_changed=restart_changed) for run in runs)
        return _collect(outcomes, len(runs), "runs", progress)
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = mp.get_context("spawn")
    watch = {"initializer": exit_with_parent, "initargs": (os.getpid(),)}
    with ProcessPoolExecutor(workers, mp_context=context, **watch) as pool:
        futures = [pool.submit(execute_run, run, str(root), threads, restart_changed) for run in runs]
        outcomes = (future.result() for future in as_completed(futures))
        return _collect(outcomes, len(runs), "runs", progress)


def _collect(
    outcomes: Iterable[tuple[str, dict[str, Any], bool]], total: int, desc: str, progress: bool
) -> tuple[dict[str, dict], set[str]]:
    """The metrics of each run of ``outcomes`` (:func:`execute_run`'s, as they end, under a progress bar)
    and the names of those that ran here."""
    from tqdm.auto import tqdm

    results: dict[str, dict] = {}
    ran_here: set[str] = set()
    with tqdm(total=total, desc=desc, disable=not progress) as bar:
        for name, metrics, ran in outcomes:
            results[name] = metrics
            if ran:
                ran_here.add(name)
            bar.update()
    return results, ran_here


RAY_RETRIES = 3
"""How many times Ray runs a run again whose worker process or node died (Ray's ``max_retries``)."""


def run_ray(
    runs: list[Run], root: Path, address: str, progress: bool = True, restart_changed: bool = False
) -> tuple[dict[str, dict], set[str]]:
    """Run the grid on a Ray cluster, one task (1 CPU) per run. ``address="local"`` starts one here.

    ``root`` must be on storage that every node sees (a shared file system), since skipping finished
    runs reads their ``metrics.json``, and the project must be installed on every node. A run whose
    worker process or node dies is run again, up to :data:`RAY_RETRIES` times, where Ray finds a CPU.

    :return: as :func:`run_local`.
    """
    try:
        import ray
    except ImportError as error:
        raise ImportError("--ray-address needs Ray: pip install '.[sweep]'") from error

    if address == "local":
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=RAY_RETRIES, retry_exceptions=False)(execute_run)
        pending = [remote.remote(run, str(root), 1, restart_changed) for run in runs]

        def as_they_end(pending: list) -> Iterator[tuple[str, dict[str, Any], bool]]:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])

        return _collect(as_they_end(pending), len(runs), "runs (ray)", progress)
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------------------------
# A whole grid
# --------------------------------------------------------------------------------------------


def check_reproduce_arguments(
    workers: Any,
    first_seed: Any,
    rate: Any,
    flags: bool = False,
    dry_run: bool = False,
    write_finished: bool = False,
) -> None:
    """A ``ValueError`` naming the first of :func:`reproduce`'s ``workers`` (an integer >= 1), ``first_seed``
    (>= 0) and ``rate`` (a number > 0) out of its range, or ``dry_run`` and ``write_finished`` both set;
    ``flags``: named as the command's flags (``--first-seed``). Plain Python checks: the grid's process does
    not import torch."""
    if dry_run and write_finished:
        names = "--dry-run and --write-finished" if flags else "dry_run and write_finished"
        raise ValueError(f"{names} are exclusive (one lists the runs, the other tables the finished ones)")
    for name, value, low in (("workers", workers, 1), ("first_seed", first_seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            name = f"--{name.replace('_', '-')}" if flags else name
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"{'--rate' if flags else 'rate'} must be a number > 0; got {rate!r}")


def reproduce(
    experiment: str,
    preset: str = "small",
    out: str | Path = "results",
    workers: int = 2,
    ray_address: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    restart_changed: bool = False,
    first_seed: int = 0,
    dry_run: bool = False,
    rate: float = 1e12,
    write_finished: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the grid of ``experiment`` at ``preset`` scale and write its table and plot.

    :param first_seed: the seeds of the grid start here (the presets use 0, 1, …; the seeds on which the
        defaults were chosen are 0–9, so a claim of how often they succeed is measured from 1000 on, say).
        Runs of another first seed go to ``<out>/<experiment>/<preset>-from-seed-<first_seed>/``.
    :param dry_run: run nothing: print each group of runs, how many are finished, and the floor of their
        arithmetic (:mod:`experiments.cost`), with the time of what is left at ``rate`` operations per second.
    :param write_finished: run nothing: write the table and plot of the runs finished so far (a grid stopped
        before its end; its unfinished groups are left out, its partly finished ones count their finished
        seeds). Nothing is written when no run has finished.
    :return: ``{"runs", "ran" (runs that ran in this launch), "diverged" (run names), "table"}``.
    :raises RunConflictError: a run directory holds a run with other settings (before anything runs).
    """
    check_reproduce_arguments(workers, first_seed, rate, dry_run=dry_run, write_finished=write_finished)
    runs = from_seed(build_grid(experiment, preset), first_seed)
    if data_dir is not None:
        runs = [
            Run(r.experiment, r.kind, r.labels, r.seed, {**r.config, "data_dir": str(data_dir)})
            if r.config.get("task", "").endswith("mnist")
            else r
            for r in runs
        ]
    root = grid_root(out, experiment, preset, first_seed)
    if dry_run:
        from experiments.cost import cost_lines

        states = {
            run.name: run_state(run, root / run.name, repair=False, settings=resolved_settings(run))[0]
            for run in runs
        }
        print(f"{experiment} ({preset}): {len(runs)} runs in {root}; dry run, nothing is run")
        print("\n".join(cost_lines(runs, states, rate)))
        return {"runs": len(runs), "ran": 0, "diverged": [], "table": None}
    if write_finished:
        done = [run for run in runs if is_finished(run, root)]
        print(f"{experiment} ({preset}): {len(done)} of {len(runs)} runs finished in {root}; nothing is run")
        if not done:
            return {"runs": len(runs), "ran": 0, "diverged": [], "table": None}
        results = {run.name: read_json(root / run.name / "metrics.json") for run in done}
        command = reproduce_command(experiment, preset, first_seed)
        table, text = EXPERIMENTS[experiment].write(done, results, root, command)
        print(text)
        diverged = sorted(name for name, metrics in results.items() if metrics.get("diverged"))
        return {"runs": len(runs), "ran": 0, "diverged": diverged, "table": table}
    root.mkdir(parents=True, exist_ok=True)
    # read only: another launch may be writing some of these runs now (each run is repaired under its claim)
    states = {
        run.name: run_state(run, root / run.name, repair=False, settings=resolved_settings(run))
        for run in runs
    }
    changed = [run for run in runs if states[run.name][0] == "changed"]
    if changed and not restart_changed:
        raise conflict_error(changed[0], root / changed[0].name, states[changed[0].name][1])
    finished = sum(state == "finished" for state, _ in states.values())
    print(f"{experiment} ({preset}): {len(runs)} runs, {finished} already finished, in {root}")
    start = time.perf_counter()
    if ray_address:
        results, ran_here = run_ray(runs, root, ray_address, progress, restart_changed)
    else:
        results, ran_here = run_local(runs, root, workers, progress, restart_changed)
    elsewhere = len(runs) - finished - len(ran_here)
    if elsewhere > 0:
        print(f"{len(ran_here)} runs ran here; {elsewhere} were finished meanwhile by another launch")
    command = reproduce_command(experiment, preset, first_seed)
    table, text = EXPERIMENTS[experiment].write(runs, results, root, command)
    print(text)
    diverged = sorted(name for name, metrics in results.items() if metrics.get("diverged"))
    if diverged:
        print(f"{len(diverged)} of {len(runs)} runs diverged (non-finite metrics): {', '.join(diverged)}")
    seconds = time.perf_counter() - start
    print(f"wall time {seconds:.0f} s; table {root / 'results.md'}; plot {root / 'results.png'}")
    return {"runs": len(runs), "ran": len(ran_here), "diverged": diverged, "table": table}


__all__ = [
    "RAY_RETRIES",
    "check_reproduce_arguments",
    "execute_run",
    "exit_with_parent",
    "reproduce",
    "run_local",
    "run_ray",
]
