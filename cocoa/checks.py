"""Argument checks shared by every public entry point: each names the bad value and what was expected."""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_integer(name: str, value, low: int, high: int | None = None, why: str = ""):
    """ValueError naming ``name`` unless ``value`` is an integer (not a bool) in [low, high]."""
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
    valid = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not valid or value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}{why}; got {value!r}")


def is_finite_number(value) -> bool:
    """A real number (not a bool), neither NaN nor infinite."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def check_positive_number(name: str, value):
    """ValueError naming ``name`` unless ``value`` is a finite number > 0. NaN passes every comparison,
    so without the finiteness check a NaN learning rate would only show as a NaN after compilation."""
    if not is_finite_number(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number; got {value!r}")


def check_nonnegative_number(name: str, value):
    """ValueError naming ``name`` unless ``value`` is a finite number >= 0."""
    if not is_finite_number(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
