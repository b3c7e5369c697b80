"""The learned action-value model Q_hat shared by Q-critic and TrajCV: an MLP regressed on on-policy
lambda-return targets (expected-SARSA style, or greedy on request); docs/estimators/q_critic.md.

    target_t = R_t + (1 - lambda) V_hat(S_{t+1}) + lambda target_{t+1},
    V_hat(s) = sum_b pi(b | s) Q_hat(s, b)   (or max_b Q_hat(s, b) with target="greedy").
"""

from __future__ import annotations

import numbers
from typing import Sequence

import chex
import jax
import jax.numpy as jnp

from cocoa import oracle
from cocoa.agents.credit import state_values, taken, value_loss
from cocoa.agents.estimator import Estimator
from cocoa.agents.policy import mlp
from cocoa.agents.returns import lambda_returns

TARGETS = ("expected", "greedy")


def bootstrap_values(q_values, policy_probs, target: str = "expected"):
    """Value of each state used to bootstrap a Q target, (B, T) from (B, T, A).

    ``"expected"``: V_hat(s) = sum_b pi(b | s) Q_hat(s, b) (expected SARSA; on-policy).
    ``"greedy"``: max_b Q_hat(s, b) (Q-learning style; estimates the wrong quantity for a
    non-greedy policy).
    """
    _check_target(target)
    chex.assert_rank([q_values, policy_probs], 3)
    if target == "expected":
        return state_values(q_values, policy_probs)
    return jnp.max(q_values, axis=-1)


def q_lambda_targets(rewards, q_values, policy_probs, mask, td_lambda: float, target: str = "expected"):
    """lambda-return targets for Q_hat(S_t, A_t), (B, T), undiscounted:

        target_t = R_t + (1 - lambda) U(S_{t+1}) + lambda target_{t+1},

    U = ``bootstrap_values(q_values, policy_probs, target)``; no bootstrap after the episode's last
    real step (``returns.lambda_returns``). lambda = 1 is the Monte-Carlo return G_t, whatever
    ``target``. Sutton & Barto (2018) §12 (lambda-returns) and §6.6 (expected SARSA).

    Args:
      rewards: (B, T) rewards.
      q_values: (B, T, A) Q_hat(S_t, .) (treated as constants by the caller's loss).
      policy_probs: (B, T, A) behaviour policy.
      mask: (B, T) 1 on real steps.
      td_lambda: lambda in [0, 1].
      target: ``"expected"`` or ``"greedy"``.
    """
    chex.assert_rank([rewards, q_values, policy_probs, mask], [2, 3, 3, 2])
    chex.assert_equal_shape([rewards, mask])
    chex.assert_equal_shape([q_values, policy_probs])
    values = bootstrap_values(q_values, policy_probs, target)
    next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1)
    return lambda_returns(rewards, next_values, mask, td_lambda)


def q_loss(q_values, actions, rewards, policy_probs, mask, td_lambda: float, target: str = "expected"):
    """0.5 (Q_hat(S_t, A_t) - target_t)^2 averaged over real steps, targets under stop-gradient.

    Args:
      q_values: (B, T, A) Q_hat(S_t, .), differentiable.
      actions: int (B, T) actions A_t.
      rewards, policy_probs, mask, td_lambda, target: as in ``q_lambda_targets``.
    """
    chex.assert_rank([q_values, actions], [3, 2])
    targets = q_lambda_targets(rewards, jax.lax.stop_gradient(q_values), policy_probs, mask, td_lambda, target)
    taken_q = taken(q_values, actions)  # Q_hat(S_t, A_t)
    return value_loss(taken_q, jax.lax.stop_gradient(targets), mask)


def _check_target(target):
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(repr(t) for t in TARGETS)}; got {target!r}")


class QModelEstimator(Estimator):
    """Base of the estimators that learn Q_hat (Q-critic, TrajCV): the model, its loss and its oracle.

    Options: ``model_hidden_sizes`` (default (256,), as the COCOA paper's critic); ``td_lambda``
    (default 0.9: mostly Monte-Carlo, a little bootstrapping to cut the variance of the distractor
    rewards; 1 = pure Monte-Carlo returns); ``target`` ("expected", default, or "greedy").

    Learned: ``model_params`` are the MLP's parameters. Exact (``mdp=``): ``model_params`` is
    ``{"q": Q^pi}`` (H, S, A) from ``cocoa.oracle.q_values`` for the behaviour policy.
    """

    has_exact_variant = True

    def __init__(self, model_hidden_sizes: Sequence[int] = (256,), td_lambda: float = 0.9,
                 target: str = "expected", *, mdp=None):
        super().__init__(mdp)
        if not isinstance(td_lambda, numbers.Real) or not 0.0 <= td_lambda <= 1.0:
            raise ValueError(f"td_lambda must lie in [0, 1]; got {td_lambda!r}")
        _check_target(target)
        self.td_lambda = float(td_lambda)
        self.target = target
        self.model_hidden_sizes = tuple(int(h) for h in model_hidden_sizes)
        self._networks: dict = {}  # one (init, apply) pair per number of actions

    def network(self, num_actions: int):
        """The Q_hat MLP (observation -> ``num_actions`` values) as a haiku (init, apply) pair."""
        if num_actions not in self._networks:
            self._networks[num_actions] = mlp(num_actions, self.model_hidden_sizes, name="q")
        return self._networks[num_actions]

    def q_values(self, model_params, observations):
        """Q_hat(o, .) (..., A) of the learned model; A is read from the output layer's parameters."""
        output_layer = model_params[f"q/~/linear_{len(self.model_hidden_sizes)}"]
        return self.network(output_layer["b"].shape[-1]).apply(model_params, observations)

    def init_model(self, key, observation_shape, num_actions):
        return self.network(num_actions).init(key, jnp.zeros((1, *observation_shape), jnp.float32))

    def model_loss(self, model_params, trajectory):
        q = self.q_values(model_params, trajectory.observations)
        return q_loss(q, trajectory.actions, trajectory.rewards, trajectory.policy_probs, trajectory.mask,
                      self.td_lambda, self.target)

    def exact_model(self, policy_table):
        return {"q": oracle.q_values(self.mdp, policy_table)}

    def trajectory_q_values(self, model_params, trajectory):
        """(B, T, A) Q_hat(S_t, .) along the trajectories (oracle Q^pi_t(S_t, .) for ``-gt``)."""
        return self.along(model_params, trajectory, "q", self.q_values)

    def table_q_values(self, model_params, mdp):
        """Q_hat on every state of ``mdp``: (S, A) for the network, (H, S, A) for the oracle."""
        if self.exact:
            return model_params["q"]
        return self.q_values(model_params, jnp.asarray(mdp.observations, jnp.float32))
