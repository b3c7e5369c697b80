"""Policies: an epsilon-mixed softmax over an MLP's logits, and tabular policies for tests."""

from __future__ import annotations

from typing import Sequence

import haiku as hk
import jax.numpy as jnp

from cocoa.oracle import mixed_policy
from cocoa.types import TabularMDP


def mlp(output_size: int, hidden_sizes: Sequence[int], name: str) -> hk.Transformed:
    """A ReLU MLP over flattened observations, as a pure (init, apply) pair without rng in apply."""
    def forward(observations):
        flat = jnp.reshape(observations, (*observations.shape[:-1], -1))
        return hk.nets.MLP([*hidden_sizes, output_size], name=name)(flat)

    return hk.without_apply_rng(hk.transform(forward))


class MLPPolicy:
    """pi(.|o) = (1 - epsilon) softmax(f_theta(o)) + epsilon / A, with f_theta an MLP (docs/estimators/)."""

    def __init__(self, num_actions: int, hidden_sizes: Sequence[int] = (64, 64), epsilon: float = 0.0):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon!r}")
        self.num_actions = num_actions
        self.epsilon = float(epsilon)
        self.network = mlp(num_actions, hidden_sizes, name="policy")

    def init(self, key, observation_shape):
        return self.network.init(key, jnp.zeros((1, *observation_shape), jnp.float32))

    def logits(self, params, observations):
        return self.network.apply(params, observations)

    def probs(self, params, observations, epsilon: float | None = None):
        epsilon = self.epsilon if epsilon is None else epsilon
        return mixed_policy(self.logits(params, observations), epsilon)


def tabular_policy(mdp: TabularMDP, epsilon: float = 0.0):
    """A policy_fn(logits (S, A), observations) that looks each observation up in ``mdp.observations``.

    For tests and exact analyses: a tabular softmax policy over the MDP's states that runs in
    rollouts of the real environment. Observations must be distinct per state.
    """
    table = jnp.asarray(mdp.observations, jnp.float32)

    def policy_fn(logits, observations):
        distance = jnp.sum(jnp.abs(observations[..., None, :] - table), axis=-1)
        return mixed_policy(logits[jnp.argmin(distance, axis=-1)], epsilon)

    return policy_fn


def entropy(probs, axis: int = -1):
    """Shannon entropy of probability vectors (0 log 0 = 0)."""
    return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0), axis=axis)
