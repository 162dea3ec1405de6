"""Recurrent cells, multistability (VAA, VAA*, warmup) and DRQN for multistable recurrent memory."""

from recurrent_q.cells import CELL_NAMES, DoubleLayer, RecurrentLayer, RecurrentStack, as_stack, make_cell

__all__ = ["CELL_NAMES", "DoubleLayer", "RecurrentLayer", "RecurrentStack", "as_stack", "make_cell"]
