"""Gymnasium adapter: any cocoa functional environment as a :class:`gymnasium.Env`.

``import cocoa`` registers every cocoa environment with Gymnasium under the ``cocoa/`` namespace,
so the usual Gymnasium tooling (``gymnasium.make``, ``gymnasium.make_vec``, wrappers, checkers)
works on them::

    import cocoa, gymnasium
    env = gymnasium.make("cocoa/LinearKeyToDoor-v0", length=23)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

The adapter is a thin, stateful shell around the pure functions ``env.reset`` / ``env.step``: it
holds the current state and a JAX PRNG key, and calls the jitted functions (compiled once per
adapter instance). Everything it returns is numpy / Python: ``float32`` observations, a ``float``
reward, ``bool`` flags and an ``info`` dict of Python scalars.

Episodes end on their own (every cocoa environment has a finite horizon), so nothing truncates
(``truncated`` is always ``False``) and the registrations carry no ``max_episode_steps``.

This module also holds the small stepping core shared with the dm_env adapter.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import gymnasium
import jax
import numpy as np

from cocoa.envs import registry
from cocoa.envs.base import Environment

NAMESPACE = "cocoa"
_ENTRY_POINT = "cocoa.envs.gymnasium_adapter:GymnasiumEnv"


# --- shared core (also used by cocoa.envs.dm_env_adapter) -----------------------------------------

def _resolve_env(env: str | Environment, params: dict) -> Environment:
    """A cocoa environment from a registered name plus params, or an already built one."""
    if isinstance(env, Environment):
        if params:
            raise ValueError(
                f"got environment parameters {sorted(params)} together with an already built "
                f"{type(env).__name__}; pass a registered name with parameters, or a built environment alone")
        return env
    if isinstance(env, str):
        return registry.make(env, **params)
    raise TypeError(f"expected a cocoa environment name (one of {', '.join(registry.names())}) "
                    f"or a cocoa.envs.Environment; got {type(env).__name__}")


def _observation_bounds(env: Environment) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-dimension float32 bounds of the observations, or ``None`` when they are unknown.

    A tabular environment lists the observation of every state it can be in
    (``tabular_mdp().observations``; a test per environment checks the sampled dynamics against
    that table), so its minimum and maximum bound every observation ``step`` can emit. A
    dimension that is constant over the table (say, the one-hot slot of a cell content a layout
    lacks) gets the table's overall range instead, since Gymnasium rejects a Box with equal
    bounds; a table that is constant everywhere gives ``None``. Bounds are rounded outwards to
    float32 so that no table value falls outside them.
    """
    if not env.is_tabular:
        return None
    shape = tuple(env.observation_shape)
    table = np.asarray(env.tabular_mdp().observations, dtype=np.float64).reshape((-1,) + shape)
    low, high = table.min(axis=0), table.max(axis=0)
    if table.min() == table.max():
        return None
    constant = low == high
    low, high = np.where(constant, table.min(), low), np.where(constant, table.max(), high)
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    low32 = np.where(low32 > low, np.nextafter(low32, np.float32(-np.inf)), low32)
    high32 = np.where(high32 < high, np.nextafter(high32, np.float32(np.inf)), high32)
    return low32, high32


def _check_action(action: Any, num_actions: int) -> np.int32:
    """The action as an int32 scalar; a clear error for anything outside {0, ..., A-1}."""
    try:
        if isinstance(action, (bool, np.bool_)):
            raise TypeError
        index = operator.index(action)
    except TypeError:
        raise ValueError(f"action must be an integer in [0, {num_actions}); got {action!r}") from None
    if not 0 <= index < num_actions:
        raise ValueError(f"action must be an integer in [0, {num_actions}); got {index}")
    return np.int32(index)


def _to_python(value: Any) -> Any:
    """A 0-d array as a Python scalar; larger arrays as (fresh) numpy arrays."""
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.copy()


def _reset_fn(env: Environment, key, params):
    key, reset_key = jax.random.split(key)
    observation, state = env.reset(reset_key, params)
    return key, observation, state


def _step_fn(env: Environment, key, state, action, params):
    key, step_key = jax.random.split(key)
    observation, state, reward, done, info = env.step(step_key, state, action, params)
    return key, observation, state, reward, done, info


class _Runner:
    """A cocoa environment's current episode: state, PRNG key, episode totals.

    ``reset`` and ``step`` call the environment's pure functions through ``jax.jit`` (compiled once
    per runner) and return numpy / Python values.
    """

    def __init__(self, env: Environment):
        self.env = env
        self.params = env.default_params
        self.num_actions = int(env.num_actions)
        self.observation_shape = tuple(env.observation_shape)
        self._reset = jax.jit(functools.partial(_reset_fn, env))
        self._step = jax.jit(functools.partial(_step_fn, env))
        self._key = None
        self._state = None
        self.done = True
        self.started = False

    def reset(self, key) -> np.ndarray:
        self._key, observation, self._state = self._reset(key, self.params)
        self.done = False
        self.started = True
        self._return = 0.0
        self._length = 0
        self._totals: dict[str, Any] = {}
        return np.array(observation, dtype=np.float32)

    def step(self, action) -> tuple[np.ndarray, float, bool, dict]:
        action = _check_action(action, self.num_actions)
        self._key, observation, self._state, reward, done, info = self._step(
            self._key, self._state, action, self.params)
        observation, reward, done, info = jax.device_get((observation, reward, done, info))
        reward, done = float(reward), bool(done)
        info = {name: _to_python(value) for name, value in info.items()}
        self._return += reward
        self._length += 1
        for name, value in info.items():
            value = np.asarray(value)
            value = value.astype(np.int64) if value.dtype == np.bool_ else value
            self._totals[name] = self._totals.get(name, 0) + value
        self.done = done
        if done:
            info.update(self.episode_info())
        return np.array(observation, dtype=np.float32), reward, done, info

    def episode_info(self) -> dict:
        """Summary of the finished episode (added to the last step's ``info``).

        ``episode_return`` and ``episode_length``; ``episode_totals``, the episode sum of every
        per-step info entry (booleans count); and, where the per-step info has the entries they
        need: ``treasure_collected`` (any step with ``treasure``) and ``apple_fraction`` (steps with
        ``apple_picked`` over steps with ``apple``; 0.0 in an episode without apples, as the
        environment's own ``episode_metrics``).
        """
        totals = {name: _to_python(total) for name, total in self._totals.items()}
        summary = {"episode_return": self._return, "episode_length": self._length,
                   "episode_totals": totals}
        if "treasure" in totals:
            summary["treasure_collected"] = bool(np.any(np.asarray(totals["treasure"]) > 0))
        if "apple" in totals and "apple_picked" in totals:
            apples = float(np.sum(totals["apple"]))
            summary["apple_fraction"] = float(np.sum(totals["apple_picked"])) / apples if apples > 0 else 0.0
        return summary


# --- the Gymnasium environment ---------------------------------------------------------------

class GymnasiumEnv(gymnasium.Env):
    """A cocoa functional environment behind Gymnasium's ``Env`` API.

    Args:
      env: a registered cocoa environment name (see ``cocoa.envs.names()``), or a built
        ``cocoa.envs.Environment``.
      render_mode: must be ``None``; cocoa environments do not render.
      **params: the environment's parameters when ``env`` is a name (see
        ``cocoa.envs.parameters(name)``).

    Spaces: ``observation_space`` is a float32 ``Box`` of shape ``env.observation_shape``, bounded
    by the minimum and maximum over the tabular form's observations for a tabular environment and
    unbounded otherwise; ``action_space`` is ``Discrete(env.num_actions)``.

    Seeding: ``reset(seed=s)`` seeds ``self.np_random`` and draws the episode's JAX PRNG key from it,
    so episodes are reproducible per seed; ``reset()`` without a seed continues the generator.

    ``step`` returns ``(observation, reward, terminated, False, info)``: ``info`` holds the
    environment's per-step diagnostics as Python scalars and, on the last step, the episode
    summary (``episode_return``, ``episode_length``, ``episode_totals`` and, for key-to-door style
    diagnostics, ``treasure_collected`` and ``apple_fraction``). Stepping a finished episode is an
    error: call ``reset``.
    """

    metadata = {"render_modes": []}

    def __init__(self, env: str | Environment, *, render_mode: str | None = None, **params):
        if render_mode is not None:
            raise ValueError(f"cocoa environments do not render; render_mode must be None, got {render_mode!r}")
        self.render_mode = None
        self.cocoa_env = _resolve_env(env, params)
        self._runner = _Runner(self.cocoa_env)
        bounds = _observation_bounds(self.cocoa_env)
        shape = self._runner.observation_shape
        low, high = bounds if bounds is not None else (-np.inf, np.inf)
        self.observation_space = gymnasium.spaces.Box(low=low, high=high, shape=shape, dtype=np.float32)
        self.action_space = gymnasium.spaces.Discrete(self._runner.num_actions)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Starts an episode; returns ``(observation, info)`` (the info is empty)."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"cocoa environments take no reset options; got {sorted(options)}")
        key = jax.random.key(int(self.np_random.integers(0, 2**63)))
        return self._runner.reset(key), {}

    def step(self, action):
        """One step; returns ``(observation, reward, terminated, truncated=False, info)``."""
        if not self._runner.started:
            raise RuntimeError(f"{self.cocoa_env.name}: call reset() before step()")
        if self._runner.done:
            raise RuntimeError(f"{self.cocoa_env.name}: the episode has terminated; call reset() before "
                               "stepping again")
        observation, reward, terminated, info = self._runner.step(action)
        return observation, reward, terminated, False, info

    def __repr__(self):
        return f"GymnasiumEnv({self.cocoa_env!r})"


# --- registration ------------------------------------------------------------------------------

def gymnasium_id(name: str) -> str:
    """The Gymnasium id of cocoa environment ``name``: ``"cocoa/<name>"``."""
    return f"{NAMESPACE}/{name}"


def register_gymnasium_envs() -> list[str]:
    """Registers every cocoa environment with Gymnasium as ``cocoa/<name>``; returns the ids.

    Idempotent: ids already registered by this function are left alone, so calling it again (for
    instance after ``cocoa.envs.register`` added an environment) only adds the new ones. Keyword
    arguments of ``gymnasium.make(id, **kwargs)`` go to ``cocoa.envs.make(name, **kwargs)``.
    No ``max_episode_steps``: cocoa environments end their episodes themselves.

    Raises:
      ValueError: an id is already registered with Gymnasium by someone else.
    """
    ids = []
    for name in registry.names():
        env_id = gymnasium_id(name)
        existing = gymnasium.registry.get(env_id)
        if existing is None:
            gymnasium.register(id=env_id, entry_point=_ENTRY_POINT, kwargs={"env": name},
                               max_episode_steps=None)
        elif existing.entry_point != _ENTRY_POINT or existing.kwargs.get("env") != name:
            raise ValueError(f"Gymnasium id {env_id!r} is already registered for {existing.entry_point!r}; "
                             f"cannot register cocoa environment {name!r} under it")
        ids.append(env_id)
    return ids
