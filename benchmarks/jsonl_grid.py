"""Resumable benchmark grids shared by ``bench_drqn.py`` and ``bench_peer_recurrentppo.py``.

Results are appended to a JSON-lines file as each run ends, so an interrupted grid resumes: runs whose
key is already in the file are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any


def run_pending(
    out: str | Path,
    runs: Sequence[tuple],
    key: Callable[[dict[str, Any]], Hashable],
    run_one: Callable[..., dict[str, Any]],
    extra: tuple = (),
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run ``run_one(*run, *extra)`` for every run of ``runs`` whose key (``key(result)`` of a result,
    the run tuple itself) is not in ``out`` yet, in ``jobs`` processes; returns every result in ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    seen = {key(result) for result in done}
    todo = [run for run in runs if tuple(run) not in seen]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        for future in [pool.submit(run_one, *run, *extra) for run in todo]:
            result = future.result()
            done.append(result)
            with out.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(json.dumps(result), flush=True)
    return done
