"""The credit of COALA-PG and its two baselines against a naive learner, from one backward scan.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Theorem 3.1, Eq. 6); docs/estimators/coala.md.

A meta agent plays B parallel trajectories of M inner episodes of T steps against one naive
co-player, who learns from all B episodes after every inner episode. So a reward in a later episode
depends on every trajectory of the batch through the co-player's updates, while a reward in the
current episode depends on the own trajectory only. With rewards r (B, M T), the gradient estimate
is sum_b sum_l grad log pi(a_l^b | h_l^b) W_l^b, where

* ``"coala"``:         W_l^b = (1/B) sum_{l'=l}^{end(l)} r_{l'}^b + (1/B) sum_{b'} sum_{l' > end(l)} r_{l'}^{b'}
* ``"m-fos"``:         W_l^b =       sum_{l'=l}^{end(l)} r_{l'}^b + (1/B) sum_{b'} sum_{l' > end(l)} r_{l'}^{b'}
* ``"batch-unaware"``: W_l^b = (1/B) sum_{l' >= l} r_{l'}^b

with end(l) the last step of l's inner episode (gamma = lambda = 1, no critic). One backward scan
carries the current episode's return of each trajectory, C^b, and the future: the batch mean F of
the later episodes' returns ("share"), or each trajectory's own, O^b. Two switches pick the rule:
``scale_current`` (C / B or C) and ``share_future`` (F or O / B).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

# rule -> (scale the current episode by 1/B, share the future as the batch mean)
RULES = {"coala": (True, True), "m-fos": (False, True), "batch-unaware": (True, False)}


def rule_returns(rewards: jax.Array, episode_length: int, rule: str = "coala") -> jax.Array:
    """The weights W (B, M T) of ``rule`` for one co-player's batch of rewards (B, M T) (module docstring).

    Args:
      rewards: float (B, M T), M whole inner episodes of ``episode_length`` steps per trajectory.
      episode_length: T >= 1.
      rule: "coala", "m-fos" or "batch-unaware".
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")
    if isinstance(episode_length, (bool, np.bool_)) or not isinstance(episode_length, (int, np.integer)) \
            or episode_length < 1:
        raise ValueError(f"episode_length must be a positive integer (T); got {episode_length!r}")
    chex.assert_rank(rewards, 2)
    batch, length = rewards.shape
    if length % episode_length:
        raise ValueError(f"rewards hold {length} steps per trajectory, not a whole number of inner episodes of "
                         f"{episode_length}")
    scale_current, share_future = RULES[rule]
    scale = 1.0 / batch
    ends = (jnp.arange(length) % episode_length) == episode_length - 1  # the last step of an inner episode

    def backward(carry, inputs):
        current, own_future, shared_future = carry
        reward, end = inputs
        # Crossing into an earlier episode: the episode just left becomes future.
        shared_future = jnp.where(end, shared_future + jnp.mean(current), shared_future)
        own_future = jnp.where(end, own_future + current, own_future)
        current = jnp.where(end, 0.0, current) + reward
        weight = (scale * current if scale_current else current) + (
            shared_future if share_future else scale * own_future)
        return (current, own_future, shared_future), weight

    zeros = jnp.zeros(batch, rewards.dtype)
    _, weights = jax.lax.scan(backward, (zeros, zeros, jnp.zeros((), rewards.dtype)),
                              (rewards.T, ends), reverse=True)
    return weights.T
