"""The checks of a setting (``recurrent_q.checks``): a count or size, a number in range, a choice."""

from __future__ import annotations

import pytest

from recurrent_q.checks import SettingError, check_choice, check_flag, check_integer, check_number


def test_an_integer_in_range_passes_and_none_only_where_allowed():
    check_integer("n", 1)
    check_integer("n", 0, 0)
    check_integer("n", None, optional=True)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1; got None$"):
        check_integer("n", None)


@pytest.mark.parametrize("value", [0, -3, 2.0, "2", True])
def test_anything_else_is_named_with_the_range(value):
    """A :class:`SettingError` (a ``ValueError``: what the console commands print without a traceback)."""
    with pytest.raises(SettingError, match=rf"^size must be an integer >= 1; got {value!r}$"):
        check_integer("size", value)
    with pytest.raises(ValueError, match=rf"^size must be None or an integer >= 1; got {value!r}$"):
        check_integer("size", value, optional=True)


def test_a_number_in_range_passes_and_the_range_is_named():
    check_number("rate", 0.0, 0, 1)
    check_number("rate", 1, 0, 1)
    check_number("rate", None, 0, 1, optional=True)
    check_number("tol", 1e-9, 0, open_low=True)
    for value in (-0.1, 1.5, float("nan"), "0.5", True, None):
        with pytest.raises(ValueError, match=r"^rate must be a number in \[0, 1\]; got "):
            check_number("rate", value, 0, 1)
    with pytest.raises(ValueError, match=r"^tau must be None or a number in \(0, 1\]; got 0$"):
        check_number("tau", 0, 0, 1, open_low=True, optional=True)
    with pytest.raises(ValueError, match=r"^eps must be a number > 0; got 0.0$"):
        check_number("eps", 0.0, 0, open_low=True)
    with pytest.raises(ValueError, match=r"^n must be a number >= 2; got 1$"):
        check_number("n", 1, 2)


def test_a_choice_is_one_of_the_allowed_and_they_are_named():
    check_choice("loss", "huber", ("squared", "huber"))
    check_choice("clock", "wall", {"wall": 0, "process": 1})
    with pytest.raises(ValueError, match=r"^loss must be one of 'squared', 'huber'; got 'l1'$"):
        check_choice("loss", "l1", ("squared", "huber"))


def test_a_flag_is_a_bool_and_nothing_that_looks_like_one():
    check_flag("flag", True)
    check_flag("flag", False)
    for value in (0, 1, "yes", None):
        with pytest.raises(ValueError, match=f"flag must be True or False; got {value!r}"):
            check_flag("flag", value)
