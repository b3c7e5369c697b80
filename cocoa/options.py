"""Type checks of keyword options against their defaults, shared by the env and agent registries.

A wrong type then fails at ``make`` with a message that names the option, what it expected and
what it got, instead of a bare ``TypeError`` (or no error) deep inside a constructor.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _expected(default: Any) -> str | None:
    """What a value of ``default``'s kind looks like, or None when any value may do."""
    if isinstance(default, (bool, np.bool_)):
        return "True or False"
    if isinstance(default, numbers.Integral):
        return "an integer"
    if isinstance(default, numbers.Real):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, (tuple, list)):
        return "a sequence of numbers" if all(isinstance(v, numbers.Real) for v in default) else None
    return None


def _numeric_scalar(value: Any, kind) -> bool:
    """A Python, numpy or jax scalar of ``kind`` (np.integer or np.number), never a bool."""
    if isinstance(value, (bool, np.bool_, str)) or np.ndim(value) != 0:
        return False
    try:
        dtype = np.asarray(value).dtype
    except (TypeError, ValueError):
        return False
    return np.issubdtype(dtype, kind) and not np.issubdtype(dtype, np.bool_)


def _matches(value: Any, default: Any) -> bool:
    if isinstance(default, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_))
    if isinstance(default, numbers.Integral):
        return _numeric_scalar(value, np.integer)
    if isinstance(default, numbers.Real):
        return _numeric_scalar(value, np.number)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (tuple, list)):
        return (not isinstance(value, str) and np.ndim(value) == 1
                and all(_numeric_scalar(v, np.number) for v in value))
    return True


def check_types(owner: str, accepted: dict[str, Any], given: dict[str, Any]) -> None:
    """Raises ValueError naming the first option of ``given`` whose type does not fit its default.

    Args:
      owner: what the options are for, e.g. "LinearKeyToDoor-v0" or "agent 'q-critic'".
      accepted: option name -> default (``inspect`` signatures or dataclass fields).
      given: the options passed.
    """
    for name, value in given.items():
        default = accepted.get(name)
        expected = _expected(default)
        if expected is not None and value is not None and not _matches(value, default):
            raise ValueError(f"{owner}: {name} must be {expected}; got {value!r} (default {default!r})")
