"""The hindsight family in credit-matrix form: COCOA's credit, its expected value, the hindsight loss,
and the estimator base that COCOA-reward, HCA-state and COCOA-feature share.

Meulemans et al. 2023, "Would I have gotten that reward? Long-term credit assignment by
counterfactual contribution analysis", Eq. 4-6 (COCOA estimator); Harutyunyan et al. 2019,
"Hindsight Credit Assignment" (state-conditioned HCA, "HCA+" in the COCOA paper). docs/estimators/:

    C_t(a) = 1{a = A_t} R_t / pi(A_t | S_t) + sum_{k>t} (w(S_t, a, U_k) - 1) R_k,
    w(s, a, u) = p^pi(A_t = a | S_t = s, U' = u) / pi(a | s).

Members differ only in the hindsight object U_k: the reward value (COCOA-reward, optionally
refined into groups), learned reward features (COCOA-feature) or the later state (HCA-state). When U takes few values the sum over later steps regroups exactly by class:
sum_u (w(S_t, a, u) - 1) * sum_{k>t, U_k = u} R_k, so credit and loss cost O(B T U) instead of
O(B T^2). The "-1" is a baseline (sum_a grad pi(a | s) = 0): it changes variance, not the mean.

Expected credit on a TabularMDP (exact, from the current coefficients w):
    E_t(s, a) = r(s, a) + sum_u (w(s, a, u) - 1) * E^pi[sum_{k>t} R_k 1{U_k = u} | S_t = s].
With exact coefficients and objects that fully predict the reward (U = R or U = S), this is
Q_t(s, a) - V_t(s) + r^pi(s), so the estimator is unbiased.
"""

from __future__ import annotations

import abc
from typing import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cocoa import oracle
from cocoa.agents.credit import later_pair_indices, later_sums, score_credit
from cocoa.agents.estimator import Estimator, lookup
from cocoa.agents.hindsight import HindsightNetwork, check_network_options


def credit(rewards, actions, policy_probs, coefficients, later_rewards, mask):
    """COCOA credit from per-class coefficients (the regrouped form), (B, T, A).

    Args:
      rewards: (B, T) rewards R_t.
      actions: int (B, T) actions A_t.
      policy_probs: (B, T, A) behaviour policy.
      coefficients: (B, T, A, U) w(S_t, a, u) for every object class u.
      later_rewards: (B, T, U) sum_{k>t, U_k = u} R_k (``hindsight.later_sums``).
      mask: (B, T) 1 on real steps.
    """
    chex.assert_rank([rewards, actions, policy_probs, coefficients, later_rewards, mask], [2, 2, 3, 4, 3, 2])
    immediate = score_credit(rewards, actions, policy_probs, mask)
    counterfactual = jnp.einsum("btau,btu->bta", coefficients - 1.0, later_rewards)
    return immediate + counterfactual * mask[..., None]


def pairwise_credit(rewards, actions, policy_probs, pair_coefficients, mask):
    """COCOA credit with one coefficient per pair (t, k > t) (objects that take many values), (B, T, A).

    Args:
      pair_coefficients: (B, P, A) w(S_t, a, U_k) for the P = T (T - 1) / 2 pairs of
        ``later_pair_indices(T)``, in its order.
    """
    chex.assert_rank([rewards, actions, policy_probs, pair_coefficients, mask], [2, 2, 3, 3, 2])
    earlier, later = later_pair_indices(rewards.shape[1])
    chex.assert_axis_dimension(pair_coefficients, 1, len(earlier))
    immediate = score_credit(rewards, actions, policy_probs, mask)
    per_pair = (pair_coefficients - 1.0) * ((rewards * mask)[:, later] * mask[:, earlier])[..., None]
    return immediate + jnp.zeros_like(immediate).at[:, earlier].add(per_pair)


def expected_credit(mdp, policy_probs, coefficients, hindsight_map, num_objects: int):
    """E_t(s, a) = r(s, a) + sum_u (w(s, a, u) - 1) E^pi[sum_{k>t} R_k 1{U_k = u} | S_t = s], (H, S, A).

    Args:
      mdp: the MDP.
      policy_probs: (S, A) policy.
      coefficients: w as (S, A, U), or per step (H, S, A, U).
      hindsight_map: (S, A, K) object class of each (state, action, reward value).
      num_objects: U.
    """
    _, later_rewards = oracle.later_occurrences(mdp, policy_probs, hindsight_map, num_objects)
    policy_probs = jnp.asarray(policy_probs, later_rewards.dtype)
    from_state = jnp.einsum("sa,tsau->tsu", policy_probs, later_rewards)  # (H, S, U)
    coefficients = jnp.asarray(coefficients, later_rewards.dtype)
    if coefficients.ndim == 3:
        coefficients = coefficients[None]
    chex.assert_shape(coefficients, (None, mdp.num_states, mdp.num_actions, num_objects))
    rewards = jnp.asarray(mdp.reward_probs, later_rewards.dtype) @ jnp.asarray(mdp.reward_values, later_rewards.dtype)
    return rewards[None] + jnp.einsum("tsau,tsu->tsa", coefficients - 1.0, from_state)


def hindsight_loss(log_probs, actions, weights):
    """Cross-entropy -sum w log p(A_t | S_t, u) / sum w over the pairs or classes given.

    Args:
      log_probs: (B, N, U, A) log p(a | S_t, u) for every step t of N (or every pair (t, k > t) of
        N, with U = 1) and class u.
      actions: int (B, N) A_t of each step (or of each pair's earlier step).
      weights: (B, N, U) how many times each (t, u) pair counts (0 for no pair).
    """
    chex.assert_rank([log_probs, actions, weights], [4, 2, 3])
    taken = jnp.take_along_axis(log_probs, actions[:, :, None, None], axis=-1)[..., 0]
    return -jnp.sum(weights * taken) / jnp.maximum(jnp.sum(weights), 1.0)


class HindsightEstimator(Estimator):
    """Base of the hindsight family: a hindsight network (learned) or the oracle's coefficients (-gt).

    A member says what its object U_k is through ``object_map`` (the object class of every (state,
    action, reward value), for the oracle and the expected credit), ``exact_classes`` (the class
    of U_k along trajectories, in the same numbering) and its learned credit and coefficients.
    ``ClassHindsightEstimator`` serves objects that take few classes; HCA-state has one object per
    later step.
    """

    has_exact_variant = True
    #: Train only on pairs whose later reward is non-zero (COCOA-reward, COCOA-feature).
    only_rewarding: bool = False

    def __init__(self, model_hidden_sizes: Sequence[int], network_options: dict, mdp):
        super().__init__(mdp)
        check_network_options(**network_options)
        self.model_hidden_sizes = tuple(model_hidden_sizes)
        self.network_options = dict(network_options)

    @abc.abstractmethod
    def object_map(self, model_params, mdp) -> tuple[jax.Array, int]:
        """(S, A, K) object class of each (state, action, reward value) of ``mdp``, and the class count U."""

    @abc.abstractmethod
    def exact_classes(self, trajectory) -> jax.Array:
        """int (B, T) class of U_t at every step, numbered as ``object_map``'s (for the -gt variant)."""

    @abc.abstractmethod
    def learned_credit(self, model_params, trajectory) -> jax.Array:
        """(B, T, A) credit from the learned hindsight network."""

    @abc.abstractmethod
    def learned_coefficients(self, model_params, mdp, policy_probs) -> jax.Array:
        """(S, A, U) the learned w(s, a, u) on every state of ``mdp``, classes as ``object_map``'s."""

    @property
    def unbiased(self) -> bool:
        return self.exact  # exact coefficients of objects that predict the reward; learned ones are not

    def network(self, num_actions: int) -> HindsightNetwork:
        return HindsightNetwork(num_actions, self.model_hidden_sizes, **self.network_options)

    def counted(self, trajectory):
        """(B, T) later steps that count as training pairs."""
        nonzero = (trajectory.rewards != 0) if self.only_rewarding else 1.0
        return trajectory.mask * nonzero

    def exact_model(self, policy_table):
        hindsight_map, num_objects = self.object_map(None, self.mdp)
        return {"coefficients": oracle.contribution_coefficients(self.mdp, policy_table, hindsight_map, num_objects)}

    def credit(self, model_params, trajectory):
        if not self.exact:
            return self.learned_credit(model_params, trajectory)
        rewards, mask = trajectory.rewards, trajectory.mask
        coefficients = lookup(model_params["coefficients"], trajectory.state_index).astype(rewards.dtype)
        later_rewards = later_sums(rewards, self.exact_classes(trajectory), coefficients.shape[-1], mask)
        return credit(rewards, trajectory.actions, trajectory.policy_probs, coefficients, later_rewards, mask)

    def expected_credit(self, model_params, mdp, policy_probs):
        hindsight_map, num_objects = self.object_map(model_params, mdp)
        coefficients = (model_params["coefficients"] if self.exact
                        else self.learned_coefficients(model_params, mdp, policy_probs))
        return expected_credit(mdp, policy_probs, coefficients, hindsight_map, num_objects)


class ClassHindsightEstimator(HindsightEstimator):
    """Objects that take one of ``num_objects`` classes (the reward value, learned reward features).

    The network runs once per (step, class), or once per (state, class) on tabular environments,
    and credit and loss regroup exactly by class: O(B T U) instead of O(B T^2) pairs. Only the
    classes that can carry a reward (``active_classes``) are evaluated.
    """

    num_objects: int

    @abc.abstractmethod
    def classes(self, model_params, trajectory) -> jax.Array:
        """int (B, T) class of U_t at every step."""

    def class_features(self):
        """(U, F) the network input of each class (default: its one-hot code)."""
        return jnp.eye(self.num_objects, dtype=jnp.float32)

    def active_classes(self) -> np.ndarray:
        """Classes that can carry a non-zero reward; the others add nothing to credit or loss."""
        return np.arange(self.num_objects)

    def batch_classes(self, model_params, trajectory):
        """(int (B, T) class of U_t, the class count U, the classes evaluated (U',), (U', F) their network
        inputs). Fixed classes by default; COCOA-feature numbers the distinct objects of each batch."""
        active = self.active_classes()
        return self.classes(model_params, trajectory), self.num_objects, active, self.class_features()[active]

    def object_features(self, model_params, mdp):
        """((U, F) the network input of each class of ``object_map``, the classes that can carry a reward)."""
        del model_params, mdp
        return self.class_features(), self.active_classes()

    def hindsight_params(self, model_params):
        """The hindsight network's parameters within ``model_params``."""
        return model_params

    def exact_classes(self, trajectory):
        return self.classes(None, trajectory)

    def init_model(self, key, observation_shape, num_actions):
        return self.network(num_actions).init(key, observation_shape, self.class_features().shape[-1])

    def class_log_coefficients(self, model_params, trajectory):
        """log w and log p for every active class: (B, T, U', A) each (``active_classes``).

        When the trajectory says so (``num_states``) the network runs once per state, with the
        behaviour policy of each visited state, and is read at the steps' state indices.
        """
        network = self.network(trajectory.num_actions)
        features = self.batch_classes(model_params, trajectory)[3]
        params = self.hindsight_params(model_params)
        if not trajectory.num_states:
            return network.log_coefficients(params, trajectory.observations[:, :, None, :], features[None, None],
                                            trajectory.policy_probs[:, :, None, :])
        observations = trajectory.state_observations()
        policy_table = trajectory.per_state(trajectory.policy_probs, fill=1.0)  # unvisited rows are never read
        per_state = network.log_coefficients(params, observations[:, None, :], features[None], policy_table[:, None, :])
        return tuple(table[trajectory.state_index] for table in per_state)

    def model_loss_and_credit(self, model_params, trajectory):
        # One network pass serves both: log p for the loss, w = exp(log w) for the credit.
        log_coefficients, log_probs = self.class_log_coefficients(model_params, trajectory)
        classes, num_classes, active, _ = self.batch_classes(model_params, trajectory)
        weights = later_sums(jnp.ones_like(trajectory.rewards), classes, num_classes,
                             self.counted(trajectory))[..., active]
        loss = hindsight_loss(log_probs, trajectory.actions, weights)
        later_rewards = later_sums(trajectory.rewards, classes, num_classes, trajectory.mask)[..., active]
        coefficients = jnp.swapaxes(jnp.exp(jax.lax.stop_gradient(log_coefficients)), -1, -2)
        return loss, credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs, coefficients,
                            later_rewards, trajectory.mask)

    def model_loss(self, model_params, trajectory):
        return self.model_loss_and_credit(model_params, trajectory)[0]  # the unused credit is compiled away

    def learned_credit(self, model_params, trajectory):
        return self.model_loss_and_credit(model_params, trajectory)[1]  # the unused loss is compiled away

    def learned_coefficients(self, model_params, mdp, policy_probs):
        observations = jnp.asarray(mdp.observations, jnp.float32)
        features, active = self.object_features(model_params, mdp)
        log_coefficients, _ = self.network(mdp.num_actions).log_coefficients(
            self.hindsight_params(model_params), observations[:, None, :], features[None],
            jnp.asarray(policy_probs, jnp.float32)[:, None, :])
        coefficients = jnp.swapaxes(jnp.exp(log_coefficients), -1, -2)  # (S, A, U)
        inactive = np.setdiff1d(np.arange(features.shape[0]), active)
        return coefficients.at[..., inactive].set(1.0)  # as in credit: inactive classes weigh nothing
