"""Pytrees shared by every part of cocoa: the tabular MDP and the trajectory batch.

Semantics of a :class:`TabularMDP` (the oracle, the environments and the tests all rely on them):

* An episode starts in ``S_0 ~ initial`` and lasts at most ``horizon`` steps ``t = 0 .. H-1``.
* At step ``t`` the agent in state ``S_t`` takes ``A_t ~ pi(.|S_t)``, receives a reward
  ``R_t = reward_values[k]`` with ``k ~ reward_probs[S_t, A_t]``, and moves to
  ``S_{t+1} = successors[S_t, A_t, n]`` with ``n ~ successor_probs[S_t, A_t]`` (reward and successor
  are drawn independently given ``(S_t, A_t)``).
* The return is ``J = E[sum_{t<H} R_t]`` (undiscounted).
* States with ``terminal[s]`` are absorbing and pay nothing: every successor is ``s`` itself and
  every reward is 0. An environment's episode is *done* when it enters a terminal state.

Transitions are stored as successor lists ``(S, A, N)`` so that large sparse MDPs stay cheap;
``dense_transitions()`` gives the ``(S, A, S)`` array for small ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_PROBABILITY_TOLERANCE = 1e-5


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, jax.core.Tracer)


@dataclasses.dataclass(frozen=True)
class TabularMDP:
    """A finite-horizon MDP with finite states, actions and reward support.

    Attributes:
      successors: int (S, A, N) successor state indices.
      successor_probs: float (S, A, N) probabilities of each successor; sum to one over N.
      reward_values: float (K,) the finite reward support.
      reward_probs: float (S, A, K) distribution of the reward for each state-action.
      initial: float (S,) initial state distribution.
      observations: float (S, obs_dim) what the agent observes in each state.
      terminal: bool (S,) absorbing terminal states.
      horizon: int, the maximum number of steps H (static: not a pytree leaf).
    """

    successors: Any
    successor_probs: Any
    reward_values: Any
    reward_probs: Any
    initial: Any
    observations: Any
    terminal: Any
    horizon: int = dataclasses.field(metadata=dict(static=True))

    def __post_init__(self):
        leaves = [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "horizon"]
        if all(_is_concrete(leaf) and leaf is not None for leaf in leaves):
            self._validate()

    @property
    def num_states(self) -> int:
        return self.successors.shape[0]

    @property
    def num_actions(self) -> int:
        return self.successors.shape[1]

    @property
    def num_successors(self) -> int:
        return self.successors.shape[2]

    @property
    def num_reward_values(self) -> int:
        return self.reward_values.shape[0]

    def expected_rewards(self):
        """(S, A) expected immediate reward r(s, a)."""
        return self.reward_probs @ self.reward_values

    def dense_transitions(self) -> np.ndarray:
        """(S, A, S) transition probabilities P[s, a, s'] (numpy; for small MDPs)."""
        num_states, num_actions = self.num_states, self.num_actions
        successors = np.asarray(self.successors)
        dense = np.zeros((num_states, num_actions, num_states))
        rows = np.arange(num_states)[:, None, None]
        cols = np.arange(num_actions)[None, :, None]
        np.add.at(dense, (rows, cols, successors), np.asarray(self.successor_probs, dtype=float))
        return dense

    def _validate(self):
        successors = np.asarray(self.successors)
        successor_probs = np.asarray(self.successor_probs, dtype=float)
        reward_values = np.asarray(self.reward_values, dtype=float)
        reward_probs = np.asarray(self.reward_probs, dtype=float)
        initial = np.asarray(self.initial, dtype=float)
        observations = np.asarray(self.observations)
        terminal = np.asarray(self.terminal)

        if successors.ndim != 3:
            raise ValueError(f"TabularMDP.successors must have shape (S, A, N); got {successors.shape}")
        if not np.issubdtype(successors.dtype, np.integer):
            raise ValueError(f"TabularMDP.successors must be integers; got dtype {successors.dtype}")
        num_states, num_actions, _ = successors.shape
        if num_states < 1 or num_actions < 1:
            raise ValueError(f"TabularMDP needs at least one state and action; got successors {successors.shape}")
        _expect_shape("successor_probs", successor_probs, successors.shape)
        if reward_values.ndim != 1 or reward_values.shape[0] < 1:
            raise ValueError(f"TabularMDP.reward_values must have shape (K,) with K >= 1; got {reward_values.shape}")
        _expect_shape("reward_probs", reward_probs, (num_states, num_actions, reward_values.shape[0]))
        _expect_shape("initial", initial, (num_states,))
        if observations.ndim < 2 or observations.shape[0] != num_states:
            raise ValueError(
                f"TabularMDP.observations must have shape (S={num_states}, ...); got {observations.shape}")
        _expect_shape("terminal", terminal, (num_states,))
        if not isinstance(self.horizon, (int, np.integer)) or self.horizon < 1:
            raise ValueError(f"TabularMDP.horizon must be an integer >= 1; got {self.horizon!r}")
        if successors.min() < 0 or successors.max() >= num_states:
            raise ValueError(
                f"TabularMDP.successors must lie in [0, {num_states}); got values in "
                f"[{successors.min()}, {successors.max()}]")
        for name, probs in (("successor_probs", successor_probs), ("reward_probs", reward_probs),
                            ("initial", initial)):
            _expect_distribution(name, probs)
        for name, values in (("reward_values", reward_values), ("observations", observations)):
            if not np.all(np.isfinite(values)):
                raise ValueError(f"TabularMDP.{name} must be finite")
        terminal = terminal.astype(bool)
        if terminal.any():
            mass_elsewhere = np.where(successors[terminal] != np.flatnonzero(terminal)[:, None, None],
                                      successor_probs[terminal], 0.0)
            if mass_elsewhere.max() > _PROBABILITY_TOLERANCE:
                raise ValueError("TabularMDP.terminal states must be absorbing (every successor the state itself)")
            paid = np.abs(reward_probs[terminal] @ reward_values).max()
            if paid > _PROBABILITY_TOLERANCE:
                raise ValueError(f"TabularMDP.terminal states must pay no reward; expected reward {paid:g} found")


def _expect_shape(name: str, value: np.ndarray, shape: tuple):
    if value.shape != tuple(shape):
        raise ValueError(f"TabularMDP.{name} must have shape {tuple(shape)}; got {value.shape}")


def _expect_distribution(name: str, probs: np.ndarray):
    if not np.all(np.isfinite(probs)) or probs.min() < -_PROBABILITY_TOLERANCE:
        raise ValueError(f"TabularMDP.{name} must be finite and non-negative; min {np.nanmin(probs):g}")
    sums = probs.sum(axis=-1)
    worst = np.abs(sums - 1.0).max()
    if worst > _PROBABILITY_TOLERANCE:
        index = np.unravel_index(np.abs(sums - 1.0).argmax(), sums.shape)
        raise ValueError(
            f"TabularMDP.{name} must sum to one over its last axis; at index {tuple(int(i) for i in index)} "
            f"it sums to {sums[index]:.6g}")


jax.tree_util.register_dataclass(
    TabularMDP,
    data_fields=["successors", "successor_probs", "reward_values", "reward_probs", "initial",
                 "observations", "terminal"],
    meta_fields=["horizon"],
)


@dataclasses.dataclass(frozen=True, eq=False)
class StateTable:
    """The observation of every tabular state, (S, ...) float32: a constant the networks can run on
    once per state. Compared and hashed by identity, so that it rides along a ``Trajectory`` as
    static data."""

    observations: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.observations.shape[0])


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """A batch of episodes, batch-first: every field has leading axes (B, T).

    Steps after an episode ended are padding: ``mask`` is 0 there and rewards are 0.

    Attributes:
      observations: (B, T, *obs_shape) observation before each action.
      actions: int (B, T) actions taken.
      rewards: (B, T) reward received for (S_t, A_t).
      dones: bool (B, T) whether the episode ended with this step.
      mask: float (B, T) 1 for real steps, 0 for padding after the episode ended.
      policy_probs: (B, T, A) the behaviour policy's action probabilities at each step.
      state_index: int (B, T) the tabular state index of S_t (-1 for non-tabular envs).
      info: dict of (B, T) per-step environment diagnostics.
      states: static; the observation of every tabular state (``StateTable``) when networks should
        run once per state and be read at ``state_index`` (set by ``rollout``: exact, and cheaper
        when a batch has more steps than the environment has states), else None (once per step).
    """

    observations: Any
    actions: Any
    rewards: Any
    dones: Any
    mask: Any
    policy_probs: Any
    state_index: Any
    info: Any
    states: StateTable | None = None

    @property
    def num_states(self) -> int:
        """S when the networks run once per state (``states``), else 0."""
        return 0 if self.states is None else self.states.num_states

    def state_observations(self):
        """(S, ...) the observation of every tabular state, a constant (needs ``states``)."""
        if self.states is None:
            raise ValueError("this trajectory carries no state table: roll out a tabular environment "
                             "with rollout(..., per_state=True or None)")
        return jnp.asarray(self.states.observations)

    def per_state(self, values, fill: float = 0.0):
        """(S, ...) table of per-step ``values`` (B, T, ...) by state index; ``fill`` where unvisited.

        Steps in the same state carry the same policy (and observation), so the table holds it once.
        """
        if self.states is None:
            raise ValueError("this trajectory carries no state table: roll out a tabular environment "
                             "with rollout(..., per_state=True or None)")
        table = jnp.full((self.num_states, *values.shape[2:]), fill, values.dtype)
        return table.at[self.state_index].set(values)

    @property
    def batch_size(self) -> int:
        return self.actions.shape[0]

    @property
    def length(self) -> int:
        return self.actions.shape[1]

    @property
    def num_actions(self) -> int:
        return self.policy_probs.shape[-1]


jax.tree_util.register_dataclass(
    Trajectory,
    data_fields=["observations", "actions", "rewards", "dones", "mask", "policy_probs", "state_index",
                 "info"],
    meta_fields=["states"],
)
