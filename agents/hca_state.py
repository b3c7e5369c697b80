"""HCA-state ("HCA+" in the COCOA paper): hindsight credit with the later state as the object.

Harutyunyan et al., "Hindsight Credit Assignment", NeurIPS 2019, arXiv 1912.02503 (state-conditioned
HCA); in the credit-matrix form of Meulemans et al., NeurIPS 2023, arXiv 2306.16803.
docs/estimators/hca_state.md.
"""

from __future__ import annotations

from typing import Sequence

from cocoa.agents.hindsight import StateObjects
from cocoa.agents.hindsight_estimator import HindsightEstimator


class HcaState(HindsightEstimator):
    """HCA-state ("HCA+"): hindsight object = the later state, seen through its observation."""

    name = "hca-state"

    def __init__(self, model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", *, mdp=None):
        super().__init__(StateObjects(), model_hidden_sizes,
                         dict(policy_features=policy_features, relu_difference=relu_difference,
                              model_init=model_init), mdp)
