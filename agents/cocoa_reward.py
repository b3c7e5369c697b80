"""COCOA-reward: COCOA with the later reward value as the hindsight object.

Meulemans et al., "Would I have gotten that reward? Long-term credit assignment by counterfactual
contribution analysis", NeurIPS 2023, arXiv 2306.16803 (Eq. 4-6); docs/estimators/cocoa_reward.md.
With ``groups`` > 1 the reward value is refined by a hash of the state-action pair (the paper's
tree experiment).
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from cocoa.agents.hindsight_estimator import ClassHindsightEstimator
from cocoa.agents.registry import register


# How far a reward may lie from its declared value (float32 rounding of the environment's values).
_SUPPORT_TOLERANCE = 1e-5


@register
class CocoaReward(ClassHindsightEstimator):
    """COCOA-reward: U_k = the reward value R_k, optionally refined by a hash of (S_k, A_k) into ``groups``.

    groups = 1 is COCOA-reward; more groups approach state-action objects. Groups need a tabular
    environment (the hash reads the state index).
    """

    name = "cocoa-reward"
    only_rewarding = True

    def __init__(self, reward_values: Sequence[float] | None = None, groups: int = 1,
                 model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", *, mdp=None):
        if reward_values is None:
            if mdp is None:
                raise ValueError("cocoa-reward needs reward_values=(...), the environment's finite reward "
                                 "support (agents.make_for_env fills it in for tabular environments)")
            reward_values = tuple(float(v) for v in mdp.reward_values)
        reward_values = np.asarray(reward_values, dtype=float)
        if reward_values.ndim != 1 or reward_values.size < 1:
            raise ValueError(f"reward_values must be a non-empty list of the reward support; got {reward_values!r}")
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"groups must be a positive integer; got {groups!r}")
        self.reward_values = reward_values
        self.groups = int(groups)
        self.num_objects = reward_values.size * self.groups
        if mdp is not None:
            self._support_slots(mdp)
        super().__init__(model_hidden_sizes, dict(policy_features=policy_features, relu_difference=relu_difference,
                                                  model_init=model_init), mdp)

    def _support_slots(self, mdp) -> np.ndarray:
        """The index in ``reward_values`` of each of the MDP's reward values (each must be declared)."""
        support = np.asarray(mdp.reward_values, dtype=float)
        distance = np.abs(support[:, None] - self.reward_values[None])
        missing = support[distance.min(axis=1) > _SUPPORT_TOLERANCE]
        if missing.size:
            raise ValueError(f"the estimator's reward_values {self.reward_values.tolist()} do not hold the MDP's "
                             f"reward value(s) {missing.tolist()} (its support: {support.tolist()})")
        return distance.argmin(axis=1)

    def check_rewards(self, rewards):
        """A reward outside ``reward_values`` would be credited as its nearest value: an error naming it."""
        rewards = np.asarray(rewards, dtype=float).reshape(-1)
        if rewards.size:
            distance = np.abs(rewards[:, None] - self.reward_values[None]).min(axis=1)
            worst = int(distance.argmax())
            if distance[worst] > _SUPPORT_TOLERANCE:
                raise ValueError(f"cocoa-reward got reward {rewards[worst]:g}, which is not in its declared "
                                 f"reward_values {self.reward_values.tolist()}; declare the environment's whole "
                                 "reward support (--agent-option reward_values=v1,v2,...)")

    def _group(self, state_index, action, num_actions):
        if self.groups == 1:
            return jnp.zeros_like(state_index)
        # Knuth's multiplicative hash of the state-action pair: a fixed pseudo-random grouping.
        pair = (state_index.astype(jnp.uint32) * jnp.uint32(num_actions) + action.astype(jnp.uint32))
        return ((pair * jnp.uint32(2654435761)) % jnp.uint32(self.groups)).astype(jnp.int32)

    def active_classes(self):
        nonzero = np.flatnonzero(self.reward_values != 0)
        return (nonzero[:, None] * self.groups + np.arange(self.groups)[None]).reshape(-1)

    def reward_class(self, rewards):
        """int index of each reward in ``reward_values`` (the nearest value)."""
        values = jnp.asarray(self.reward_values, rewards.dtype)
        return jnp.argmin(jnp.abs(rewards[..., None] - values), axis=-1).astype(jnp.int32)

    def classes(self, model_params, trajectory):
        del model_params
        group = self._group(trajectory.state_index, trajectory.actions, trajectory.num_actions)
        return self.reward_class(trajectory.rewards) * self.groups + group

    def object_map(self, model_params, mdp):
        del model_params
        slots = jnp.asarray(self._support_slots(mdp))
        shape = (mdp.num_states, mdp.num_actions, 1)
        group = self._group(jnp.broadcast_to(jnp.arange(mdp.num_states)[:, None, None], shape),
                            jnp.broadcast_to(jnp.arange(mdp.num_actions)[None, :, None], shape), mdp.num_actions)
        return slots[None, None, :] * self.groups + group, self.num_objects
