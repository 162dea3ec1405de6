"""The README's Python examples run as written (in a temporary directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})
    if "VAA" in BLOCKS[index]:
        before, after = map(float, re.findall(r"VAA ([\d.]+) -> ([\d.]+)", capsys.readouterr().out)[0])
        assert before < 0.1 < 0.9 < after  # monostable at initialisation, multistable after warmup
        assert f"prints: VAA {before:.3f} -> {after:.3f}" in BLOCKS[index]  # the output the README states
