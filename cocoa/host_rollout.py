"""Batches of episodes from a Gymnasium environment that does not jit, collected on the host.

The one Python loop per environment step in cocoa, for environments we cannot compile: a
synchronous Gymnasium vector env runs ``seeds x batch_size`` episodes side by side, one jitted
policy call per step serves all of them, and the episodes are padded to the horizon with a mask
into the same batch-first :class:`~cocoa.types.Trajectory` (leading axes (seeds, B, T)) that
``rollout`` produces, so the very same compiled update learns from them, compiled once per run.
Action uniforms are drawn in bulk per batch, as in ``rollout``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.envs.gymnasium_source import GymnasiumHostEnv
from cocoa.types import Trajectory


def empty_batch(count: int, horizon: int, observation_shape: tuple, num_actions: int) -> dict:
    """Numpy buffers of ``count`` episodes padded to ``horizon``: all padding until filled in."""
    return {
        "observations": np.zeros((count, horizon, *observation_shape), np.float32),
        # Padding carries a valid distribution (estimators may take logs or ratios before masking).
        "policy_probs": np.full((count, horizon, num_actions), 1.0 / num_actions, np.float32),
        "actions": np.zeros((count, horizon), np.int32),
        "rewards": np.zeros((count, horizon), np.float32),
        "dones": np.zeros((count, horizon), bool),
        "mask": np.zeros((count, horizon), np.float32),
    }


def to_trajectory(batch: dict, leading: tuple) -> Trajectory:
    """The buffers of ``empty_batch`` as a ``Trajectory`` whose leading axes are ``leading`` (..., B), T."""
    arrays = {name: jnp.asarray(value.reshape(*leading, *value.shape[1:])) for name, value in batch.items()}
    horizon = batch["mask"].shape[1]
    return Trajectory(**arrays, state_index=jnp.full((*leading, horizon), -1, jnp.int32), info={})


class HostCollector:
    """Collects (seeds, episodes, horizon) batches of ``env`` with a per-seed policy.

    Args:
      env: the host environment.
      probs_fn: ``probs_fn(policy_params, observations (B, *obs)) -> (B, A)`` of one seed.
      seeds: the leading axis of the policy parameters (and of every batch).
      episodes: episodes per seed and batch.
      seed: seeds the vector env's first reset (later batches continue its generators).
    """

    def __init__(self, env: GymnasiumHostEnv, probs_fn: Callable, *, seeds: int, episodes: int, seed: int):
        self.env = env
        self.seeds, self.episodes = seeds, episodes
        self.horizon = env.max_episode_steps
        self.vector = env.vector(seeds * episodes)
        self._probs = jax.jit(jax.vmap(probs_fn))
        self._seed = seed

    def collect(self, policy_params: Any, keys: jax.Array) -> tuple[Trajectory, int]:
        """One batch per seed (``keys``: one per seed, for the action uniforms); and the steps taken."""
        seeds, episodes, horizon, env = self.seeds, self.episodes, self.horizon, self.env
        count = seeds * episodes
        uniforms = np.asarray(jax.vmap(lambda key: jax.random.uniform(key, (horizon, episodes)))(keys))
        uniforms = uniforms.transpose(1, 0, 2).reshape(horizon, count)
        batch = empty_batch(count, horizon, env.observation_shape, env.num_actions)
        rewards, dones, mask = batch["rewards"], batch["dones"], batch["mask"]

        observation, _ = self.vector.reset(seed=self._seed)
        self._seed = None  # seeded once; later resets continue the generators
        alive = np.ones(count, bool)
        steps = 0
        for t in range(horizon):
            encoded = env.encode(observation)
            step_probs = np.asarray(self._probs(policy_params, encoded.reshape(seeds, episodes, -1)))
            step_probs = step_probs.reshape(count, -1)
            cdf = np.cumsum(step_probs, axis=-1)
            action = np.minimum((cdf <= uniforms[t][:, None]).sum(-1), env.num_actions - 1).astype(np.int32)
            batch["observations"][:, t], batch["policy_probs"][:, t] = encoded, step_probs
            batch["actions"][:, t], mask[:, t] = action, alive
            observation, reward, terminated, truncated, _ = self.vector.step(env.action(action))
            rewards[:, t] = np.where(alive, reward, 0.0)
            ended = alive & (np.asarray(terminated) | np.asarray(truncated))
            dones[:, t] = ended
            steps += int(alive.sum())
            alive &= ~ended
            if not alive.any():
                break
        dones[alive, horizon - 1] = True  # cut at the horizon

        return to_trajectory(batch, (seeds, episodes)), steps

    def close(self):
        self.vector.close()
