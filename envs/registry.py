"""Environment registry: ``make(name, **params)`` and ``names()``."""

from __future__ import annotations

from cocoa.envs.base import Environment, constructor_parameters
from cocoa.envs.gymnasium_source import PREFIX, GymnasiumHostEnv, wrap_gymnasium
from cocoa.envs.tabular import TabularEnv
from cocoa.options import check_types
from cocoa.types import TabularMDP
from cocoa.envs.key_to_door import LinearKeyToDoor
from cocoa.envs.tree import Tree
from cocoa.envs.discounting_chain import DiscountingChain
from cocoa.envs.task_interleaving import TaskInterleaving
from cocoa.envs.umbrella_chain import UmbrellaChain
from cocoa.envs.ipd import IteratedPrisonersDilemma
from cocoa.envs.cleanup_lite import CleanUpLite

_REGISTRY: dict[str, type[Environment]] = {}
# Two-player games: not single-agent environments to ``make`` and train on, but the games of the
# co-player shaping runner (cocoa.shaping; `cocoa bench coala`).
TWO_PLAYER_GAMES = {IteratedPrisonersDilemma.name: IteratedPrisonersDilemma, CleanUpLite.name: CleanUpLite}
TWO_PLAYER_USE = ("the co-player shaping runner's games, played with `cocoa bench coala` (and its -sequence, -hawk "
                  "and -cleanup suites) or cocoa.shaping.ShapingConfig(env=NAME); docs/estimators/coala.md")


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
    if isinstance(name, str) and name in TWO_PLAYER_GAMES:
        raise ValueError(f"{name} is a two-player game, not a single-agent environment: {TWO_PLAYER_USE}")
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; known environments: {', '.join(names())}, "
                         f"or any Gymnasium id as {PREFIX}<id> (e.g. {PREFIX}FrozenLake-v1)")
    return _REGISTRY[name]


def two_player_games() -> dict[str, dict]:
    """The two-player games (``TWO_PLAYER_GAMES``), each with its parameters and their defaults."""
    return {name: constructor_parameters(game) for name, game in TWO_PLAYER_GAMES.items()}


def metric_names(name: str) -> tuple[str, ...]:
    """The metrics environment ``name`` reports besides the return (none for a Gymnasium id)."""
    if isinstance(name, str) and name.startswith(PREFIX):
        return ()
    return tuple(env_class(name).metric_names)


def parameters(name: str) -> dict:
    """The parameters environment ``name`` accepts, with their defaults."""
    return constructor_parameters(env_class(name))


def make(name: str, **params) -> Environment:
    """Builds environment ``name`` with ``params`` (see ``parameters(name)`` for what it accepts).

    ``"gymnasium:<id>"`` wraps a Gymnasium environment (``wrap_gymnasium``): ``horizon`` and
    Gymnasium's own make arguments, e.g. ``make("gymnasium:FrozenLake-v1", horizon=100, is_slippery=True)``.
    """
    if isinstance(name, str) and name.startswith(PREFIX):
        return wrap_gymnasium(name, **params)
    cls = env_class(name)
    accepted = constructor_parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"{name} has no parameter(s) {', '.join(unknown)}; it accepts: "
                         + ", ".join(f"{k}={v!r}" for k, v in accepted.items()))
    check_types(name, accepted, params)
    return cls(**params)


def as_environment(env) -> Environment | GymnasiumHostEnv:
    """Whatever names an environment, as one cocoa trains on.

    A cocoa ``Environment`` or ``GymnasiumHostEnv`` is returned as it is; a name goes through
    ``make``; a ``TabularMDP`` becomes a ``TabularEnv``; a ``gymnasium.Env`` goes through
    ``wrap_gymnasium`` (its table where it has one, else the host loop).
    """
    import gymnasium

    if isinstance(env, (Environment, GymnasiumHostEnv)):
        return env
    if isinstance(env, str):
        return make(env)
    if isinstance(env, TabularMDP):
        return TabularEnv(env)
    if isinstance(env, gymnasium.Env):
        return wrap_gymnasium(env)
    raise TypeError(f"expected an environment: a name (one of {', '.join(names())} or {PREFIX}<id>), a "
                    f"cocoa.envs.Environment, a TabularMDP or a gymnasium.Env; got {type(env).__name__}")


register(LinearKeyToDoor)
register(Tree)
register(UmbrellaChain)
register(DiscountingChain)
register(TaskInterleaving)
