"""The check that every package shares for a count, a size or a period: an integer in range.

One function, :func:`check_integer`, and one message, ``"<name> must be an integer >= <minimum>; got
<value>"`` (``"<name> must be None or an integer >= <minimum>; ..."`` where None is allowed), for the
library (cells, measures, warmup, DRQN, callbacks), the supervised trainer and the experiments. A ``bool`` is
not an integer here. Three places keep a check of their own, with the same message: ``tmaze_gym`` (it
imports no other package), and the grid engine and the selection (``experiments.grid``,
``experiments.selection``), whose process imports no torch, as ``import recurrent_q`` would.
"""

from __future__ import annotations

from typing import Any


def check_integer(name: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is an integer ``>= minimum`` (or None, with
    ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"{'None or ' if optional else ''}an integer >= {minimum}"
        raise ValueError(f"{name} must be {allowed}; got {value!r}")
