"""Credit primitives shared by the estimators: the taken action's entry, score-form credit, value
regression, state values from action values, sums over later steps by object class, and the
later pairs (t, k > t).

Every estimator module builds on these (and on ``returns``); none imports another estimator.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np


def taken(values, actions):
    """values[..., A_t]: the taken action's entry, (B, T) from (B, T, A) and int actions (B, T)."""
    return jnp.take_along_axis(values, actions[..., None], axis=-1)[..., 0]


def score_credit(signal, actions, policy_probs, mask):
    """Credit ``signal_t / pi(A_t | S_t)`` on the taken action only: the score-function form, (B, T, A)."""
    chex.assert_equal_shape([signal, actions, mask])
    weight = signal / taken(policy_probs, actions) * mask
    return jax.nn.one_hot(actions, policy_probs.shape[-1], dtype=weight.dtype) * weight[..., None]


def value_loss(values, targets, mask):
    """Mean squared error 0.5 (V_hat - target)^2 over real steps."""
    chex.assert_equal_shape([values, targets, mask])
    return 0.5 * jnp.sum(jnp.square(values - targets) * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def state_values(q_values, policy_probs):
    """V_hat(s) = sum_b pi(b | s) Q_hat(s, b) over the last axis: (..., A) -> (...)."""
    chex.assert_equal_shape([q_values, policy_probs])
    return jnp.sum(policy_probs * q_values, axis=-1)


def later_sums(values, classes, num_objects: int, mask):
    """sum_{k>t, U_k = u} values_k, (B, T, U): what each object class collects after step t."""
    chex.assert_rank([values, classes, mask], 2)
    per_step = jax.nn.one_hot(classes, num_objects, dtype=values.dtype) * (values * mask)[..., None]
    from_here = jnp.flip(jnp.cumsum(jnp.flip(per_step, 1), axis=1), 1)
    return jnp.concatenate([from_here[:, 1:], jnp.zeros_like(from_here[:, :1])], axis=1)


def later_pair_indices(length: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (t, k) with k > t of a length-``length`` trajectory, as two index arrays of
    T (T - 1) / 2 entries (row-major: t, then k)."""
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be a positive integer (trajectory steps); got {length!r}")
    return np.triu_indices(length, k=1)
