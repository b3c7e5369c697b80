"""HCA-state ("HCA+" in the COCOA paper): hindsight credit with the later state as the object.

Harutyunyan et al., "Hindsight Credit Assignment", NeurIPS 2019, arXiv 1912.02503 (state-conditioned
HCA); in the credit-matrix form of Meulemans et al., NeurIPS 2023, arXiv 2306.16803.
docs/estimators/hca_state.md. U_k takes as many values as there are states, so the learned model
runs on every pair k > t, O(B T^2); the -gt variant numbers the objects by tabular state index.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from cocoa.agents.credit import later_pair_indices
from cocoa.agents.hindsight_estimator import HindsightEstimator, hindsight_loss, pairwise_credit
from cocoa.agents.registry import register


@register
class HcaState(HindsightEstimator):
    """HCA-state ("HCA+"): hindsight object = the later state, seen through its observation."""

    name = "hca-state"

    def __init__(self, model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", *, mdp=None):
        super().__init__(model_hidden_sizes, dict(policy_features=policy_features, relu_difference=relu_difference,
                                                  model_init=model_init), mdp)

    def object_map(self, model_params, mdp):
        del model_params
        shape = (mdp.num_states, mdp.num_actions, mdp.num_reward_values)
        return jnp.broadcast_to(jnp.arange(mdp.num_states)[:, None, None], shape), mdp.num_states

    def exact_classes(self, trajectory):
        return trajectory.state_index

    def init_model(self, key, observation_shape, num_actions):
        return self.network(num_actions).init(key, observation_shape, observation_shape[-1])

    def pair_log_coefficients(self, model_params, trajectory):
        """log w and log p on the pairs (t, k > t) of ``later_pair_indices``, U_k the observation at k:
        (B, P, A) each. Only these pairs go through the network (the credit and the loss use no
        others): half the work of the whole T x T square."""
        return self.network(trajectory.num_actions).log_coefficients(
            model_params, trajectory.observations, trajectory.observations, trajectory.policy_probs,
            pairs=later_pair_indices(trajectory.observations.shape[1]))

    def model_loss(self, model_params, trajectory):
        _, log_probs = self.pair_log_coefficients(model_params, trajectory)
        earlier, later = later_pair_indices(trajectory.observations.shape[1])
        weights = trajectory.mask[:, earlier] * self.counted(trajectory)[:, later]
        # Each pair is its own class: (B, P, 1, A) against A_t of its earlier step.
        return hindsight_loss(log_probs[:, :, None], trajectory.actions[:, earlier], weights[:, :, None])

    def learned_credit(self, model_params, trajectory):
        log_coefficients, _ = self.pair_log_coefficients(model_params, trajectory)
        return pairwise_credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs,
                               jnp.exp(log_coefficients), trajectory.mask)

    def learned_coefficients(self, model_params, mdp, policy_probs):
        observations = jnp.asarray(mdp.observations, jnp.float32)
        log_coefficients, _ = self.network(mdp.num_actions).log_coefficients(
            model_params, observations[:, None, :], observations[None], jnp.asarray(policy_probs, jnp.float32)[:, None, :])
        return jnp.swapaxes(jnp.exp(log_coefficients), -1, -2)  # (S, A, S)
