"""The credit of COALA-PG and its two baselines against a naive learner, from one backward scan.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Theorem 3.1, Eqs. 6-7); docs/estimators/coala.md.

A meta agent plays B parallel trajectories of M inner episodes of T steps against one naive
co-player, who learns from all B episodes after every inner episode. So a reward in a later episode
depends on every trajectory of the batch through the co-player's updates, while a reward in the
current episode depends on the own trajectory only. With rewards r (B, M T), the gradient estimate
is sum_b sum_l grad log pi(a_l^b | h_l^b) W_l^b, where

* ``"coala"``:         W_l^b = (1/B) sum_{l'=l}^{end(l)} r_{l'}^b + (1/B) sum_{b'} sum_{l' > end(l)} r_{l'}^{b'}
* ``"m-fos"``:         W_l^b =       sum_{l'=l}^{end(l)} r_{l'}^b + (1/B) sum_{b'} sum_{l' > end(l)} r_{l'}^{b'}
* ``"batch-unaware"``: W_l^b = (1/B) sum_{l' >= l} r_{l'}^b

with end(l) the last step of l's inner episode (gamma = lambda = 1, no critic). One backward scan
(``shaping_scan``) carries the current episode's part of each trajectory, C^b, and the future: the
batch mean F of the later episodes' parts ("share"), or each trajectory's own, O^b. Two switches pick
the rule: ``scale_current`` (C / B or C) and ``share_future`` (F or O, times 1/B where the current
part is scaled). With a critic, the scan's input is the TD error instead of the reward and every
part decays by gamma lambda per step: the GAE advantages of each rule. Both switches off give the
ordinary lambda-returns / GAE over the whole meta-trajectory, which is what the critic is trained on.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

# rule -> (scale the current episode by 1/B, share the future as the batch mean)
RULES = {"coala": (True, True), "m-fos": (False, True), "batch-unaware": (True, False)}


def _check_rule(rule):
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")


def _check_layout(rewards, episode_length):
    if isinstance(episode_length, (bool, np.bool_)) or not isinstance(episode_length, (int, np.integer)) \
            or episode_length < 1:
        raise ValueError(f"episode_length must be a positive integer (T); got {episode_length!r}")
    chex.assert_rank(rewards, 2)
    if rewards.shape[1] % episode_length:
        raise ValueError(f"rewards hold {rewards.shape[1]} steps per trajectory, not a whole number of inner "
                         f"episodes of {episode_length}")


def _check_unit(name, value):
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")


def shaping_scan(deltas: jax.Array, episode_length: int, *, scale_current: bool, share_future: bool,
                 decay: float = 1.0) -> jax.Array:
    """The backward scan under the rules (module docstring): (B, M T) weights from (B, M T) inputs.

    Args:
      deltas: float (B, M T); the rewards (no critic) or the TD errors r_l + gamma V_{l+1} - V_l.
      episode_length: T; the inputs hold M whole inner episodes per trajectory.
      scale_current: divide the current episode's part by B (and the own future with it).
      share_future: at every episode boundary, the future is the batch mean of the later episodes'
        parts instead of the trajectory's own.
      decay: gamma lambda, applied per step to every part. 1 by default: any decay < 1 shrinks the
        shaping signal, which crosses at least one episode boundary, by decay^T.
    """
    _check_layout(deltas, episode_length)
    _check_unit("decay", decay)
    batch, length = deltas.shape
    scale = 1.0 / batch if scale_current else 1.0
    ends = (jnp.arange(length) % episode_length) == episode_length - 1  # the last step of an inner episode

    def backward(carry, inputs):
        current, own_future, shared_future = (decay * x for x in carry)
        delta, end = inputs
        # Crossing into an earlier episode: the episode just left becomes future.
        shared_future = jnp.where(end, shared_future + jnp.mean(current), shared_future)
        own_future = jnp.where(end, own_future + current, own_future)
        current = jnp.where(end, 0.0, current) + delta
        weight = scale * current + (shared_future if share_future else scale * own_future)
        return (current, own_future, shared_future), weight

    zeros = jnp.zeros(batch, deltas.dtype)
    _, weights = jax.lax.scan(backward, (zeros, zeros, jnp.zeros((), deltas.dtype)), (deltas.T, ends), reverse=True)
    return weights.T


def rule_returns(rewards: jax.Array, episode_length: int, rule: str = "coala") -> jax.Array:
    """The weights W (B, M T) of ``rule`` for one co-player's batch of rewards (B, M T) (module
    docstring), gamma = lambda = 1 and no critic.

    Args:
      rewards: float (B, M T), M whole inner episodes of ``episode_length`` steps per trajectory.
      episode_length: T >= 1.
      rule: "coala", "m-fos" or "batch-unaware".
    """
    _check_rule(rule)
    scale_current, share_future = RULES[rule]
    return shaping_scan(rewards, episode_length, scale_current=scale_current, share_future=share_future)


def rule_advantages(rewards: jax.Array, values: jax.Array, episode_length: int, rule: str = "coala", *,
                    discount: float = 1.0, gae_lambda: float = 1.0, bootstrap_value=None):
    """GAE advantages of ``rule`` and the critic's lambda-return targets, from one critic.

    The critic estimates each trajectory's own return-to-go over the rest of the meta-trajectory
    (the batch-unaware return), so its targets are the ordinary lambda-returns, both switches off.
    The advantages are the same scan under the rule's switches, on the TD errors.

    Args:
      rewards, values: float (B, M T); ``values[:, l]`` is V(h_l).
      episode_length: T.
      rule: "coala", "m-fos" or "batch-unaware".
      discount, gae_lambda: gamma and lambda in [0, 1].
      bootstrap_value: V after the last step, (B,); 0 (the meta-trajectory ends) by default.

    Returns:
      (advantages (B, M T), critic targets (B, M T)).
    """
    _check_rule(rule)
    _check_unit("discount", discount)
    _check_unit("gae_lambda", gae_lambda)
    chex.assert_equal_shape([rewards, values])
    last = jnp.zeros(values.shape[:1], values.dtype) if bootstrap_value is None else bootstrap_value
    chex.assert_shape(last, values.shape[:1])
    next_values = jnp.concatenate([values[:, 1:], last[:, None]], axis=1)
    deltas = rewards + discount * next_values - values
    decay = discount * gae_lambda
    scale_current, share_future = RULES[rule]
    advantages = shaping_scan(deltas, episode_length, scale_current=scale_current, share_future=share_future,
                              decay=decay)
    targets = values + shaping_scan(deltas, episode_length, scale_current=False, share_future=False, decay=decay)
    return advantages, targets
