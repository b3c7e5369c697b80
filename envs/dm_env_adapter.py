"""dm_env adapter: any cocoa functional environment as a :class:`dm_env.Environment`.

::

    from cocoa.envs import DmEnvAdapter
    env = DmEnvAdapter("LinearKeyToDoor-v0", seed=0, length=23)
    timestep = env.reset()                      # StepType.FIRST
    while not timestep.last():
        timestep = env.step(0)                  # MID ..., then LAST with discount 0.0

Follows dm_env's conventions: ``reset`` returns a FIRST ``TimeStep`` (reward and discount
``None``); ``step`` returns MID steps with discount 1.0 and a LAST step with discount 0.0 when the
episode terminates (cocoa episodes terminate; they are never truncated). Calling ``step`` before
the first ``reset`` or after a LAST step starts a new episode and ignores the action.
"""

from __future__ import annotations

from typing import Any

import dm_env
import jax
import numpy as np
from dm_env import specs

from cocoa.envs.base import Environment
from cocoa.envs.host_runner import EpisodeRunner, resolve_env


class DmEnvAdapter(dm_env.Environment):
    """A cocoa functional environment behind the ``dm_env.Environment`` API.

    Args:
      env: a registered cocoa environment name (see ``cocoa.envs.names()``), or a built
        ``cocoa.envs.Environment``.
      seed: seed of the JAX PRNG key chain; the same seed gives the same episodes.
      **params: the environment's parameters when ``env`` is a name.

    Specs: observations float32 of shape ``env.observation_shape`` (a ``BoundedArray`` with the
    environment's declared ``observation_bounds()`` when they are finite, else an ``Array``); actions a
    ``DiscreteArray`` of ``env.num_actions`` values; rewards and discounts float32 scalars.

    ``info`` holds the last step's per-step diagnostics and, after a LAST step, the episode
    summary (``episode_return``, ``episode_length``, ``episode_totals`` and the environment's episode
    metrics), as in the Gymnasium adapter.
    """

    def __init__(self, env: str | Environment, *, seed: int = 0, **params):
        self.cocoa_env = resolve_env(env, params)
        self._runner = EpisodeRunner(self.cocoa_env)
        self._key = jax.random.key(seed)
        self.info: dict[str, Any] = {}

    def reset(self) -> dm_env.TimeStep:
        """Starts an episode: a FIRST ``TimeStep``."""
        self._key, episode_key = jax.random.split(self._key)
        observation = self._runner.reset(episode_key)
        self.info = {}
        return dm_env.restart(observation)

    def step(self, action) -> dm_env.TimeStep:
        """One step: MID (discount 1.0) or LAST (discount 0.0); starts an episode after LAST."""
        if self._runner.done:
            return self.reset()
        observation, reward, terminated, self.info = self._runner.step(action)
        if terminated:
            return dm_env.termination(np.float32(reward), observation)._replace(discount=np.float32(0.0))
        return dm_env.transition(np.float32(reward), observation, discount=np.float32(1.0))

    def observation_spec(self):
        shape = self._runner.observation_shape
        low, high = self.cocoa_env.observation_bounds()
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            return specs.Array(shape=shape, dtype=np.float32, name="observation")
        return specs.BoundedArray(shape=shape, dtype=np.float32, minimum=low, maximum=high,
                                  name="observation")

    def action_spec(self):
        return specs.DiscreteArray(num_values=self._runner.num_actions, dtype=np.int32, name="action")

    def reward_spec(self):
        return specs.Array(shape=(), dtype=np.float32, name="reward")

    def discount_spec(self):
        return specs.BoundedArray(shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount")

    def __repr__(self):
        return f"DmEnvAdapter({self.cocoa_env!r})"
