"""The one check of a count, a size or a period (``recurrent_q.checks.check_integer``)."""

from __future__ import annotations

import pytest

from recurrent_q.checks import check_integer


def test_an_integer_in_range_passes_and_none_only_where_allowed():
    check_integer("n", 1)
    check_integer("n", 0, 0)
    check_integer("n", None, optional=True)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1; got None$"):
        check_integer("n", None)


@pytest.mark.parametrize("value", [0, -3, 2.0, "2", True])
def test_anything_else_is_named_with_the_range(value):
    with pytest.raises(ValueError, match=rf"^size must be an integer >= 1; got {value!r}$"):
        check_integer("size", value)
    with pytest.raises(ValueError, match=rf"^size must be None or an integer >= 1; got {value!r}$"):
        check_integer("size", value, optional=True)
