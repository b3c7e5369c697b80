"""Reward-to-go and lambda-returns over batch-first (B, T) arrays, masked after episode end."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def reward_to_go(rewards, mask):
    """G_t = sum_{k >= t} R_k per episode, (B, T); padding steps (mask 0) contribute nothing."""
    chex.assert_rank(rewards, 2)
    chex.assert_equal_shape([rewards, mask])
    rewards = rewards * mask
    return jnp.flip(jnp.cumsum(jnp.flip(rewards, -1), axis=-1), -1)


def lambda_returns(rewards, next_values, mask, td_lambda: float):
    """G^lambda_t = R_t + (1 - lambda) V(S_{t+1}) + lambda G^lambda_{t+1}, undiscounted, (B, T).

    ``next_values[:, t]`` is the bootstrap value of S_{t+1}; it is ignored (taken as 0) where the
    episode has ended, i.e. where ``mask[:, t + 1]`` is 0 or t is the last step. lambda = 1 gives
    the Monte-Carlo return.
    """
    chex.assert_rank([rewards, next_values, mask], 2)
    chex.assert_equal_shape([rewards, next_values, mask])
    next_mask = jnp.concatenate([mask[:, 1:], jnp.zeros_like(mask[:, :1])], axis=1)
    next_values = next_values * next_mask

    def step(next_return, inputs):
        reward, value, live = inputs
        current = reward + (1.0 - td_lambda) * value + td_lambda * next_return
        return current * live, current * live

    inputs = (rewards.T * mask.T, next_values.T, mask.T)
    _, returns = jax.lax.scan(step, jnp.zeros(rewards.shape[0], rewards.dtype), inputs, reverse=True)
    return returns.T
