"""Deliberately wrong estimators: the controls that show a statistical test can fail."""

from cocoa.agents import Reinforce
from cocoa.agents.credit import taken


class Unscaled(Reinforce):
    """A deliberately biased REINFORCE: G_t on the taken action without the 1 / pi(A_t | S_t) factor.

    Its expected credit is pi(a | s) Q_t(s, a), not Q_t(s, a).
    """

    name = "unscaled"

    def credit(self, model_params, trajectory):
        credit = super().credit(model_params, trajectory)
        return credit * taken(trajectory.policy_probs, trajectory.actions)[..., None]
