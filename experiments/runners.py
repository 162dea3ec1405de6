"""The runners of the library's trainers: ``runner(config, run_dir, resume) -> metrics`` trains one run of a
grid from its config, writing its files in ``run_dir``. :data:`experiments.registry.RUNNERS` names them by
kind (the horizon experiment's runner is :func:`experiments.horizon.run_horizon`, which trains through
these). They run in worker processes and import the project when they are called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.run_dirs import set_aside


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


__all__ = ["run_supervised", "run_tmaze"]
