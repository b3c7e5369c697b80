"""Q-critic (all-action policy gradient with a learned state-action value) in credit-matrix form.

COCOA paper (Meulemans et al. 2023), App. baselines; docs/estimators/q_critic.md:
C_t(a) = Q_hat(S_t, a), or with ``baseline=True`` the advantage form
C_t(a) = Q_hat(S_t, a) - sum_b pi(b | S_t) Q_hat(S_t, b). Its expected credit is the model itself
(minus its pi-average); the baseline never changes the expected gradient (sum_a grad pi(a | s) = 0),
so the estimator is unbiased exactly when Q_hat = Q^pi up to a per-state shift.

Q_hat is an MLP (observation -> A values) regressed on on-policy lambda-return targets,
expected-SARSA style (the critic of the *current* policy):

    target_t = R_t + (1 - lambda) V_hat(S_{t+1}) + lambda target_{t+1},
    V_hat(s) = sum_b pi(b | s) Q_hat(s, b)

with pi the behaviour policy recorded in the trajectory. ``target="greedy"`` bootstraps with
max_b Q_hat(S_{t+1}, b) instead (Peng-style Q(lambda), as in the COCOA paper's code): for lambda < 1
and a non-greedy policy that is not Q^pi (it overestimates it; for lambda > 0 it is not Q* either),
so it is offered only as an explicit option. lambda = 1 gives Monte-Carlo targets G_t for both.

The learned model (``QModelEstimator``, its targets and loss) is in ``cocoa.agents.q_model``, shared with TrajCV.
"""

from __future__ import annotations

from typing import Sequence

import chex
import jax.numpy as jnp

from cocoa.agents.credit import state_values
from cocoa.agents.q_model import QModelEstimator
from cocoa.agents.registry import register


def credit(q_values, policy_probs, mask, baseline: bool = True):
    """C_t(a) = Q_hat(S_t, a) [- sum_b pi(b | S_t) Q_hat(S_t, b)], (B, T, A); 0 on padding steps.

    COCOA paper (Meulemans et al. 2023), App. baselines; docs/estimators/q_critic.md.

    Args:
      q_values: (B, T, A) Q_hat(S_t, .) at each step.
      policy_probs: (B, T, A) behaviour policy at each step.
      mask: (B, T) 1 on real steps.
      baseline: subtract the policy-average of Q_hat (the advantage form).
    """
    chex.assert_rank([q_values, policy_probs, mask], [3, 3, 2])
    chex.assert_equal_shape([q_values, policy_probs])
    chex.assert_equal_shape_prefix([q_values, mask], 2)
    if baseline:
        q_values = q_values - state_values(q_values, policy_probs)[..., None]
    return q_values * mask[..., None]


def expected_credit(mdp, policy_probs, q_values, baseline: bool = True):
    """E[C_t(a) | S_t = s] = Q_hat(s, a) [- sum_b pi(b | s) Q_hat(s, b)], (H, S, A).

    The credit is a deterministic function of S_t, so its expectation is the model itself.

    Args:
      mdp: the TabularMDP (for its horizon and sizes).
      policy_probs: (S, A) policy on every state.
      q_values: Q_hat on every state, (S, A) or per step (H, S, A).
      baseline: as in ``credit``.
    """
    policy_probs = jnp.asarray(policy_probs)
    q_values = jnp.asarray(q_values)
    chex.assert_shape(policy_probs, (mdp.num_states, mdp.num_actions))
    if q_values.ndim == 2:
        q_values = q_values[None]
    chex.assert_shape(q_values, (None, mdp.num_states, mdp.num_actions))
    q_values = jnp.broadcast_to(q_values, (mdp.horizon, mdp.num_states, mdp.num_actions))
    if baseline:
        q_values = q_values - jnp.sum(policy_probs * q_values, axis=-1, keepdims=True)
    return q_values


@register
class QCritic(QModelEstimator):
    """Q-critic: the learned Q_hat(S_t, .) on every action (minus its pi-average if ``baseline``)."""

    name = "q-critic"

    @property
    def unbiased(self) -> bool:
        return self.exact  # exactly when Q_hat = Q^pi (up to a per-state shift)
    has_exact_variant = True

    def __init__(self, model_hidden_sizes: Sequence[int] = (256,), td_lambda: float = 0.9,
                 target: str = "expected", baseline: bool = True, *, mdp=None):
        super().__init__(model_hidden_sizes, td_lambda, target, mdp=mdp)
        if not isinstance(baseline, bool):
            raise ValueError(f"baseline must be True or False; got {baseline!r}")
        self.baseline = baseline

    def credit(self, model_params, trajectory):
        q = self.trajectory_q_values(model_params, trajectory)
        return credit(q, trajectory.policy_probs, trajectory.mask, self.baseline)

    def expected_credit(self, model_params, mdp, policy_probs):
        return expected_credit(mdp, policy_probs, self.table_q_values(model_params, mdp), self.baseline)
