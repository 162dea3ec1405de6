"""The registry of experiments (``experiments.registry``): names are checked, each entry builds exactly
its presets, every run has a runner, and the command line offers what the registry holds."""

from __future__ import annotations

import typing

import pytest

from experiments.cli import reproduce
from experiments.horizon_presets import HORIZON_PRESETS
from experiments.presets import PRESETS
from experiments.registry import EXPERIMENTS, PRESET_NAMES, RUNNERS, build_grid


def test_bad_experiment_and_preset_are_named():
    with pytest.raises(ValueError, match="experiment must be one of"):
        build_grid("mnist", "small")
    with pytest.raises(ValueError, match="preset must be one of"):
        build_grid("copy", "huge")


def test_each_entry_builds_its_presets_and_names_the_others():
    for experiment, entry in EXPERIMENTS.items():
        for preset in PRESET_NAMES:
            if preset in entry.presets:
                runs = build_grid(experiment, preset)
                assert runs and {run.experiment for run in runs} == {experiment}
                assert {run.kind for run in runs} <= set(RUNNERS)  # every run has its runner
            else:
                with pytest.raises(ValueError, match="preset must be one of"):
                    build_grid(experiment, preset)


def test_the_command_line_offers_the_registry():
    hints = typing.get_type_hints(reproduce.Args, include_extras=True)
    experiment = typing.get_args(hints["experiment"])[0]  # Positional[X] is Annotated[X, ...]
    assert typing.get_args(experiment) == tuple(EXPERIMENTS)
    extra = dict.fromkeys(p for e in EXPERIMENTS.values() for p in e.presets if p not in PRESETS)
    assert {"long", *HORIZON_PRESETS} - set(PRESETS) == set(extra)  # not written out
    assert typing.get_args(hints["preset"]) == PRESET_NAMES == (*PRESETS, *extra)


def test_long_preset_is_the_papers_lengths_of_copy_and_denoising_only():
    assert {run.config["T"] for run in build_grid("copy", "long")} == {300, 600}
    sizes = {(run.config["T"], run.config["N"]) for run in build_grid("denoising", "long")}
    assert sizes == {(200, 5), (200, 100)}
    with pytest.raises(ValueError, match="preset must be one of small, paper, smoke for tmaze; got 'long'"):
        build_grid("tmaze", "long")
