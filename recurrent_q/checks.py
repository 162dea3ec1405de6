"""The checks that every package shares for a setting in range: a count, a size or a period (an integer),
a rate, a fraction or a tolerance (a number), a name among the allowed ones (a choice).

One function each, :func:`check_integer`, :func:`check_number` and :func:`check_choice`, and one message
each (``"<name> must be one of 'a', 'b'; got <value>"`` for a choice), ``"<name> must be
an integer >= <minimum>; got <value>"`` and ``"<name> must be a number in [<low>, <high>]; ..."`` (or
``> <low>``, ``(<low>, <high>]``; ``"<name> must be None or ..."`` where None is allowed), for the library
(cells, measures, warmup, DRQN, callbacks), the supervised trainer and the experiments. A ``bool`` is
neither an integer nor a number here. Three places keep an integer check of their own, with the same
message: ``tmaze_gym`` (it imports no other package), and the grid engine and the selection
(``experiments.grid``, ``experiments.selection``), whose process imports no torch, as ``import recurrent_q``
would.

Each raises :class:`SettingError`, a ``ValueError`` that says the caller's setting is out of range (not that
something went wrong inside); the command line prints its message without a traceback.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from typing import Any


class SettingError(ValueError):
    """A setting out of its allowed values; the message names the setting and what is allowed. The console
    commands (``experiments.cli``) print it as ``error: ...`` with exit status 2, as for a bad flag."""


def check_integer(name: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    """A :class:`SettingError` naming ``name`` unless ``value`` is an integer ``>= minimum`` (or None, with
    ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"{'None or ' if optional else ''}an integer >= {minimum}"
        raise SettingError(f"{name} must be {allowed}; got {value!r}")


def check_number(
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    open_low: bool = False,
    optional: bool = False,
    open_high: bool = False,
) -> None:
    """A :class:`SettingError` naming ``name`` unless ``value`` is a real number in ``[low, high]``
    (``(low, high]`` with ``open_low``, ``[low, high)`` with ``open_high``; with no ``high``, ``>= low`` or
    ``> low``), or None with ``optional``. NaN is out of every range."""
    if optional and value is None:
        return
    if high is None:
        allowed = f"a number {'>' if open_low else '>='} {low:g}"
    else:
        allowed = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (low < value if open_low else low <= value)
        or (high is not None and not (value < high if open_high else value <= high))
    ):
        raise SettingError(f"{name} must be {'None or ' if optional else ''}{allowed}; got {value!r}")


def check_choice(name: str, value: Any, allowed: Collection[Any]) -> None:
    """A :class:`SettingError` naming ``name`` and every value of ``allowed`` unless ``value`` is one of
    them."""
    if value not in allowed:
        raise SettingError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def check_flag(name: str, value: Any) -> None:
    """A :class:`SettingError` naming ``name`` unless ``value`` is ``True`` or ``False`` (not 0, 1 or a
    string)."""
    if not isinstance(value, bool):
        raise SettingError(f"{name} must be True or False; got {value!r}")
