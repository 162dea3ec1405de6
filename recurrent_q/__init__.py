"""Recurrent cells, multistability (VAA, VAA*, warmup) and DRQN for multistable recurrent memory."""

from recurrent_q.callbacks import WarmupCallback
from recurrent_q.cells import CELL_NAMES, DoubleLayer, RecurrentLayer, RecurrentStack, as_stack, make_cell
from recurrent_q.drqn import DRQN
from recurrent_q.multistability import WarmupConfig, WarmupResult, estimate_vaa, vaa, vaa_star, warmup

__all__ = [
    "CELL_NAMES",
    "DRQN",
    "DoubleLayer",
    "RecurrentLayer",
    "RecurrentStack",
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
