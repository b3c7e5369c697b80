"""COCOA-reward: COCOA with the later reward value as the hindsight object.

Meulemans et al., "Would I have gotten that reward? Long-term credit assignment by counterfactual
contribution analysis", NeurIPS 2023, arXiv 2306.16803 (Eq. 4-6); docs/estimators/cocoa_reward.md.
With ``groups`` > 1 the reward value is refined by a hash of the state-action pair (the paper's
tree experiment).
"""

from __future__ import annotations

from typing import Sequence

from cocoa.agents.hindsight import RewardObjects
from cocoa.agents.hindsight_estimator import HindsightEstimator


class CocoaReward(HindsightEstimator):
    """COCOA-reward: hindsight object = the later reward value (optionally refined into ``groups``)."""

    name = "cocoa-reward"

    def __init__(self, reward_values: Sequence[float] | None = None, groups: int = 1,
                 model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", *, mdp=None):
        if reward_values is None:
            if mdp is None:
                raise ValueError("cocoa-reward needs reward_values=(...), the environment's finite reward "
                                 "support (agents.make_for_env fills it in for tabular environments)")
            reward_values = tuple(float(v) for v in mdp.reward_values)
        super().__init__(RewardObjects(reward_values, groups), model_hidden_sizes,
                         dict(policy_features=policy_features, relu_difference=relu_difference,
                              model_init=model_init), mdp)
