"""Exact enumeration of every trajectory of a small TabularMDP under a fixed policy.

Where the trajectory space is small (key-to-door with a short corridor, the tree), the expectation
of any per-trajectory quantity is an exact finite sum Σ_i P(τ_i) f(τ_i): the gradient-quality
metrics (docs/gradients.md, ``cocoa.metrics``) then carry no sampling error.

A trajectory branches at every step on the action a, the successor n and the reward value k, with
probability π(a|s) · successor_probs[s, a, n] · reward_probs[s, a, k] (``cocoa.types``); branches of
probability zero are pruned. Once a terminal state is entered the remaining steps are padding, as
in ``cocoa.rollout.rollout``: mask 0, reward 0, action 0, state_index the terminal state. At the
last step only whether the episode ends matters, so successors are grouped into "ends" / "goes on".

The expansion loops over the H steps in numpy (never over trajectories): each step gathers every
prefix's branches from a per-state branch table.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from cocoa.types import TabularMDP, Trajectory

_SUM_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class _BranchTable:
    """The positive-probability branches of every state, grouped by state (CSR layout).

    Branches of state s are rows ``start[s]:start[s] + count[s]``; a terminal state has one branch
    (stay, action 0, reward 0, probability 1).
    """

    start: np.ndarray  # (S,)
    count: np.ndarray  # (S,)
    probability: np.ndarray  # (M,)
    action: np.ndarray  # (M,)
    reward: np.ndarray  # (M,) reward value
    next_state: np.ndarray  # (M,) successor state index
    done: np.ndarray  # (M,) whether the successor is terminal


def _branch_table(mdp: TabularMDP, policy, outcome_probs, outcome_states, outcome_done) -> _BranchTable:
    """Branches (a, n, k) of every state with probability pi(a|s) outcome_probs[s,a,n] R[s,a,k] > 0."""
    terminal = np.asarray(mdp.terminal, bool)
    reward_probs = np.asarray(mdp.reward_probs, np.float64)
    probs = policy[:, :, None, None] * outcome_probs[..., None] * reward_probs[:, :, None, :]
    probs[terminal] = 0.0
    state, action, outcome, slot = np.nonzero(probs > 0)
    stay = np.flatnonzero(terminal)  # one pseudo-branch per terminal state
    no_stay = np.zeros(len(stay))
    owner = np.concatenate([state, stay])
    order = np.argsort(owner, kind="stable")
    count = np.bincount(owner, minlength=mdp.num_states)
    reward_values = np.asarray(mdp.reward_values, np.float64)
    return _BranchTable(
        start=np.cumsum(count) - count,
        count=count,
        probability=np.concatenate([probs[state, action, outcome, slot], no_stay + 1.0])[order],
        action=np.concatenate([action, no_stay.astype(int)])[order],
        reward=np.concatenate([reward_values[slot], no_stay])[order],
        next_state=np.concatenate([outcome_states[state, action, outcome], stay])[order],
        done=np.concatenate([outcome_done[state, action, outcome], no_stay.astype(bool)])[order],
    )


def _step_tables(mdp: TabularMDP, policy) -> tuple[_BranchTable, _BranchTable]:
    """Branch tables for steps 0..H-2 (every successor) and for the last step (ends or goes on)."""
    successors = np.asarray(mdp.successors)
    successor_probs = np.asarray(mdp.successor_probs, np.float64)
    terminal = np.asarray(mdp.terminal, bool)
    enters_terminal = terminal[successors]
    inner = _branch_table(mdp, policy, successor_probs, successors, enters_terminal)
    # Last step: group successors into "goes on" (0) and "ends" (1); the successor itself is unused.
    ends = np.sum(successor_probs * enters_terminal, axis=-1)
    grouped = np.stack([1.0 - ends, ends], axis=-1)
    grouped_states = np.broadcast_to(successors[..., :1], grouped.shape)
    grouped_done = np.broadcast_to(np.array([False, True]), grouped.shape)
    last = _branch_table(mdp, policy, grouped, grouped_states, grouped_done)
    return inner, last


def count_trajectories(mdp: TabularMDP, policy_probs) -> float:
    """The number of positive-probability trajectories under ``policy_probs`` (a float: it can be huge).

    Counted by a backward recursion over the branch tables, without enumerating anything.
    """
    policy = _checked_policy(mdp, policy_probs)
    inner, last = _step_tables(mdp, policy)
    return _count(mdp, inner, last)


def _count(mdp: TabularMDP, inner: _BranchTable, last: _BranchTable) -> float:
    continuations = last.count.astype(np.float64)  # N_{H-1}(s)
    owner = np.repeat(np.arange(mdp.num_states), inner.count)
    for _ in range(mdp.horizon - 1):
        continuations = np.bincount(owner, weights=continuations[inner.next_state], minlength=mdp.num_states)
    initial = np.asarray(mdp.initial, np.float64)
    return float(np.sum(continuations[initial > 0]))


def _checked_policy(mdp: TabularMDP, policy_probs) -> np.ndarray:
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"expected a cocoa.types.TabularMDP; got {type(mdp).__name__}")
    policy = np.asarray(policy_probs, np.float64)
    expected = (mdp.num_states, mdp.num_actions)
    if policy.shape != expected:
        raise ValueError(f"policy_probs must have shape (S, A) = {expected}; got {policy.shape}")
    worst = float(np.max(np.abs(policy.sum(axis=-1) - 1.0)))
    if not np.all(np.isfinite(policy)) or policy.min() < 0 or worst > _SUM_TOLERANCE:
        raise ValueError(f"policy_probs must be non-negative and sum to one per state; worst row sum is off "
                         f"by {worst:.3g}")
    return policy


def enumerate_trajectories(mdp: TabularMDP, policy_probs, max_trajectories: int = 100_000
                           ) -> tuple[Trajectory, np.ndarray]:
    """Every positive-probability trajectory of ``mdp`` under ``policy_probs``, with its probability.

    Args:
      mdp: a TabularMDP whose trajectory space is small.
      policy_probs: (S, A) action probabilities in every state.
      max_trajectories: refuse (``ValueError``) when there are more trajectories than this.

    Returns:
      ``(trajectory, probabilities)``: a :class:`~cocoa.types.Trajectory` with leading axes (N, H)
      and the same fields as ``cocoa.rollout.rollout`` (observations = ``mdp.observations[S_t]``,
      policy_probs = ``policy_probs[S_t]``, state_index = S_t, ``info = {}``), and the float64
      numpy probabilities (N,) of the trajectories, summing to one.
    """
    policy = _checked_policy(mdp, policy_probs)
    if not isinstance(max_trajectories, (int, np.integer)) or max_trajectories < 1:
        raise ValueError(f"max_trajectories must be a positive integer; got {max_trajectories!r}")
    inner, last = _step_tables(mdp, policy)
    total = _count(mdp, inner, last)
    if total > max_trajectories:
        raise ValueError(f"the MDP has {total:,.0f} trajectories of positive probability under this policy, more "
                         f"than max_trajectories={max_trajectories:,}; sample trajectories instead "
                         "(cocoa.rollout.rollout) or raise the limit")

    initial = np.asarray(mdp.initial, np.float64)
    states = np.flatnonzero(initial > 0)
    probabilities = initial[states]
    steps = []  # per step: (state, action, reward, done, parent) of every prefix
    for t in range(mdp.horizon):
        table = last if t == mdp.horizon - 1 else inner
        counts = table.count[states]
        parent = np.repeat(np.arange(len(states)), counts)
        offset = np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)
        branch = table.start[states][parent] + offset
        steps.append((states[parent], table.action[branch], table.reward[branch], table.done[branch], parent))
        probabilities = probabilities[parent] * table.probability[branch]
        states = table.next_state[branch]

    # Walk the parent pointers back from the final prefixes to build full (N, H) histories.
    columns = []
    index = np.arange(len(probabilities))
    for state, action, reward, done, parent in reversed(steps):
        columns.append((state[index], action[index], reward[index], done[index]))
        index = parent[index]
    state, action, reward, done = (np.stack(column[::-1], axis=1) for column in zip(*columns))
    mask = ~np.asarray(mdp.terminal, bool)[state]
    trajectory = Trajectory(
        observations=jnp.asarray(np.asarray(mdp.observations)[state]),
        actions=jnp.asarray(action, jnp.int32),
        rewards=jnp.asarray(reward * mask),
        dones=jnp.asarray(done),
        mask=jnp.asarray(mask.astype(np.float64)),
        policy_probs=jnp.asarray(np.asarray(policy_probs)[state]),
        state_index=jnp.asarray(state, jnp.int32),
        info={})
    return trajectory, probabilities
