"""Advantage (REINFORCE with a learned state-value baseline) in credit-matrix form.

Sutton & Barto (2018) §13.4; COCOA paper (Meulemans et al. 2023), App. baselines; docs/estimators/:
C_t(a) = 1{a = A_t} (G_t - V_hat(S_t)) / pi(A_t | S_t). Its expected credit is Q_t(s, a) - V_hat(s);
since sum_a grad pi(a | s) = 0 the baseline leaves the expected gradient unchanged, whatever V_hat.
V_hat is an MLP regressed on Monte-Carlo returns (td_lambda = 1) or TD(lambda) targets.
"""

from __future__ import annotations

from typing import Sequence

import chex
import jax
import jax.numpy as jnp

from cocoa import oracle
from cocoa.agents.estimator import Estimator
from cocoa.agents.policy import mlp
from cocoa.agents.credit import score_credit, value_loss
from cocoa.agents.returns import lambda_returns, reward_to_go
from cocoa.agents.registry import register


def credit(rewards, actions, policy_probs, values, mask):
    """C_t(a) = 1{a = A_t} (G_t - V_hat(S_t)) / pi(A_t | S_t), (B, T, A).

    Args:
      rewards: (B, T) rewards.
      actions: int (B, T) actions.
      policy_probs: (B, T, A) behaviour policy.
      values: (B, T) baseline V_hat(S_t).
      mask: (B, T) 1 on real steps.
    """
    chex.assert_rank([rewards, actions, policy_probs, values, mask], [2, 2, 3, 2, 2])
    chex.assert_equal_shape([rewards, actions, values, mask])
    return score_credit(reward_to_go(rewards, mask) - values, actions, policy_probs, mask)


def expected_credit(mdp, policy_probs, state_values):
    """E[C_t(a) | S_t = s] = Q_t(s, a) - V_hat(s), (H, S, A), with V_hat (S,) or per step (H, S)."""
    q = oracle.q_values(mdp, policy_probs)
    state_values = jnp.asarray(state_values, q.dtype)
    if state_values.shape == (mdp.num_states,):
        state_values = state_values[None]
    chex.assert_shape(state_values, (None, mdp.num_states))
    return q - state_values[..., None]


@register
class Advantage(Estimator):
    """REINFORCE with a learned value baseline V_hat (an MLP)."""

    name = "advantage"

    @property
    def unbiased(self) -> bool:
        return True  # any state baseline leaves the mean unchanged
    has_exact_variant = True

    def __init__(self, model_hidden_sizes: Sequence[int] = (256,), td_lambda: float = 1.0, *, mdp=None):
        super().__init__(mdp)
        if not 0.0 <= td_lambda <= 1.0:
            raise ValueError(f"td_lambda must lie in [0, 1]; got {td_lambda!r}")
        self.td_lambda = float(td_lambda)
        self.network = mlp(1, tuple(model_hidden_sizes), name="value")

    def values(self, model_params, observations):
        return self.network.apply(model_params, observations)[..., 0]

    def init_model(self, key, observation_shape, num_actions):
        del num_actions
        return self.network.init(key, jnp.zeros((1, *observation_shape), jnp.float32))

    def model_loss(self, model_params, trajectory):
        values = self.values(model_params, trajectory.observations)
        next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1)
        targets = lambda_returns(trajectory.rewards, jax.lax.stop_gradient(next_values),
                                 trajectory.mask, self.td_lambda)
        return value_loss(values, jax.lax.stop_gradient(targets), trajectory.mask)

    def exact_model(self, policy_table):
        return {"values": oracle.state_values(self.mdp, policy_table)}

    def credit(self, model_params, trajectory):
        values = self.along(model_params, trajectory, "values", self.values)
        return credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs, values, trajectory.mask)

    def expected_credit(self, model_params, mdp, policy_probs):
        if self.exact:
            return expected_credit(mdp, policy_probs, model_params["values"])
        return expected_credit(mdp, policy_probs, self.values(model_params, jnp.asarray(mdp.observations, jnp.float32)))
