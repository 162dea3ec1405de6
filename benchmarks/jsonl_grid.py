"""The benchmarks' grids (``bench_drqn.py``, ``bench_peer_recurrentppo.py``): resumable runs whose results
are the lines of one JSON-lines file, in worker processes that end with the grid's process.

A benchmark script imports it as ``from jsonl_grid import run_jsonl_grid`` (``python benchmarks/...``
puts this folder first on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from experiments.grid import exit_with_parent
from experiments.run_dirs import finite_or_null


def run_jsonl_grid(
    out: str | Path,
    runs: Sequence[tuple],
    key: Callable[[dict[str, Any]], Hashable],
    run_one: Callable[..., dict[str, Any]],
    extra: tuple = (),
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """The benchmarks' grids: ``run_one(*run, *extra)`` for every run of ``runs`` whose key is not yet in the
    JSON-lines file ``out``, in ``jobs`` worker processes (which end with this process); each result is
    appended as its run ends, so an interrupted grid resumes. Returns every result in ``out``.

    :param key: the key of a result (a run's key is the run tuple itself).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = []
    if out.exists():
        text = out.read_text()
        if text and not text.endswith("\n"):  # a line cut by a crash: the next result starts a new line
            with out.open("a") as f:
                f.write("\n")
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash: its run runs again
                warnings.warn(
                    f"{out}:{number} is not JSON (an interrupted write); that run runs again", stacklevel=2
                )
    seen = {key(result) for result in done}
    todo = [run for run in runs if tuple(run) not in seen]
    import multiprocessing as mp

    watch = {"initializer": exit_with_parent, "initargs": (os.getpid(),)}
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), **watch) as pool:
        for future in [pool.submit(run_one, *run, *extra) for run in todo]:
            result = future.result()
            done.append(result)
            with out.open("a") as f:
                f.write(json.dumps(finite_or_null(result), allow_nan=False) + "\n")
            print(json.dumps(finite_or_null(result)), flush=True)
    return done


__all__ = ["run_jsonl_grid"]
