"""The runners of the library's trainers: ``runner(config, run_dir, resume) -> metrics`` trains one run of a
grid from its config, writing its files in ``run_dir``. :data:`experiments.registry.RUNNERS` names them by
kind (the horizon experiment's runner is :func:`experiments.horizon.run_horizon`, which trains through
these). They run in worker processes and import the project when they are called.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from experiments.horizon_presets import HORIZON_RUN_KEYS
from experiments.run_dirs import NOT_IDENTITY, set_aside


def run_supervised(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """``supervised.train.train`` of ``config``; ``resume`` continues from the run's last checkpoint (an
    unreadable one is set aside and the run starts again)."""
    from recurrent_q.multistability import WarmupConfig
    from supervised.train import CheckpointError, SupervisedConfig, train

    warmup_config = WarmupConfig(**config.pop("warmup_config", {}))
    settings = SupervisedConfig(
        **config, warmup_config=warmup_config, logdir=str(run_dir), resume=resume, progress_bar=False
    )
    try:
        return train(settings).to_dict()
    except CheckpointError as error:  # an unreadable checkpoint: set it aside, start the run again
        set_aside(error.path, f"{error}: the run starts again")
        settings.resume = False
        return train(settings).to_dict()


def run_tmaze(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """A T-Maze run has no checkpoint: an interrupted one starts again (``resume`` is ignored)."""
    from experiments.tmaze import run_tmaze_experiment

    return run_tmaze_experiment(**config, logdir=str(run_dir))


# The settings a run resolves to: its config with every default of the code filled in (recorded in the run
# directory's ``settings.json``, so that a relaunch after a default has changed does not take an old run for
# the new one). Fields that say where files go or what is shown are left out.
_NOT_SETTINGS = (
    *NOT_IDENTITY,
    "logdir",
    "save_path",
    "best_model_save_path",
    "progress_bar",
    "device",
    "download",
    "resume",
)


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as JSON would give it back (tuples as lists), without :data:`_NOT_SETTINGS`."""
    kept = {k: v for k, v in settings.items() if k not in _NOT_SETTINGS}
    return json.loads(json.dumps(kept, default=str))


def tmaze_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved :class:`experiments.tmaze_config.TMazeConfig` of a T-Maze run's ``config``, with the
    discount used (``gamma``: :func:`experiments.optimality.default_gamma` of the length unless set) and the
    loss's ``train_mode`` (:func:`experiments.tmaze_config.default_train_mode` of the length unless set)."""
    from experiments.tmaze import resolved_config
    from experiments.tmaze_config import TMazeConfig

    return _plain(dataclasses.asdict(resolved_config(TMazeConfig(**config))))


def supervised_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved ``supervised.train.SupervisedConfig`` of a supervised run's ``config``."""
    from recurrent_q.multistability import WarmupConfig
    from supervised.train import SupervisedConfig

    config = dict(config)
    warmup_config = WarmupConfig(**config.pop("warmup_config", {}))
    return _plain(dataclasses.asdict(SupervisedConfig(**config, warmup_config=warmup_config)))


def horizon_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Those of a horizon run: its network's (T-Maze or copy) and the grid's own keys as they are."""
    own = HORIZON_RUN_KEYS
    network = {k: v for k, v in config.items() if k not in own}
    if config.get("task") == "copy":
        resolved = supervised_settings({**network, "task": "copy"})
    else:
        resolved = tmaze_settings(network)
    return {**resolved, **_plain({k: config[k] for k in own if k in config})}


__all__ = ["horizon_settings", "run_supervised", "run_tmaze", "supervised_settings", "tmaze_settings"]
