"""The shared argument checks: what they accept, what they refuse, and that the message names both."""

import math

import numpy as np
import pytest

from cocoa.checks import check_integer, check_nonnegative_number, check_positive_number, is_finite_number


@pytest.mark.parametrize("value", [1, 7, np.int32(3), np.int64(10)])
def test_check_integer_accepts_integers_in_range(value):
    assert check_integer("n", value, 1, 10) is None


@pytest.mark.parametrize("value, message", [
    (0, "n must be an integer in [1, 10]; got 0"),
    (11, "n must be an integer in [1, 10]; got 11"),
    (True, "n must be an integer in [1, 10]; got True"),
    (np.bool_(True), "n must be an integer in [1, 10]"),
    (2.0, "n must be an integer in [1, 10]; got 2.0"),
    ("3", "n must be an integer in [1, 10]; got '3'"),
])
def test_check_integer_refuses_and_names_the_value(value, message):
    with pytest.raises(ValueError) as error:
        check_integer("n", value, 1, 10)
    assert message in str(error.value)


def test_check_integer_without_upper_bound_and_with_a_reason():
    assert check_integer("n", 10**9, 0) is None
    with pytest.raises(ValueError, match=r"n must be an integer >= 2 \(two players\); got 1"):
        check_integer("n", 1, 2, why=" (two players)")


@pytest.mark.parametrize("value", [1e-9, 3, 0.5, np.float32(0.1), np.float64(2.0), np.int64(4)])
def test_check_positive_number_accepts_finite_positive_reals(value):
    assert check_positive_number("rate", value) is None
    assert is_finite_number(value)


@pytest.mark.parametrize("value", [0, -1e-3, math.nan, math.inf, -math.inf, np.float32("nan"), True, "0.1", None])
def test_check_positive_number_refuses_and_names_the_value(value):
    with pytest.raises(ValueError) as error:
        check_positive_number("rate", value)
    assert str(error.value) == f"rate must be a finite positive number; got {value!r}"


@pytest.mark.parametrize("value, finite", [
    (0.0, True), (-2, True), (math.nan, False), (math.inf, False), (False, False), (np.bool_(True), False),
    ("1", False), (None, False)])
def test_is_finite_number(value, finite):
    assert is_finite_number(value) is finite


def test_check_nonnegative_number_accepts_zero_and_refuses_negatives_and_nan():
    assert check_nonnegative_number("decay", 0.0) is None
    assert check_nonnegative_number("decay", np.float32(1e-4)) is None
    for value in (-1e-9, math.nan, math.inf, True):
        with pytest.raises(ValueError) as error:
            check_nonnegative_number("decay", value)
        assert str(error.value) == f"decay must be a finite number >= 0; got {value!r}"
