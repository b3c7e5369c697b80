"""The credit-matrix interface every policy-gradient estimator implements (docs/index.md).

An estimator returns a credit matrix C (B, T, A) for a batch of trajectories; the gradient
estimate is g_hat = sum_t sum_a grad pi(a | S_t) C_t(a), obtained by differentiating the
surrogate ``sum_t sum_a pi_theta(a | S_t) stop_gradient(C_t(a))`` (see ``policy_surrogate``).
Its ``expected_credit`` E_t(s, a) = E[C_t(a) | S_t = s] on a TabularMDP makes the estimator's
expected gradient, hence its bias, exact: ``cocoa.oracle.estimator_gradient``.
"""

from __future__ import annotations

import abc
from typing import Any

import chex
import jax
import jax.numpy as jnp

from cocoa.types import TabularMDP, Trajectory


class Estimator(abc.ABC):
    """A credit estimator plus the learned model(s) it relies on (none by default).

    Exact variants: an estimator built with ``mdp=`` (registered as ``<name>-gt``) takes its
    model quantities (V^pi, Q^pi, contribution coefficients ...) from the oracle instead of learning
    them. Its "model parameters" are then oracle tables, recomputed from the current policy at every
    update by ``exact_model``; ``model_loss`` is unused.
    """

    name: str = ""
    has_exact_variant: bool = False
    prepare_episodes: int = 0  # episodes of the initial policy that ``prepare`` fits on (0: no such stage)
    frozen_params: tuple[str, ...] = ()  # top-level model parameters the model optimiser leaves as they are

    def __init__(self, mdp: TabularMDP | None = None):
        if mdp is not None and not self.has_exact_variant:
            raise ValueError(f"estimator {self.name!r} has no exact variant (it learns no model)")
        if mdp is not None and not isinstance(mdp, TabularMDP):
            raise TypeError(f"mdp must be a cocoa.types.TabularMDP; got {type(mdp).__name__}")
        self.mdp = mdp

    @property
    def exact(self) -> bool:
        """Whether model quantities come from the oracle (the ``-gt`` variant)."""
        return self.mdp is not None

    @property
    def unbiased(self) -> bool:
        """Whether the estimator claims E[g_hat] = the true policy gradient for any model it holds
        (for ``-gt`` variants: with the oracle's models). The conformance tests check every claim."""
        return False

    def exact_model(self, policy_table) -> Any:
        """Oracle tables for the exact variant, from the policy (S, A) on every state of ``mdp``."""
        raise TypeError(f"estimator {self.name!r} has no exact variant")

    def check_rewards(self, rewards) -> None:
        """Host-side check of rewards (numpy) from an environment with no table to vouch for them,
        run before they reach the compiled update; estimators that need a known reward support override it."""
        del rewards

    def init_model(self, key, observation_shape, num_actions) -> Any:
        """Parameters of the estimator's learned model(s); an empty dict if it has none."""
        del key, observation_shape, num_actions
        return {}

    def prepare(self, model_params, trajectory: Trajectory, key) -> Any:
        """The model parameters after a one-off fit, before the first update, on ``trajectory``: at least
        ``prepare_episodes`` episodes of the initial policy (COCOA-feature fits its reward features here)."""
        del trajectory, key
        return model_params

    def model_loss(self, model_params, trajectory: Trajectory) -> jax.Array:
        """The loss the model is trained on, from one batch of trajectories (0 without a model)."""
        del model_params, trajectory
        return jnp.zeros(())

    def model_loss_and_credit(self, model_params, trajectory: Trajectory) -> tuple[jax.Array, jax.Array]:
        """(model loss, credit) at the same parameters; estimators override it to share one model pass."""
        return self.model_loss(model_params, trajectory), self.credit(model_params, trajectory)

    def along(self, model_params, trajectory: Trajectory, exact_table: str, learned) -> jax.Array:
        """The model at every step (B, T, ...): the oracle's ``model_params[exact_table]`` read at
        (t, S_t) for the exact variant, else ``learned(model_params, observations)``."""
        if self.exact:
            return lookup(model_params[exact_table], trajectory.state_index).astype(trajectory.rewards.dtype)
        return learned(model_params, trajectory.observations)

    def after_update(self, model_params) -> Any:
        """Called with the model parameters after each optimiser step (e.g. to count updates)."""
        return model_params

    @abc.abstractmethod
    def credit(self, model_params, trajectory: Trajectory) -> jax.Array:
        """(B, T, A) credit matrix of each trajectory; 0 on padding steps."""

    @abc.abstractmethod
    def expected_credit(self, model_params, mdp: TabularMDP, policy_probs) -> jax.Array:
        """(H, S, A) exact E[C_t(a) | S_t = s] under ``policy_probs`` (S, A) and the current model."""

    def __repr__(self):
        return f"{type(self).__name__}()"


def lookup(table, state_index):
    """Per-step table (H, S, ...) read at (t, S_t) for a batch: (B, T, ...).

    Steps beyond the table's horizon read its last step; padding steps (state index -1 or any
    index) read some entry and must be masked by the caller.
    """
    horizon, num_states = table.shape[:2]
    steps = jnp.minimum(jnp.arange(state_index.shape[-1]), horizon - 1)
    return table[steps[None, :], jnp.clip(state_index, 0, num_states - 1)]


def policy_surrogate(probs, credit, mask):
    """sum_t sum_a pi(a | S_t) C_t(a), averaged over the batch; its gradient is the mean g_hat.

    ``credit`` must already be a constant (``stop_gradient``) with respect to the policy.
    """
    chex.assert_rank([probs, credit, mask], [3, 3, 2])
    chex.assert_equal_shape([probs, credit])
    return jnp.mean(jnp.sum(jnp.sum(probs * credit, axis=-1) * mask, axis=-1))
