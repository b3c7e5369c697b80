"""TrajCV (trajectory-wise control variates) in credit-matrix form.

Cheng, Yan & Boots, "Trajectory-wise control variates for variance reduction in policy gradient
methods" (CoRL 2019, PMLR 100, 2020; arXiv:1908.03263); COCOA paper (Meulemans et al. 2023),
App. baselines; docs/estimators/trajcv.md:

    C_t(a) = Q_hat(S_t, a) + 1{a = A_t} / pi(A_t | S_t)
             * [G_t - Q_hat(S_t, A_t) - sum_{k>t} (Q_hat(S_k, A_k) - V_hat(S_k))],
    V_hat(s) = sum_b pi(b | s) Q_hat(s, b).

The all-action term Q_hat(S_t, .) is a state-action control variate; the sum over later steps
subtracts the future control variates along the same trajectory, each of which has mean 0. The
expected credit is therefore Q^pi whatever Q_hat is: TrajCV is unbiased for any critic.

Q_hat and its loss are those of the Q-critic (``cocoa.agents.q_critic``): an MLP regressed on
expected-SARSA lambda-return targets.
"""

from __future__ import annotations

import chex

from cocoa import oracle
from cocoa.agents.credit import score_credit, state_values, taken
from cocoa.agents.q_model import QModelEstimator
from cocoa.agents.returns import reward_to_go
from cocoa.agents.registry import register


def future_control_variates(q_values, actions, policy_probs, mask):
    """sum_{k>t} (Q_hat(S_k, A_k) - V_hat(S_k)) per step, (B, T), by a reverse cumulative sum.

    Args:
      q_values: (B, T, A) Q_hat(S_t, .).
      actions: int (B, T) actions A_t.
      policy_probs: (B, T, A) behaviour policy, defining V_hat(s) = sum_b pi(b | s) Q_hat(s, b).
      mask: (B, T) 1 on real steps; padding steps contribute nothing.
    """
    chex.assert_rank([q_values, actions, policy_probs, mask], [3, 2, 3, 2])
    chex.assert_equal_shape([q_values, policy_probs])
    chex.assert_equal_shape([actions, mask])
    taken_q = taken(q_values, actions)
    deviations = (taken_q - state_values(q_values, policy_probs)) * mask
    return reward_to_go(deviations, mask) - deviations  # sum over k >= t, minus k = t


def credit(rewards, actions, policy_probs, q_values, mask):
    """TrajCV credit (Cheng et al. 2020; docs/estimators/), (B, T, A); 0 on padding steps:

        C_t(a) = Q_hat(S_t, a) + 1{a = A_t} / pi(A_t | S_t)
                 * [G_t - Q_hat(S_t, A_t) - sum_{k>t} (Q_hat(S_k, A_k) - V_hat(S_k))].

    Args:
      rewards: (B, T) rewards.
      actions: int (B, T) actions.
      policy_probs: (B, T, A) behaviour policy (also defines V_hat).
      q_values: (B, T, A) Q_hat(S_t, .).
      mask: (B, T) 1 on real steps.
    """
    chex.assert_rank([rewards, actions, policy_probs, q_values, mask], [2, 2, 3, 3, 2])
    chex.assert_equal_shape([rewards, actions, mask])
    chex.assert_equal_shape([q_values, policy_probs])
    correction = (reward_to_go(rewards, mask) - taken(q_values, actions)
                  - future_control_variates(q_values, actions, policy_probs, mask))
    return q_values * mask[..., None] + score_credit(correction, actions, policy_probs, mask)


def expected_credit(mdp, policy_probs):
    """E[C_t(a) | S_t = s] = Q^pi_t(s, a), (H, S, A), whatever Q_hat is.

    Proof: E[Q_hat(S_k, A_k) - V_hat(S_k) | S_k] = sum_b pi(b | S_k) Q_hat(S_k, b) - V_hat(S_k) = 0
    for every k > t (A_k ~ pi(. | S_k) given the past), so given S_t = s the bracket has conditional
    mean Q^pi(s, A_t) - Q_hat(s, A_t); the importance weight turns it into Q^pi(s, a) - Q_hat(s, a)
    on every a, which cancels the all-action term Q_hat(s, a).
    """
    return oracle.q_values(mdp, policy_probs)


@register
class TrajCV(QModelEstimator):
    """TrajCV: REINFORCE with the Q-critic and the future trajectory-wise control variates.

    Options and model as the Q-critic's (``model_hidden_sizes``, ``td_lambda``, ``target``); the
    ``-gt`` variant uses the oracle Q^pi for Q_hat.
    """

    name = "trajcv"

    @property
    def unbiased(self) -> bool:
        return True  # its control variates have zero mean for any Q_hat
    has_exact_variant = True

    def credit(self, model_params, trajectory):
        q = self.trajectory_q_values(model_params, trajectory)
        return credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs, q, trajectory.mask)

    def expected_credit(self, model_params, mdp, policy_probs):
        del model_params
        return expected_credit(mdp, policy_probs)
