"""The functional environment interface (gymnax style) shared by every cocoa environment.

An environment is a set of pure functions over explicit state and parameters, so that ``jax.jit``,
``jax.vmap`` and ``jax.lax.scan`` apply directly::

    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)

Randomness enters through uniforms: ``reset_from_noise`` / ``step_from_noise`` take
``noise_size`` uniforms in [0, 1) per call instead of a key, so a rollout can draw the noise of a
whole batch of episodes at once (``jax.random.uniform(key, (T, B, noise_size))``), which is far
cheaper on a CPU than splitting a key at every step. ``reset`` and ``step`` are the key-based
wrappers. A done state is absorbing: stepping it again pays nothing and stays done.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.types import TabularMDP


class Environment(abc.ABC):
    """Base class: subclasses define the ``*_from_noise`` functions and their shapes."""

    name: str = ""
    noise_size: int = 1
    # Steps after which every episode has ended (None: unbounded; training then needs a horizon).
    max_episode_steps: int | None = None

    #: Names of the per-episode metrics ``episode_metrics`` returns; the first is the one reports lead with.
    metric_names: tuple[str, ...] = ()

    #: Settings other than the defaults (constructor keyword arguments) that the conformance
    #: tests exercise, so that a new environment is checked off its defaults too.
    example_settings: dict = {}

    def __init__(self, params: Any):
        self.default_params = params

    # --- to be defined by each environment -------------------------------------------------
    @property
    @abc.abstractmethod
    def num_actions(self) -> int:
        """Number of discrete actions."""

    @property
    @abc.abstractmethod
    def observation_shape(self) -> tuple[int, ...]:
        """Shape of one observation."""

    @abc.abstractmethod
    def reset_from_noise(self, noise, params):
        """(noise_size,) uniforms -> (observation, state)."""

    @abc.abstractmethod
    def step_from_noise(self, noise, state, action, params):
        """(noise_size,) uniforms -> (observation, state, reward, done, info)."""

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) float32 arrays of ``observation_shape`` bounding every observation; unbounded by default."""
        shape = tuple(self.observation_shape)
        return np.full(shape, -np.inf, np.float32), np.full(shape, np.inf, np.float32)

    def state_index(self, state, params):
        """The tabular index of ``state`` in ``tabular_mdp(params)``; -1 for non-tabular envs."""
        del state, params
        return jnp.int32(-1)

    def build_tabular_mdp(self, params) -> TabularMDP:
        raise TypeError(f"{self.name} has no tabular form (its state space is not finite)")

    def render_text(self, state, params) -> str:
        """One line of text showing ``state`` (the Gymnasium adapter's ``render_mode="ansi"``)."""
        index = int(self.state_index(state, params))
        return f"{self.name}: " + (f"state {index}" if index >= 0 else repr(state))

    def episode_metrics(self, info: dict, mask) -> dict:
        """Per-episode diagnostics (B,) from a batch of per-step ``info`` (B, T); none by default."""
        del info, mask
        return {}

    # --- shared -------------------------------------------------------------------------------
    @property
    def is_tabular(self) -> bool:
        return type(self).build_tabular_mdp is not Environment.build_tabular_mdp

    def reset(self, key, params=None):
        noise = jax.random.uniform(key, (self.noise_size,))
        return self.reset_from_noise(noise, self._params(params))

    def step(self, key, state, action, params=None):
        noise = jax.random.uniform(key, (self.noise_size,))
        return self.step_from_noise(noise, state, action, self._params(params))

    def tabular_mdp(self, params=None) -> TabularMDP:
        """The exact tabular form of this environment (for the oracle); built once for the default params."""
        if params is not None and params is not self.default_params:
            return self.build_tabular_mdp(params)
        cached = self.__dict__.get("_default_mdp")
        if cached is None or cached[0] is not self.default_params:  # params are immutable: same object, same table
            cached = (self.default_params, self.build_tabular_mdp(self.default_params))
            self.__dict__["_default_mdp"] = cached
        return cached[1]

    def _params(self, params):
        return self.default_params if params is None else params

    def __repr__(self):
        return f"{type(self).__name__}({self.default_params})"


def constructor_parameters(env_class) -> dict[str, Any]:
    """The keyword parameters an environment class accepts, with their defaults."""
    signature = inspect.signature(env_class.__init__)
    return {name: p.default for name, p in signature.parameters.items()
            if name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY}


def params_dataclass(cls):
    """Frozen dataclass registered as a pytree whose fields are all leaves (environment params)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    return jax.tree_util.register_dataclass(
        cls, data_fields=[f.name for f in dataclasses.fields(cls)], meta_fields=[])


def one_hot(index, size):
    return jax.nn.one_hot(index, size, dtype=jnp.float32)


