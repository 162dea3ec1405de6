"""Packaging: ``recurrent_q`` and ``tmaze_gym`` ship a ``py.typed`` marker (PEP 561) as package data."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["recurrent_q", "tmaze_gym"])
def test_typed_packages_ship_py_typed(package):
    assert (ROOT / package / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert package in config["packages"]
    assert "py.typed" in config["package-data"][package]
