"""The hindsight family in credit-matrix form: COCOA's credit, its expected value, the hindsight loss,
and the estimator base that COCOA-reward, HCA-state and COCOA-feature share.

Meulemans et al. 2023, "Would I have gotten that reward? Long-term credit assignment by
counterfactual contribution analysis", Eq. 4-6 (COCOA estimator); Harutyunyan et al. 2019,
"Hindsight Credit Assignment" (state-conditioned HCA, "HCA+" in the COCOA paper). docs/estimators/:

    C_t(a) = 1{a = A_t} R_t / pi(A_t | S_t) + sum_{k>t} (w(S_t, a, U_k) - 1) R_k,
    w(s, a, u) = p^pi(A_t = a | S_t = s, U' = u) / pi(a | s).

Members differ only in the hindsight object U_k (``agents.hindsight``): the reward value
(COCOA-reward, ``cocoa-reward``, optionally refined into groups) or the later state (HCA-state,
``hca-state``). When U takes few values the sum over later steps regroups exactly by class:
sum_u (w(S_t, a, u) - 1) * sum_{k>t, U_k = u} R_k, so credit and loss cost O(B T U) instead of
O(B T^2). The "-1" is a baseline (sum_a grad pi(a | s) = 0): it changes variance, not the mean.

Expected credit on a TabularMDP (exact, from the current coefficients w):
    E_t(s, a) = r(s, a) + sum_u (w(s, a, u) - 1) * E^pi[sum_{k>t} R_k 1{U_k = u} | S_t = s].
With exact coefficients and objects that fully predict the reward (U = R or U = S), this is
Q_t(s, a) - V_t(s) + r^pi(s), so the estimator is unbiased.
"""

from __future__ import annotations

from typing import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cocoa import oracle
from cocoa.agents.credit import later_pairs, later_sums, score_credit
from cocoa.agents.estimator import Estimator, lookup
from cocoa.agents.hindsight import (DiscreteObjects, HindsightNetwork, HindsightObjects, StateIndexObjects,
                                    check_network_options)


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
    """COCOA credit with one coefficient per pair (t, k) (objects that take many values), (B, T, A).

    Args:
      pair_coefficients: (B, T, T, A) w(S_t, a, U_k) for every pair; only k > t is used.
    """
    chex.assert_rank([rewards, actions, policy_probs, pair_coefficients, mask], [2, 2, 3, 4, 2])
    immediate = score_credit(rewards, actions, policy_probs, mask)
    weights = later_pairs(mask) * (rewards * mask)[:, None, :]  # (B, t, k): R_k on valid pairs
    return immediate + jnp.einsum("btka,btk->bta", pair_coefficients - 1.0, weights)


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
      log_probs: (B, T, U, A) log p(a | S_t, u) for every class (or later step) u.
      actions: int (B, T) A_t.
      weights: (B, T, U) how many times each (t, u) pair counts (0 for no pair).
    """
    chex.assert_rank([log_probs, actions, weights], [4, 2, 3])
    taken = jnp.take_along_axis(log_probs, actions[:, :, None, None], axis=-1)[..., 0]
    return -jnp.sum(weights * taken) / jnp.maximum(jnp.sum(weights), 1.0)


class HindsightEstimator(Estimator):
    """Shared machinery: a hindsight network (learned) or exact coefficients (-gt) for some objects."""

    has_exact_variant = True
    objects: HindsightObjects

    def __init__(self, objects: HindsightObjects, model_hidden_sizes: Sequence[int], network_options: dict, mdp):
        super().__init__(mdp)
        check_network_options(**network_options)
        self.objects = objects
        self.model_hidden_sizes = tuple(model_hidden_sizes)
        self.network_options = dict(network_options)
        if mdp is not None:
            self._oracle_map, self._num_oracle_objects = objects.oracle_map(mdp)
            self._exact_objects = (objects if isinstance(objects, DiscreteObjects)
                                   else StateIndexObjects(mdp.num_states))

    # --- hooks for objects that depend on learned parameters (COCOA-feature) -------------------
    def _hindsight_params(self, model_params):
        return model_params

    def _classes(self, model_params, trajectory):
        return self.objects.classes(trajectory)

    def _object_map(self, model_params, mdp):
        return self.objects.oracle_map(mdp)

    # --- the learned model ------------------------------------------------------------------
    def _network(self, num_actions):
        return HindsightNetwork(num_actions, self.model_hidden_sizes, **self.network_options)

    def init_model(self, key, observation_shape, num_actions):
        object_size = (self.objects.features().shape[-1] if isinstance(self.objects, DiscreteObjects)
                       else observation_shape[-1])
        return self._network(num_actions).init(key, observation_shape, object_size)

    def _class_log_coefficients(self, model_params, trajectory, state_observations=None):
        """log w and log p for every active discrete class: (B, T, U', A) each (``active_classes``).

        With ``state_observations`` the network runs once per state, with the behaviour policy of
        each visited state (read from the trajectory), and is gathered at the steps' state indices.
        """
        network = self._network(trajectory.num_actions)
        features = self.objects.features()[self.objects.active_classes()]
        params = self._hindsight_params(model_params)
        if state_observations is None:
            return network.log_coefficients(params, trajectory.observations[:, :, None, :], features[None, None],
                                            trajectory.policy_probs[:, :, None, :])
        num_states = state_observations.shape[0]
        policy_table = jnp.ones((num_states, trajectory.num_actions), trajectory.policy_probs.dtype).at[
            trajectory.state_index].set(trajectory.policy_probs)  # rows of unvisited states are never read
        per_state = network.log_coefficients(params, state_observations[:, None, :], features[None],
                                             policy_table[:, None, :])
        return tuple(table[trajectory.state_index] for table in per_state)

    def _pair_log_coefficients(self, model_params, trajectory):
        """log w and log p for every pair (t, k) with U_k = the observation at k: (B, T, T, A) each."""
        network = self._network(trajectory.num_actions)
        return network.log_coefficients(model_params, trajectory.observations[:, :, None, :],
                                        trajectory.observations[:, None, :, :],
                                        trajectory.policy_probs[:, :, None, :])

    def model_loss_and_credit(self, model_params, trajectory, state_observations=None):
        if not isinstance(self.objects, DiscreteObjects):
            return super().model_loss_and_credit(model_params, trajectory)
        # One network pass serves both: log p for the loss, w = exp(log w) for the credit. Only the
        # classes that can carry a reward are evaluated: the others weigh no later reward and no pair.
        log_coefficients, log_probs = self._class_log_coefficients(model_params, trajectory, state_observations)
        classes = self._classes(model_params, trajectory)
        active = self.objects.active_classes()
        weights = later_sums(jnp.ones_like(trajectory.rewards), classes, self.objects.num_objects,
                             self._counted(trajectory))[..., active]
        loss = hindsight_loss(log_probs, trajectory.actions, weights)
        later_rewards = later_sums(trajectory.rewards, classes, self.objects.num_objects, trajectory.mask)[..., active]
        coefficients = jnp.swapaxes(jnp.exp(jax.lax.stop_gradient(log_coefficients)), -1, -2)
        return loss, credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs, coefficients,
                            later_rewards, trajectory.mask)

    def model_loss(self, model_params, trajectory):
        if isinstance(self.objects, DiscreteObjects):
            return self.model_loss_and_credit(model_params, trajectory)[0]  # the unused credit is compiled away
        _, log_probs = self._pair_log_coefficients(model_params, trajectory)
        weights = later_pairs(trajectory.mask) * self._counted(trajectory)[:, None, :]
        return hindsight_loss(log_probs, trajectory.actions, weights)

    def _counted(self, trajectory):
        """(B, T) later steps that count as training pairs."""
        nonzero = (trajectory.rewards != 0) if self.objects.only_rewarding else 1.0
        return trajectory.mask * nonzero

    # --- ground truth ----------------------------------------------------------------------
    def exact_model(self, policy_table):
        return {"coefficients": oracle.contribution_coefficients(
            self.mdp, policy_table, self._oracle_map, self._num_oracle_objects)}

    # --- credit ----------------------------------------------------------------------------
    def credit(self, model_params, trajectory):
        rewards, actions, probs, mask = (trajectory.rewards, trajectory.actions, trajectory.policy_probs,
                                         trajectory.mask)
        if self.exact:
            coefficients = lookup(model_params["coefficients"], trajectory.state_index).astype(rewards.dtype)
            classes, num_objects = self._exact_objects.classes(trajectory), self._exact_objects.num_objects
        elif isinstance(self.objects, DiscreteObjects):
            return self.model_loss_and_credit(model_params, trajectory)[1]  # the unused loss is compiled away
        else:
            log_coefficients, _ = self._pair_log_coefficients(model_params, trajectory)
            return pairwise_credit(rewards, actions, probs, jnp.exp(log_coefficients), mask)
        later_rewards = later_sums(rewards, classes, num_objects, mask)
        return credit(rewards, actions, probs, coefficients, later_rewards, mask)

    def expected_credit(self, model_params, mdp, policy_probs):
        hindsight_map, num_objects = self._object_map(model_params, mdp)
        if self.exact:
            coefficients = model_params["coefficients"]
        else:
            network = self._network(mdp.num_actions)
            observations = jnp.asarray(mdp.observations, jnp.float32)
            probs = jnp.asarray(policy_probs, jnp.float32)[:, None, :]
            objects = (self.objects.features() if isinstance(self.objects, DiscreteObjects) else observations)
            log_coefficients, _ = network.log_coefficients(self._hindsight_params(model_params),
                                                           observations[:, None, :], objects[None], probs)
            coefficients = jnp.swapaxes(jnp.exp(log_coefficients), -1, -2)  # (S, A, U)
            if isinstance(self.objects, DiscreteObjects):  # as in credit: inactive classes weigh nothing
                inactive = np.setdiff1d(np.arange(self.objects.num_objects), self.objects.active_classes())
                coefficients = coefficients.at[..., inactive].set(1.0)
        return expected_credit(mdp, policy_probs, coefficients, hindsight_map, num_objects)
