"""The host side of a functional environment: one episode stepped from Python, shared by the
Gymnasium and dm_env adapters.

``EpisodeRunner`` holds the current state and a JAX PRNG key, calls the environment's pure
``reset`` / ``step`` through ``jax.jit`` (compiled once per runner) and returns numpy / Python
values; at the end of an episode it summarises it with the environment's own ``episode_metrics``.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import numpy as np

from cocoa.envs import registry
from cocoa.envs.base import Environment


def resolve_env(env, params: dict) -> Environment:
    """A functional cocoa environment from a name plus params, or from anything ``registry.as_environment``
    takes (an ``Environment``, a ``TabularMDP``, a Gymnasium env with a ``P`` table)."""
    if params and not isinstance(env, str):
        raise ValueError(
            f"got environment parameters {sorted(params)} together with an already built "
            f"{type(env).__name__}; pass a registered name with parameters, or a built environment alone")
    resolved = registry.make(env, **params) if isinstance(env, str) else registry.as_environment(env)
    if not isinstance(resolved, Environment):
        raise TypeError(f"{resolved.name} is a Gymnasium environment without a table (it does not jit); use "
                        "it through Gymnasium directly")
    return resolved


def check_action(action: Any, num_actions: int) -> np.int32:
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


class EpisodeRunner:
    """A cocoa environment's current episode on the host: state, PRNG key, the episode's info.

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
        self._steps: dict[str, list] = {}
        return np.array(observation, dtype=np.float32)

    def step(self, action) -> tuple[np.ndarray, float, bool, dict]:
        action = check_action(action, self.num_actions)
        self._key, observation, self._state, reward, done, info = self._step(
            self._key, self._state, action, self.params)
        observation, reward, done, info = jax.device_get((observation, reward, done, info))
        reward, done = float(reward), bool(done)
        info = {name: _to_python(value) for name, value in info.items()}
        self._return += reward
        self._length += 1
        for name, value in info.items():
            self._steps.setdefault(name, []).append(value)
        self.done = done
        if done:
            info.update(self.episode_info())
        return np.array(observation, dtype=np.float32), reward, done, info

    def render_text(self) -> str:
        return self.env.render_text(jax.device_get(self._state), self.params)

    def episode_info(self) -> dict:
        """Summary of the finished episode (added to the last step's ``info``).

        ``episode_return``, ``episode_length``, ``episode_totals`` (the episode sum of every
        per-step info entry; booleans count) and the environment's own episode metrics
        (``env.metric_names``, from ``env.episode_metrics``, as in training and the reports).
        """
        steps = {name: np.stack([np.asarray(v) for v in values]) for name, values in self._steps.items()}
        totals = {name: _to_python(np.sum(value.astype(np.int64) if value.dtype == np.bool_ else value, axis=0))
                  for name, value in steps.items()}
        metrics = self.env.episode_metrics({name: value[None] for name, value in steps.items()},
                                           np.ones((1, self._length), np.float32))
        return {"episode_return": self._return, "episode_length": self._length, "episode_totals": totals,
                **{name: float(np.asarray(value)[0]) for name, value in metrics.items()}}
