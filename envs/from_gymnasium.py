"""Gymnasium toy-text environments as :class:`~cocoa.types.TabularMDP`, so the oracle works on them.

Gymnasium's toy-text environments (FrozenLake, CliffWalking, Taxi) carry their full dynamics as a
transition table ``env.unwrapped.P``: ``P[s][a]`` is a list of outcomes
``(probability, next_state, reward, terminated)``. :func:`from_gymnasium` turns that table into a
``TabularMDP``::

    import gymnasium
    from cocoa import oracle
    from cocoa.envs import from_gymnasium

    mdp = from_gymnasium("FrozenLake-v1", horizon=100, is_slippery=True)
    J = oracle.expected_return(mdp, uniform_policy)      # exact, no sampling

The construction:

* States ``0..S-1`` are Gymnasium's; state ``S`` is an added absorbing terminal state with zero
  reward, and every outcome with ``terminated=True`` moves there (its reward is still paid).
  Gymnasium's own "terminal" states (FrozenLake's holes and goal, whose outcomes are self-loops
  with ``terminated=True``) are ordinary states here that lead to state ``S``; an episode never
  visits them, since entering them ends it.
* Observations are Gymnasium's observations one-hot, ``S`` wide, as an agent stepping the real
  environment sees them (``wrap_gymnasium``'s host loop encodes them the same way, so one agent runs on
  both); the terminal state, never observed, has the zero vector. The initial distribution is
  ``env.unwrapped.initial_state_distrib`` (zero on the terminal state).
* Duplicate successors of a state-action are merged (their probabilities add up); successor lists
  are padded to the longest one with probability-0 entries pointing at the state itself.
* The reward is **marginalised** over the next state: ``reward_probs[s, a, k]`` is the total
  probability of the outcomes of ``(s, a)`` whose reward is ``reward_values[k]``, and the
  ``TabularMDP`` draws reward and successor independently given ``(s, a)``.

Exactness: the expected return J, the values V_t and Q_t, the occupancies and the policy gradient
depend on the rewards only through the expected reward r(s, a) and on the dynamics only through
P(s' | s, a). The marginalisation keeps both, so all of these (and every quantity that is linear in
the rewards, such as expected credits and reward-based hindsight quantities
P(A_t = a | S_t, R_k) for k >= t) are exact for the Gymnasium environment. What is not kept is the
joint law of a reward and the next state (in FrozenLake, reward 1 *always* comes with reaching the
goal): second moments of returns, and hence sampled-return variances, can differ from the real
environment's, and anything conditioning on (R_t, S_{t+1}) jointly does not apply.

The horizon H plays the part of Gymnasium's ``TimeLimit`` (``max_episode_steps``): J is the
expected sum of the first H rewards, as in an episode truncated after H steps.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from cocoa.types import TabularMDP

# Probability mass a state-action's outcomes may miss or exceed before the table is rejected;
# inside it, the probabilities are renormalised (a slippery step is three times 1/3, say).
_SUM_TOLERANCE = 1e-6


def from_gymnasium(env: gymnasium.Env | str, horizon: int | None = None, **make_kwargs) -> TabularMDP:
    """The exact ``TabularMDP`` of a Gymnasium toy-text environment (one with a ``P`` table).

    Args:
      env: a Gymnasium environment, wrapped or not (``env.unwrapped`` is read), or a Gymnasium id
        that is passed to ``gymnasium.make(env, **make_kwargs)``: ``"FrozenLake-v1"``,
        ``"FrozenLake8x8-v1"``, ``"CliffWalking-v1"``, ``"CliffWalkingSlippery-v1"``, ``"Taxi-v4"``.
      horizon: the episode length H >= 1; by default the environment's ``max_episode_steps``
        (FrozenLake-v1: 100, Taxi-v4: 200; CliffWalking has none, so it needs one).
      **make_kwargs: environment arguments, only with an id (e.g. ``is_slippery=True``, ``map_name``).

    Returns:
      A ``TabularMDP`` with ``S + 1`` states (the last one the absorbing terminal state), the
      environment's actions, the rewards of ``P`` (plus 0) as reward support, one-hot observations (S wide)
      and the environment's initial distribution. See the module docstring for the semantics and
      for which oracle quantities are exact.

    Raises:
      TypeError: ``env`` is neither an id nor a Gymnasium environment, has no ``P`` table or no
        ``initial_state_distrib``, or its spaces are not ``Discrete``.
      ValueError: a bad horizon, a malformed ``P`` table (missing entries, probabilities not summing
        to one, next states out of range), or dynamics that ``P`` does not describe (Taxi's
        ``fickle_passenger``).
    """
    if isinstance(env, str):
        made = gymnasium.make(env, **make_kwargs)
        try:
            return from_gymnasium(made, horizon)
        finally:
            made.close()
    if make_kwargs:
        raise ValueError(f"environment arguments {sorted(make_kwargs)} can only be given with a Gymnasium id "
                         f"string; got an already built {type(env).__name__}")
    if not isinstance(env, gymnasium.Env):
        raise TypeError(f"expected a gymnasium.Env or a Gymnasium id string; got {type(env).__name__}")

    base = env.unwrapped
    label = env.spec.id if env.spec is not None else type(base).__name__
    table = getattr(base, "P", None)
    if table is None:
        raise TypeError(f"{label} has no transition table `P`; from_gymnasium needs a toy-text environment "
                        "that lists its dynamics, such as FrozenLake-v1, CliffWalking-v1 or Taxi-v4")
    horizon = _resolve_horizon(horizon, env, label)
    num_states = _discrete_size(base.observation_space, "observation_space", label)
    num_actions = _discrete_size(base.action_space, "action_space", label)
    if getattr(base, "fickle_passenger", False):
        raise ValueError(f"{label} has fickle_passenger=True: the passenger's change of destination happens "
                         "outside the `P` table (it depends on a hidden flag), so P does not describe the "
                         "dynamics; use fickle_passenger=False")
    initial = _initial_distribution(base, num_states, label)

    outcomes = _flatten(table, num_states, num_actions, label)
    return _build(outcomes, num_states, num_actions, initial, horizon, label)


def _resolve_horizon(horizon: Any, env: gymnasium.Env, label: str) -> int:
    if horizon is None:
        horizon = env.spec.max_episode_steps if env.spec is not None else None
        if horizon is None:
            raise ValueError(f"{label} has no max_episode_steps; pass horizon=H (the episode length, >= 1)")
    if isinstance(horizon, (bool, np.bool_)) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1 (the episode length); got {horizon!r}")
    return int(horizon)


def _discrete_size(space: Any, name: str, label: str) -> int:
    if not isinstance(space, gymnasium.spaces.Discrete) or int(space.start) != 0:
        raise TypeError(f"{label}.{name} must be gymnasium.spaces.Discrete(n) starting at 0; got {space}")
    return int(space.n)


def _initial_distribution(base: gymnasium.Env, num_states: int, label: str) -> np.ndarray:
    initial = getattr(base, "initial_state_distrib", None)
    if initial is None:
        raise TypeError(f"{label} has a `P` table but no `initial_state_distrib`; cannot tell where "
                        "episodes start")
    initial = np.asarray(initial, dtype=np.float64)
    if initial.shape != (num_states,):
        raise ValueError(f"{label}.initial_state_distrib must have shape ({num_states},); got {initial.shape}")
    if not np.all(np.isfinite(initial)) or initial.min() < 0 or abs(initial.sum() - 1.0) > _SUM_TOLERANCE:
        raise ValueError(f"{label}.initial_state_distrib must be a distribution; it sums to {initial.sum():.6g}")
    return initial / initial.sum()


def _flatten(table: Any, num_states: int, num_actions: int, label: str) -> np.ndarray:
    """One pass over ``P``: (M, 6) float64 rows (state, action, probability, next, reward, terminated)."""
    try:
        rows = [(s, a, *outcome) for s in range(num_states) for a in range(num_actions)
                for outcome in table[s][a]]
    except (KeyError, IndexError) as error:
        raise ValueError(f"{label}.P must have an entry P[s][a] for every state s < {num_states} and action "
                         f"a < {num_actions}; missing {error}") from None
    except TypeError as error:
        raise ValueError(f"{label}.P[s][a] must be lists of (probability, next_state, reward, terminated) "
                         f"tuples; {error}") from None
    try:
        outcomes = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError):
        outcomes = None
    if outcomes is None or outcomes.ndim != 2 or outcomes.shape[1] != 6:
        raise ValueError(f"{label}.P[s][a] must be lists of (probability, next_state, reward, terminated) tuples")
    return outcomes


def _build(outcomes: np.ndarray, num_states: int, num_actions: int, initial: np.ndarray, horizon: int,
           label: str) -> TabularMDP:
    state, action, prob, next_state, reward, terminated = outcomes.T
    pair = (state * num_actions + action).astype(np.int64)  # flat (s, a) index
    num_pairs, terminal_state = num_states * num_actions, num_states

    if not np.all(np.isfinite(prob)) or prob.min() < 0:
        raise ValueError(f"{label}.P has negative or non-finite probabilities (min {np.nanmin(prob):g})")
    totals = np.bincount(pair, weights=prob, minlength=num_pairs)
    worst = int(np.abs(totals - 1.0).argmax())
    if abs(totals[worst] - 1.0) > _SUM_TOLERANCE:
        raise ValueError(f"{label}.P[{worst // num_actions}][{worst % num_actions}] probabilities sum to "
                         f"{totals[worst]:.6g}; expected 1")
    if (next_state != np.round(next_state)).any() or next_state.min() < 0 or next_state.max() >= num_states:
        raise ValueError(f"{label}.P next states must be integers in [0, {num_states}); got values in "
                         f"[{next_state.min():g}, {next_state.max():g}]")
    if not np.all(np.isfinite(reward)):
        raise ValueError(f"{label}.P has non-finite rewards")
    prob = prob / totals[pair]  # renormalise away rounding (e.g. 3 x 1/3)

    # Successors: terminated outcomes go to the terminal state; merge duplicates per (s, a).
    live = prob > 0
    target = np.where(terminated[live] != 0, terminal_state, next_state[live]).astype(np.int64)
    keys, inverse = np.unique(pair[live] * (num_states + 1) + target, return_inverse=True)
    merged_probs = np.bincount(inverse, weights=prob[live], minlength=keys.size)
    merged_pair, merged_target = keys // (num_states + 1), keys % (num_states + 1)
    counts = np.bincount(merged_pair, minlength=num_pairs)
    num_successors = int(counts.max())
    rank = np.arange(keys.size) - (np.cumsum(counts) - counts)[merged_pair]  # keys sorted by pair

    all_states = num_states + 1
    successors = np.broadcast_to(np.arange(all_states)[:, None, None],
                                 (all_states, num_actions, num_successors)).copy()
    successor_probs = np.zeros((all_states, num_actions, num_successors))
    rows, cols = merged_pair // num_actions, merged_pair % num_actions
    successors[rows, cols, rank] = merged_target
    successor_probs[rows, cols, rank] = merged_probs
    successor_probs[terminal_state, :, 0] = 1.0

    # Rewards: marginalised over the outcomes of each (s, a); the terminal state pays 0.
    reward_values = np.unique(np.append(reward, 0.0))
    slot = np.searchsorted(reward_values, reward)
    num_rewards = reward_values.size
    reward_probs = np.bincount(pair * num_rewards + slot, weights=prob, minlength=num_pairs * num_rewards)
    reward_probs = np.concatenate([reward_probs.reshape(num_states, num_actions, num_rewards),
                                   np.zeros((1, num_actions, num_rewards))])
    reward_probs[terminal_state, :, np.searchsorted(reward_values, 0.0)] = 1.0

    return TabularMDP(
        successors=successors.astype(np.int32),
        successor_probs=successor_probs,
        reward_values=reward_values,
        reward_probs=reward_probs,
        initial=np.append(initial, 0.0),
        observations=np.eye(all_states, num_states, dtype=np.float32),  # the terminal state's row is zero
        terminal=np.arange(all_states) == terminal_state,
        horizon=horizon)
