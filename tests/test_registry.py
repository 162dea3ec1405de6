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
    presets = (*PRESETS, *(preset for preset in HORIZON_PRESETS if preset not in PRESETS))  # not written out
    assert typing.get_args(hints["preset"]) == PRESET_NAMES == presets
