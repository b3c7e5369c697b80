"""A Gymnasium vector env of a cocoa environment backed by one jitted, batched step.

``gymnasium.make_vec("cocoa/<name>", num_envs=N)`` builds this (the registrations carry it as
their ``vector_entry_point``): all N copies advance in one compiled call, ``vmap`` over the
environment's pure ``step_from_noise`` and ``reset_from_noise``, instead of N Python environments.

Autoreset follows Gymnasium 1.x's ``NEXT_STEP`` mode (declared in ``metadata["autoreset_mode"]``):
the step after a sub-environment terminates resets it, ignores its action and returns its first
observation with reward 0 and ``terminated = truncated = False``. cocoa episodes end themselves,
so nothing is truncated. ``infos`` holds the environment's per-step diagnostics as (N,) arrays,
each with its ``_name`` mask (False on reset steps), as Gymnasium's vector envs do.

``vectorization_mode="async"`` (N Python copies in worker processes) is refused where JAX cannot
work: a forked worker inherits JAX's threads and hangs, so ``GymnasiumEnv`` raises in a forked
child before touching JAX; with ``vector_kwargs={"context": "spawn"}`` the workers start fresh and
work. The jitted vector env is the fast path either way.
"""

from __future__ import annotations

import functools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from cocoa.envs.base import Environment
from cocoa.envs.host_runner import resolve_env


def _reset_all(env: Environment, num_envs: int, key, params):
    key, noise_key = jax.random.split(key)
    observations, states = jax.vmap(env.reset_from_noise, in_axes=(0, None))(
        jax.random.uniform(noise_key, (num_envs, env.noise_size)), params)
    return key, observations, states


def _step_all(env: Environment, num_envs: int, key, states, actions, autoreset, params):
    """One step of every copy; copies flagged ``autoreset`` are reset instead (next-step autoreset)."""
    key, step_key, reset_key = jax.random.split(key, 3)
    stepped = jax.vmap(env.step_from_noise, in_axes=(0, 0, 0, None))(
        jax.random.uniform(step_key, (num_envs, env.noise_size)), states, actions, params)
    observations, next_states, rewards, terminated, info = stepped
    _, reset_observations, reset_states = _reset_all(env, num_envs, reset_key, params)

    def pick(reset_value, step_value):
        flag = autoreset.reshape(autoreset.shape + (1,) * (step_value.ndim - 1))
        return jnp.where(flag, reset_value, step_value)

    observations = pick(reset_observations, observations)
    next_states = jax.tree.map(pick, reset_states, next_states)
    rewards = jnp.where(autoreset, 0.0, rewards)
    terminated = jnp.where(autoreset, False, terminated)
    return key, observations, next_states, rewards, terminated, info


class CocoaVectorEnv(gymnasium.vector.VectorEnv):
    """N copies of a cocoa environment behind ``gymnasium.vector.VectorEnv``, stepped by one jitted call.

    Args:
      env: a registered cocoa environment name, or a built ``cocoa.envs.Environment``.
      num_envs: the number of copies N >= 1.
      render_mode: must be None.
      **params: the environment's parameters when ``env`` is a name.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, env: str | Environment, num_envs: int = 1, *, render_mode: str | None = None, **params):
        if render_mode is not None:
            raise ValueError(f"the jitted vector env does not render; render_mode must be None, got {render_mode!r}")
        if isinstance(num_envs, (bool, np.bool_)) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer; got {num_envs!r}")
        self.cocoa_env = resolve_env(env, params)
        self.num_envs = int(num_envs)
        self.params = self.cocoa_env.default_params
        low, high = self.cocoa_env.observation_bounds()
        self.single_observation_space = gymnasium.spaces.Box(low=low, high=high, dtype=np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(self.cocoa_env.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._reset = jax.jit(functools.partial(_reset_all, self.cocoa_env, self.num_envs))
        self._step = jax.jit(functools.partial(_step_all, self.cocoa_env, self.num_envs))
        self._key = self._states = None
        self._autoreset = np.zeros(self.num_envs, bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Resets every copy; returns ``(observations (N, *obs), {})``."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"cocoa vector envs take no reset options; got {sorted(options)}")
        key = jax.random.key(int(self.np_random.integers(0, 2**63)))
        self._key, observations, self._states = self._reset(key, self.params)
        self._autoreset = np.zeros(self.num_envs, bool)
        return np.asarray(observations, np.float32), {}

    def step(self, actions):
        """Steps every copy (resets those that terminated at the previous step)."""
        if self._states is None:
            raise RuntimeError(f"{self.cocoa_env.name}: call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},); got {actions.shape}")
        num_actions = int(self.single_action_space.n)
        if (not np.issubdtype(actions.dtype, np.integer) or actions.dtype == np.bool_
                or actions.min() < 0 or actions.max() >= num_actions):
            bad = actions.reshape(-1)[0] if not np.issubdtype(actions.dtype, np.integer) else \
                actions[(actions < 0) | (actions >= num_actions)][0]
            raise ValueError(f"actions must be integers in [0, {num_actions}); got {bad.item()!r}")
        actions = actions.astype(np.int32)
        self._key, observations, self._states, rewards, terminated, info = self._step(
            self._key, self._states, actions, self._autoreset, self.params)
        observations, rewards, terminated, info = jax.device_get((observations, rewards, terminated, info))
        live = ~self._autoreset
        infos = {}
        for name, value in info.items():
            infos[name], infos[f"_{name}"] = np.asarray(value), live.copy()
        self._autoreset = np.asarray(terminated, bool).copy()
        return (np.asarray(observations, np.float32), np.asarray(rewards, np.float32), self._autoreset.copy(),
                np.zeros(self.num_envs, bool), infos)

    def __repr__(self):
        return f"CocoaVectorEnv({self.cocoa_env!r}, num_envs={self.num_envs})"
