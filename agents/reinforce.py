"""REINFORCE in credit-matrix form.

Williams (1992), "Simple statistical gradient-following algorithms"; in the COCOA paper's notation
(Meulemans et al. 2023, Eq. 2; docs/estimators/): C_t(a) = 1{a = A_t} G_t / pi(A_t | S_t), whose
expectation given S_t = s is Q_t(s, a), so REINFORCE is unbiased.
"""

from __future__ import annotations

import chex

from cocoa import oracle
from cocoa.agents.estimator import Estimator
from cocoa.agents.credit import score_credit
from cocoa.agents.returns import reward_to_go
from cocoa.agents.registry import register


def credit(rewards, actions, policy_probs, mask):
    """C_t(a) = 1{a = A_t} G_t / pi(A_t | S_t), (B, T, A); 0 on padding steps.

    Args:
      rewards: (B, T) rewards R_t.
      actions: int (B, T) actions A_t.
      policy_probs: (B, T, A) behaviour policy at each step.
      mask: (B, T) 1 on real steps.
    """
    chex.assert_rank([rewards, actions, policy_probs, mask], [2, 2, 3, 2])
    chex.assert_equal_shape([rewards, actions, mask])
    returns = reward_to_go(rewards, mask)
    return score_credit(returns, actions, policy_probs, mask)


def expected_credit(mdp, policy_probs):
    """E[C_t(a) | S_t = s] = Q_t(s, a), (H, S, A)."""
    return oracle.q_values(mdp, policy_probs)


@register
class Reinforce(Estimator):
    """REINFORCE: Monte-Carlo return on the taken action; no learned model."""

    name = "reinforce"

    @property
    def unbiased(self) -> bool:
        return True  # E[G_t | S_t, A_t] = Q_t

    def credit(self, model_params, trajectory):
        del model_params
        return credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs, trajectory.mask)

    def expected_credit(self, model_params, mdp, policy_probs):
        del model_params
        return expected_credit(mdp, policy_probs)
