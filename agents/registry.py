"""Agent registry: ``make(name, num_actions=..., **config)`` and ``names()``."""

from __future__ import annotations

import dataclasses
import inspect

from cocoa.agents.advantage import Advantage
from cocoa.agents.agent import Agent, AgentConfig
from cocoa.agents.estimator import Estimator
from cocoa.agents.reinforce import Reinforce

_ESTIMATORS: dict[str, type[Estimator]] = {}


def register(estimator_class: type[Estimator]) -> type[Estimator]:
    """Adds an estimator class under its ``name`` (usable as a decorator)."""
    if not estimator_class.name:
        raise ValueError(f"{estimator_class.__name__} needs a non-empty `name` to be registered")
    _ESTIMATORS[estimator_class.name] = estimator_class
    return estimator_class


def names() -> list[str]:
    """The registered agent (estimator) names."""
    return sorted(_ESTIMATORS)


def estimator_parameters(name: str) -> dict:
    """Options of estimator ``name`` (beyond the shared AgentConfig), with defaults."""
    signature = inspect.signature(_estimator_class(name).__init__)
    return {k: p.default for k, p in signature.parameters.items()
            if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def agent_parameters() -> dict:
    """Options every agent accepts (AgentConfig), with defaults."""
    return {f.name: f.default for f in dataclasses.fields(AgentConfig)}


def _estimator_class(name: str) -> type[Estimator]:
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(names())}")
    return _ESTIMATORS[name]


def make_estimator(name: str, **options) -> Estimator:
    """Builds estimator ``name`` with its own options (see ``estimator_parameters(name)``)."""
    accepted = estimator_parameters(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"estimator {name!r} has no option(s) {', '.join(unknown)}; it accepts: "
                         + (", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"))
    return _estimator_class(name)(**options)


def make(name: str, *, num_actions: int, **config) -> Agent:
    """Builds agent ``name`` for ``num_actions`` actions.

    ``config`` mixes the shared AgentConfig fields (learning rates, epsilon, entropy, network
    sizes) and the estimator's own options; anything else is an error that lists both.
    """
    estimator_class = _estimator_class(name)
    shared = agent_parameters()
    own = estimator_parameters(name)
    unknown = sorted(set(config) - set(shared) - set(own))
    if unknown:
        raise ValueError(
            f"agent {name!r} has no option(s) {', '.join(unknown)}; shared options: {', '.join(shared)}; "
            f"{name} options: {', '.join(own) or 'none'}")
    agent_config = AgentConfig(**{k: v for k, v in config.items() if k in shared})
    estimator = estimator_class(**{k: v for k, v in config.items() if k in own and k not in shared})
    return Agent(estimator, num_actions, agent_config)


register(Reinforce)
register(Advantage)
