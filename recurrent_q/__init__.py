"""Recurrent cells, multistability (VAA, VAA*, warmup) and DRQN for multistable recurrent memory.

The cells and the multistability measures need only PyTorch: ``import recurrent_q.cells`` (or
``recurrent_q.multistability``) does not import Stable-Baselines3 or Gymnasium. ``DRQN``,
``WarmupCallback`` and ``VAAMonitorCallback``, which build on Stable-Baselines3, are imported when first
used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from recurrent_q.cells import CELL_NAMES, DoubleLayer, RecurrentLayer, RecurrentStack, as_stack, make_cell
from recurrent_q.multistability import (
    VERSIONS,
    Version,
    WarmupConfig,
    WarmupResult,
    estimate_vaa,
    vaa,
    vaa_star,
    warmup,
)
from recurrent_q.schedules import HeldLinearSchedule

if TYPE_CHECKING:
    from recurrent_q.callbacks import VAAMonitorCallback, WarmupCallback
    from recurrent_q.drqn import DRQN

_LAZY = {
    "DRQN": "recurrent_q.drqn",
    "VAAMonitorCallback": "recurrent_q.callbacks",
    "WarmupCallback": "recurrent_q.callbacks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recurrent_q' has no attribute {name!r}")


__all__ = [
    "CELL_NAMES",
    "DRQN",
    "DoubleLayer",
    "HeldLinearSchedule",
    "RecurrentLayer",
    "RecurrentStack",
    "VAAMonitorCallback",
    "VERSIONS",
    "Version",
    "WarmupCallback",
    "WarmupConfig",
    "WarmupResult",
    "as_stack",
    "estimate_vaa",
    "make_cell",
    "vaa",
    "vaa_star",
    "warmup",
]
