"""Agent registry: ``make(name, num_actions=..., **config)`` and ``names()``."""

from __future__ import annotations

import dataclasses
import inspect

from cocoa.agents.agent import Agent, AgentConfig
from cocoa.agents.estimator import Estimator
from cocoa.options import check_types

_ESTIMATORS: dict[str, type[Estimator]] = {}


def register(estimator_class: type[Estimator]) -> type[Estimator]:
    """Adds an estimator class under its ``name`` (usable as a decorator)."""
    if not estimator_class.name:
        raise ValueError(f"{estimator_class.__name__} needs a non-empty `name` to be registered")
    _ESTIMATORS[estimator_class.name] = estimator_class
    return estimator_class


EXACT_SUFFIX = "-gt"


def names() -> list[str]:
    """The registered agent names; ``<name>-gt`` is the exact variant (oracle models)."""
    exact = [name + EXACT_SUFFIX for name, cls in _ESTIMATORS.items() if cls.has_exact_variant]
    return sorted([*_ESTIMATORS, *exact])


def is_exact(name: str) -> bool:
    """Whether ``name`` is a exact variant (needs the environment's tabular MDP)."""
    _estimator_class(name)
    return name.endswith(EXACT_SUFFIX)


def estimator_parameters(name: str) -> dict:
    """Options of estimator ``name`` (beyond the shared AgentConfig), with defaults."""
    signature = inspect.signature(_estimator_class(name).__init__)
    return {k: p.default for k, p in signature.parameters.items()
            if k not in ("self", "mdp") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def agent_parameters() -> dict:
    """Options every agent accepts (AgentConfig), with defaults."""
    return {f.name: f.default for f in dataclasses.fields(AgentConfig)}


def _estimator_class(name: str) -> type[Estimator]:
    if isinstance(name, str) and name not in _ESTIMATORS and name.endswith(EXACT_SUFFIX):
        base = _ESTIMATORS.get(name[: -len(EXACT_SUFFIX)])
        if base is not None and base.has_exact_variant:
            return base
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(names())}")
    return _ESTIMATORS[name]


def _mdp_for(name: str, mdp):
    if is_exact(name):
        if mdp is None:
            raise ValueError(f"{name!r} is a exact variant: pass the environment's exact model, "
                             f"mdp=env.tabular_mdp()")
        return mdp
    if mdp is not None:
        raise ValueError(f"{name!r} learns its model and takes no mdp; use {name + EXACT_SUFFIX!r} for "
                         "the exact variant" if name + EXACT_SUFFIX in names()
                         else f"{name!r} takes no mdp")
    return None


def make_estimator(name: str, *, mdp=None, **options) -> Estimator:
    """Builds estimator ``name`` with its own options (see ``estimator_parameters(name)``).

    Exact variants (``<name>-gt``) need ``mdp``, the environment's ``tabular_mdp()``.
    """
    accepted = estimator_parameters(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"estimator {name!r} has no option(s) {', '.join(unknown)}; it accepts: "
                         + (", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"))
    check_types(f"estimator {name!r}", accepted, options)
    mdp = _mdp_for(name, mdp)
    return _estimator_class(name)(**options, **({"mdp": mdp} if mdp is not None else {}))


def make(name: str, *, num_actions: int, mdp=None, **config) -> Agent:
    """Builds agent ``name`` for ``num_actions`` actions.

    ``config`` mixes the shared AgentConfig fields (learning rates, epsilon, entropy, network
    sizes) and the estimator's own options; anything else is an error that lists both.
    Exact variants (``<name>-gt``) need ``mdp=env.tabular_mdp()``.
    """
    _estimator_class(name)
    shared = agent_parameters()
    own = estimator_parameters(name)
    unknown = sorted(set(config) - set(shared) - set(own))
    if unknown:
        raise ValueError(
            f"agent {name!r} has no option(s) {', '.join(unknown)}; shared options: {', '.join(shared)}; "
            f"{name} options: {', '.join(own) or 'none'}")
    check_types(f"agent {name!r}", {**shared, **own}, config)
    agent_config = AgentConfig(**{k: v for k, v in config.items() if k in shared})
    estimator = make_estimator(name, mdp=mdp, **{k: v for k, v in config.items() if k in own and k not in shared})
    return Agent(estimator, num_actions, agent_config)


def make_for_env(name: str, env, **config) -> Agent:
    """``make`` with the number of actions (and, for ``-gt`` variants, the exact MDP) taken from ``env``.

    ``env`` is anything ``cocoa.envs.as_environment`` takes. Estimators that need the reward support
    (``reward_values``) read it from the environment's table; without one it must be declared.
    """
    from cocoa.envs.registry import as_environment

    env = as_environment(env)
    mdp = env.tabular_mdp() if is_exact(name) else None
    if "reward_values" in estimator_parameters(name) and "reward_values" not in config:
        if not env.is_tabular:
            raise ValueError(f"{name} needs the finite reward support of {env.name}, which has no table to read "
                             "it from: declare it, e.g. --agent-option reward_values=0,1 on the command line or "
                             "reward_values=(0.0, 1.0) in Python; a reward outside it stops training")
        config["reward_values"] = tuple(float(v) for v in (mdp or env.tabular_mdp()).reward_values)
    return make(name, num_actions=env.num_actions, mdp=mdp, **config)
