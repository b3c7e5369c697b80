"""Environment registry: ``make(name, **params)`` and ``names()``."""

from __future__ import annotations

from cocoa.envs.base import Environment, constructor_parameters
from cocoa.options import check_types
from cocoa.envs.key_to_door import LinearKeyToDoor
from cocoa.envs.tree import Tree

_REGISTRY: dict[str, type[Environment]] = {}


def register(env_class: type[Environment]) -> type[Environment]:
    """Adds an environment class under its ``name`` (usable as a decorator)."""
    if not env_class.name:
        raise ValueError(f"{env_class.__name__} needs a non-empty `name` to be registered")
    _REGISTRY[env_class.name] = env_class
    return env_class


def names() -> list[str]:
    """The registered environment names."""
    return sorted(_REGISTRY)


def env_class(name: str) -> type[Environment]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; known environments: {', '.join(names())}")
    return _REGISTRY[name]


def parameters(name: str) -> dict:
    """The parameters environment ``name`` accepts, with their defaults."""
    return constructor_parameters(env_class(name))


def make(name: str, **params) -> Environment:
    """Builds environment ``name`` with ``params`` (see ``parameters(name)`` for what it accepts)."""
    cls = env_class(name)
    accepted = constructor_parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"{name} has no parameter(s) {', '.join(unknown)}; it accepts: "
                         + ", ".join(f"{k}={v!r}" for k, v in accepted.items()))
    check_types(name, accepted, params)
    return cls(**params)


register(LinearKeyToDoor)
register(Tree)
