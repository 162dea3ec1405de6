"""The benchmarks' JSON-lines grid (``benchmarks/jsonl_grid.py``): it resumes after a line cut by a crash
and writes valid JSON."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from jsonl_grid import run_jsonl_grid  # noqa: E402


def product_run(a: int, b: int, c: int) -> dict:
    """A benchmark run for the JSON-lines grid (module level: worker processes import it)."""
    return {"a": a, "b": b, "c": c, "value": a * b * c, "ratio": math.inf if a == 0 else 1 / a}


def test_the_benchmarks_jsonl_grid_resumes_after_a_cut_line(tmp_path):
    out = tmp_path / "grid.jsonl"
    runs = [(0, 2), (3, 4), (5, 6)]
    key = lambda result: (result["a"], result["b"])  # noqa: E731
    first = run_jsonl_grid(out, runs[:2], key, product_run, (10,), jobs=2)
    assert sorted(r["value"] for r in first) == [0, 120]
    out.write_text(out.read_text()[:-9])  # the last line cut by a crash
    with pytest.warns(UserWarning, match="grid.jsonl:2 is not JSON"):
        done = run_jsonl_grid(out, runs, key, product_run, (10,), jobs=1)
    assert sorted(r["value"] for r in done) == [0, 120, 300]
    lines = out.read_text().splitlines()
    strict = {"parse_constant": lambda name: pytest.fail(f"{name} is not JSON")}
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line, **strict))
        except json.JSONDecodeError:
            assert line.startswith('{"a": 3')  # the cut line stays, alone on its line
    assert sorted(key(r) for r in parsed) == [(0, 2), (3, 4), (5, 6)]
    assert next(r for r in parsed if r["a"] == 0)["ratio"] is None  # inf written as null
