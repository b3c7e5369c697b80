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

The model code here (``QModelEstimator``) is shared with TrajCV (``cocoa.agents.trajcv``).
"""

from __future__ import annotations

import numbers
from typing import Sequence

import chex
import jax
import jax.numpy as jnp

from cocoa import oracle
from cocoa.agents.advantage import value_loss
from cocoa.agents.estimator import Estimator, lookup
from cocoa.agents.policy import mlp
from cocoa.agents.returns import lambda_returns

TARGETS = ("expected", "greedy")


def state_values(q_values, policy_probs):
    """V_hat(s) = sum_b pi(b | s) Q_hat(s, b) over the last axis: (..., A) -> (...)."""
    chex.assert_equal_shape([q_values, policy_probs])
    return jnp.sum(policy_probs * q_values, axis=-1)


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
    taken = jnp.take_along_axis(q_values, actions[..., None], axis=-1)[..., 0]  # Q_hat(S_t, A_t)
    return value_loss(taken, jax.lax.stop_gradient(targets), mask)


def _check_target(target):
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(repr(t) for t in TARGETS)}; got {target!r}")


class QModelEstimator(Estimator):
    """Base of the estimators that learn Q_hat (Q-critic, TrajCV): the model, its loss and its oracle.

    Options: ``model_hidden_sizes`` (default (256,), as the COCOA paper's critic); ``td_lambda``
    (default 0.9: mostly Monte-Carlo, a little bootstrapping to cut the variance of the distractor
    rewards; 1 = pure Monte-Carlo returns); ``target`` ("expected", default, or "greedy").

    Learned: ``model_params`` are the MLP's parameters. Ground truth (``mdp=``): ``model_params`` is
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
        if self.exact:
            return lookup(model_params["q"], trajectory.state_index).astype(trajectory.rewards.dtype)
        return self.q_values(model_params, trajectory.observations)

    def table_q_values(self, model_params, mdp):
        """Q_hat on every state of ``mdp``: (S, A) for the network, (H, S, A) for the oracle."""
        if self.exact:
            return model_params["q"]
        return self.q_values(model_params, jnp.asarray(mdp.observations, jnp.float32))


class QCritic(QModelEstimator):
    """Q-critic: the learned Q_hat(S_t, .) on every action (minus its pi-average if ``baseline``)."""

    name = "q-critic"
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
