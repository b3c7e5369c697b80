"""Jitted, batched rollouts of functional environments with ``lax.scan`` over time.

All random numbers of a rollout are drawn up front in bulk (one uniform per action sample by
inverse CDF, ``env.noise_size`` per environment step): per-step key splitting and
``jax.random.categorical`` cost about 10x more on a CPU (measured here: docs/performance.md).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.envs.base import Environment
from cocoa.sampling import sample_inverse_cdf
from cocoa.types import StateTable, Trajectory

PolicyFn = Callable[[Any, jax.Array], jax.Array]  # (params, observations (B, *obs)) -> probs (B, A)


def rollout(env: Environment, policy_fn: PolicyFn, policy_params: Any, key: jax.Array, *,
            batch_size: int, horizon: int, env_params: Any = None, per_state: bool | None = None) -> Trajectory:
    """Runs ``batch_size`` episodes of at most ``horizon`` steps; pure and jittable.

    Args:
      env: a cocoa functional environment.
      policy_fn: ``policy_fn(policy_params, observations) -> probs`` over a batch of observations.
      policy_params: parameters passed to ``policy_fn``.
      key: PRNG key.
      batch_size: number of episodes B.
      horizon: number of steps T to scan; steps after an episode ends are masked padding.
      env_params: environment parameters (default: ``env.default_params``).
      per_state: on a tabular environment, run ``policy_fn`` once per state and read it at each
        step's state index instead of once per step (exact; cheaper when the batch takes more steps
        than the environment has states); the trajectory then says so (``num_states``), so that the
        update evaluates its networks per state too. None (default): when S <= B * T.

    Returns:
      A batch-first :class:`~cocoa.types.Trajectory` with leading axes (B, T).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer; got {horizon!r}")
    env_params = env.default_params if env_params is None else env_params
    states, policy_table = None, None
    concrete = not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(env_params))
    if per_state and not (env.is_tabular and concrete):
        raise ValueError(f"per_state=True needs a tabular environment with concrete params; {env.name} "
                         + ("has no tabular form" if not env.is_tabular else "got traced params"))
    if env.is_tabular and concrete and per_state is not False:
        with jax.ensure_compile_time_eval():  # the table is a constant, also when rollout is traced
            table = np.asarray(env.tabular_mdp(env_params).observations, np.float32)
        if per_state or table.shape[0] <= batch_size * horizon:
            states = StateTable(table)
            policy_table = policy_fn(policy_params, jnp.asarray(table))
    reset_key, action_key, env_key = jax.random.split(key, 3)
    reset_noise = jax.random.uniform(reset_key, (batch_size, env.noise_size))
    action_uniforms = jax.random.uniform(action_key, (horizon, batch_size))
    env_noise = jax.random.uniform(env_key, (horizon, batch_size, env.noise_size))

    reset = jax.vmap(env.reset_from_noise, in_axes=(0, None))
    step = jax.vmap(env.step_from_noise, in_axes=(0, 0, 0, None))
    state_index = jax.vmap(env.state_index, in_axes=(0, None))

    def scan_step(carry, inputs):
        observation, state, done = carry
        uniforms, noise = inputs
        index = state_index(state, env_params)
        probs = policy_fn(policy_params, observation) if policy_table is None else policy_table[index]
        action = sample_inverse_cdf(probs, uniforms)
        next_observation, next_state, reward, next_done, info = step(noise, state, action, env_params)
        mask = (~done).astype(reward.dtype)
        transition = (observation, action, reward * mask, next_done & ~done, mask, probs,
                      index, info)
        return (next_observation, next_state, done | next_done), transition

    observation, state = reset(reset_noise, env_params)
    done = jnp.zeros(batch_size, dtype=bool)
    _, transitions = jax.lax.scan(scan_step, (observation, state, done), (action_uniforms, env_noise))
    batch_first = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), transitions)
    observations, actions, rewards, dones, mask, probs, indices, info = batch_first
    return Trajectory(observations=observations, actions=actions, rewards=rewards, dones=dones,
                      mask=mask, policy_probs=probs, state_index=indices, info=info, states=states)


def episode_returns(trajectory: Trajectory) -> jax.Array:
    """(B,) undiscounted return of each episode."""
    return jnp.sum(trajectory.rewards * trajectory.mask, axis=-1)
