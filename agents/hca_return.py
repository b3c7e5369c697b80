"""Return-conditioned hindsight credit assignment (HCA-return) in credit-matrix form.

Harutyunyan et al. 2019, "Hindsight Credit Assignment", Eq. 8 (return-conditional HCA);
docs/estimators/. A classifier h(a | s, G) predicts the action from the state and the return that
followed; in score form

    C_t(a) = 1{a = A_t} (1 - pi(A_t | S_t) / h(A_t | S_t, G_t)) G_t / pi(A_t | S_t).

With the exact h(a | s, g) = P(A_t = a | S_t = s, G_t = g),

    E[C_t(a) | S_t = s] = Q_t(s, a) - sum_{g : P(g | s, a) > 0} P(G_t = g | s) g,

which is Q_t(s, a) - V_t(s) (unbiased) only when every action's return law has the same support.
Where an action rules some returns out (e.g. key-to-door: picking an apple always adds its reward)
the subtracted term depends on the action and the estimator is biased even with the exact h;
``cocoa gradients`` measures that bias exactly. The classifier uses the hindsight network of ``agents.hindsight`` with the return
as its object: h = softmax(f(s, G) + log pi(. | s)), i.e. it learns the log-ratio h / pi.
Exact quantities need the law of the return (``oracle.return_distribution``), available when the
reward values lie on a lattice (every environment shipped here).
"""

from __future__ import annotations

from typing import Sequence

import chex
import jax.numpy as jnp

from cocoa import oracle
from cocoa.agents.estimator import Estimator, lookup
from cocoa.agents.hindsight import HindsightNetwork, check_network_options
from cocoa.agents.credit import score_credit, taken
from cocoa.agents.returns import reward_to_go
from cocoa.agents.registry import register


def credit(rewards, actions, policy_probs, log_ratio, mask):
    """C_t(a) = 1{a = A_t} (1 - pi(A_t | S_t) / h(A_t | S_t, G_t)) G_t / pi(A_t | S_t), (B, T, A).

    Args:
      rewards: (B, T) rewards.
      actions: int (B, T) actions.
      policy_probs: (B, T, A) behaviour policy.
      log_ratio: (B, T) log h(A_t | S_t, G_t) - log pi(A_t | S_t).
      mask: (B, T) 1 on real steps.
    """
    chex.assert_rank([rewards, actions, policy_probs, log_ratio, mask], [2, 2, 3, 2, 2])
    returns = reward_to_go(rewards, mask)
    return score_credit((1.0 - jnp.exp(-log_ratio)) * returns, actions, policy_probs, mask)


def expected_credit(return_laws, atoms, log_ratio):
    """E[C_t(a) | S_t = s] = sum_g P(G_t = g | s, a) (1 - pi(a | s) / h(a | s, g)) g, (H, S, A).

    Args:
      return_laws: (H, S, A, M) P(G_t = atom_m | S_t = s, A_t = a) (``oracle.return_distribution``).
      atoms: (M,) the return values.
      log_ratio: log h(a | s, g_m) - log pi(a | s), as (S, A, M) or per step (H, S, A, M).
    """
    return jnp.einsum("tsam,tsam,m->tsa", return_laws, 1.0 - jnp.exp(-log_ratio), atoms)


def exact_log_ratio(return_laws, policy_probs):
    """log of the exact h(a | s, g) / pi(a | s) = P(G_t = g | s, a) / P(G_t = g | s); 0 where undefined."""
    marginal = jnp.einsum("sa,tsam->tsm", policy_probs, return_laws)[:, :, None, :]
    defined = (marginal > 1e-12) & (return_laws > 1e-30)
    return jnp.where(defined, jnp.log(jnp.where(defined, return_laws, 1.0) / jnp.where(defined, marginal, 1.0)), 0.0)


@register
class HcaReturn(Estimator):
    """HCA conditioned on the return: a learned classifier h(a | s, G), or the exact one (-gt)."""

    name = "hca-return"
    has_exact_variant = True

    def __init__(self, model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", max_ratio: float = 100.0, *, mdp=None):
        super().__init__(mdp)
        if not isinstance(max_ratio, (int, float)) or not max_ratio > 1.0:
            raise ValueError(f"max_ratio must be a number > 1 (the cap on pi / h of the learned classifier); "
                             f"got {max_ratio!r}")
        # A learned h(A_t | S_t, G_t) -> 0 for a taken action sends pi / h, and the credit, to infinity
        # (training diverged at L = 83); the cap bounds it. The exact classifier is left as it is.
        self.max_ratio = float(max_ratio)
        self.network_options = dict(policy_features=policy_features, relu_difference=relu_difference,
                                    model_init=model_init)
        check_network_options(**self.network_options)
        self.model_hidden_sizes = tuple(model_hidden_sizes)
        if mdp is not None:
            self._atoms, self._spacing = oracle.return_lattice(mdp)

    def _network(self, num_actions):
        return HindsightNetwork(num_actions, self.model_hidden_sizes, **self.network_options)

    def init_model(self, key, observation_shape, num_actions):
        return self._network(num_actions).init(key, observation_shape, 1)

    def _capped(self, log_ratio):
        """log h / pi, floored at -log max_ratio (pi / h <= max_ratio)."""
        return jnp.maximum(log_ratio, -jnp.log(self.max_ratio))

    def _log_ratio_and_prob(self, model_params, trajectory):
        """log h / pi (capped) and log h of the taken action at every step, (B, T) each."""
        returns = reward_to_go(trajectory.rewards, trajectory.mask)
        log_w, log_h = self._network(trajectory.num_actions).log_coefficients(
            model_params, trajectory.observations, returns[..., None], trajectory.policy_probs)
        return self._capped(taken(log_w, trajectory.actions)), taken(log_h, trajectory.actions)

    def model_loss(self, model_params, trajectory):
        _, log_h = self._log_ratio_and_prob(model_params, trajectory)
        return -jnp.sum(log_h * trajectory.mask) / jnp.maximum(jnp.sum(trajectory.mask), 1.0)

    def exact_model(self, policy_table):
        laws, _ = oracle.return_distribution(self.mdp, policy_table)
        return {"log_ratio": exact_log_ratio(laws, jnp.asarray(policy_table, laws.dtype))}

    def credit(self, model_params, trajectory):
        if self.exact:
            returns = reward_to_go(trajectory.rewards, trajectory.mask)
            atom = jnp.round((returns - self._atoms[0]) / self._spacing).astype(jnp.int32)
            table = lookup(model_params["log_ratio"], trajectory.state_index)  # (B, T, A, M)
            per_action = jnp.take_along_axis(table, jnp.clip(atom, 0, table.shape[-1] - 1)[..., None, None], -1)[..., 0]
            log_ratio = taken(per_action, trajectory.actions).astype(returns.dtype)
        else:
            log_ratio, _ = self._log_ratio_and_prob(model_params, trajectory)
        return credit(trajectory.rewards, trajectory.actions, trajectory.policy_probs, log_ratio, trajectory.mask)

    def expected_credit(self, model_params, mdp, policy_probs):
        laws, atoms = oracle.return_distribution(mdp, policy_probs)
        if self.exact:
            log_ratio = model_params["log_ratio"]
        else:
            observations = jnp.asarray(mdp.observations, jnp.float32)
            log_w, _ = self._network(mdp.num_actions).log_coefficients(
                model_params, observations[:, None, :], jnp.asarray(atoms, jnp.float32)[None, :, None],
                jnp.asarray(policy_probs, jnp.float32)[:, None, :])  # (S, M, A)
            log_ratio = self._capped(jnp.swapaxes(log_w, 1, 2)[None])
        log_ratio = jnp.broadcast_to(jnp.asarray(log_ratio, laws.dtype), laws.shape)
        return expected_credit(laws, atoms, log_ratio)
