"""Exact dynamic-programming quantities on a :class:`~cocoa.types.TabularMDP`: the ground truth.

Every function is vectorised over states (gathers and scatter-adds over successor lists) and
scans over the horizon, so MDPs with 10^5 states run in seconds on a CPU. Results are float32 by
default and float64 when called under ``with jax.enable_x64(True):``.

Conventions (see ``cocoa.types``): steps t = 0..H-1, J = E[sum_t R_t], terminal states absorbing
with zero reward. Per-step quantities have a leading horizon axis: ``occupancy`` (H, S),
``q_values`` (H, S, A), ``state_values`` (H, S). Q_t is needed per step because the policy is
stationary but the horizon is finite: in an MDP whose state does not encode time, the value
depends on the steps left.

Policies are given as probabilities (S, A), as tabular logits (S, A) with optional
epsilon-mixing ``pi = (1 - eps) softmax(logits) + eps / A`` (docs/estimators/), or as a network
``apply_fn(params, observations) -> logits`` evaluated on ``mdp.observations``.
"""

from __future__ import annotations

import fractions
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.types import TabularMDP

_SUM_TOLERANCE = 1e-4


def mixed_policy(logits, epsilon: float = 0.0):
    """pi = (1 - epsilon) * softmax(logits) + epsilon / A, over the last axis."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon!r}")
    num_actions = logits.shape[-1]
    return (1.0 - epsilon) * jax.nn.softmax(logits, axis=-1) + epsilon / num_actions


def _float(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _check_policy(mdp: TabularMDP, policy_probs, name: str = "policy_probs"):
    expected = (mdp.num_states, mdp.num_actions)
    if tuple(jnp.shape(policy_probs)) != expected:
        raise ValueError(f"{name} must have shape (S, A) = {expected}; got {tuple(jnp.shape(policy_probs))}")
    if not isinstance(policy_probs, jax.core.Tracer):
        sums = jnp.sum(policy_probs, axis=-1)
        worst = float(jnp.max(jnp.abs(sums - 1.0)))
        # NaN fails no comparison, so it is caught by name.
        if not bool(jnp.all(jnp.isfinite(policy_probs))) or worst > _SUM_TOLERANCE or float(jnp.min(policy_probs)) < 0:
            raise ValueError(f"{name} must be non-negative and sum to one per state; "
                             f"worst row sum is off by {worst:.3g}")


def _check_mdp(mdp):
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"expected a cocoa.types.TabularMDP; got {type(mdp).__name__}")


def _propagate(mdp: TabularMDP, distribution, policy_probs):
    """One forward step of the state distribution: d'(s') = sum_{s,a} d(s) pi(a|s) P(s'|s,a)."""
    mass = distribution[:, None, None] * policy_probs[:, :, None] * _float(mdp.successor_probs)
    return jnp.zeros_like(distribution).at[mdp.successors].add(mass)


def occupancy(mdp: TabularMDP, policy_probs) -> jax.Array:
    """(H, S) state marginals d_t(s) = P(S_t = s) for t = 0..H-1."""
    # Checked here, outside jit: inside a jitted function the probabilities are tracers and
    # their values (row sums, signs) cannot be checked.
    _check_mdp(mdp)
    _check_policy(mdp, policy_probs)
    return _occupancy(mdp, policy_probs)


@jax.jit
def _occupancy(mdp: TabularMDP, policy_probs) -> jax.Array:
    policy_probs = _float(policy_probs)

    def step(distribution, _):
        return _propagate(mdp, distribution, policy_probs), distribution

    _, marginals = jax.lax.scan(step, _float(mdp.initial), None, length=mdp.horizon)
    return marginals


def q_and_state_values(mdp: TabularMDP, policy_probs) -> tuple[jax.Array, jax.Array]:
    """(H, S, A) Q_t and (H, S) V_t: expected reward-to-go from step t (backward recursion)."""
    _check_mdp(mdp)
    _check_policy(mdp, policy_probs)
    return _q_and_state_values(mdp, policy_probs)


@jax.jit
def _q_and_state_values(mdp: TabularMDP, policy_probs) -> tuple[jax.Array, jax.Array]:
    policy_probs = _float(policy_probs)
    rewards = _float(mdp.reward_probs) @ _float(mdp.reward_values)
    successor_probs = _float(mdp.successor_probs)

    def step(next_values, _):
        q = rewards + jnp.sum(successor_probs * next_values[mdp.successors], axis=-1)
        values = jnp.sum(policy_probs * q, axis=-1)
        return values, (q, values)

    terminal_values = jnp.zeros(mdp.num_states, dtype=rewards.dtype)
    _, (q, values) = jax.lax.scan(step, terminal_values, None, length=mdp.horizon, reverse=True)
    return q, values


def q_values(mdp: TabularMDP, policy_probs) -> jax.Array:
    """(H, S, A) Q_t(s, a) = E[sum_{k>=t} R_k | S_t = s, A_t = a]."""
    return q_and_state_values(mdp, policy_probs)[0]


def state_values(mdp: TabularMDP, policy_probs) -> jax.Array:
    """(H, S) V_t(s) = E[sum_{k>=t} R_k | S_t = s]."""
    return q_and_state_values(mdp, policy_probs)[1]


def expected_return(mdp: TabularMDP, policy_probs) -> jax.Array:
    """J = E[sum_{t<H} R_t] = sum_s initial(s) V_0(s)."""
    return _float(mdp.initial) @ state_values(mdp, policy_probs)[0]


def policy_gradient(mdp: TabularMDP, policy: Any, params: Any = None, *, epsilon: float = 0.0):
    """Exact policy gradient dJ/dtheta by autodiff through the DP value.

    Args:
      mdp: the MDP.
      policy: tabular logits (S, A), or ``apply_fn(params, observations) -> logits`` of a network.
      params: the network's parameters (only with a network policy).
      epsilon: epsilon-mixing of the softmax policy (docs/estimators/).

    Returns:
      dJ/dlogits (S, A) for tabular logits, or a pytree like ``params`` for a network.
    """
    _check_mdp(mdp)
    if callable(policy):
        if params is None:
            raise ValueError("policy_gradient with a network policy needs its `params`")
        return _network_gradient(policy, float(epsilon))(mdp, params)
    if params is not None:
        raise ValueError("policy_gradient got `params` but the policy is a logits table, not a network")
    logits = _float(policy)
    _check_policy(mdp, jax.nn.softmax(logits), "logits")
    return _tabular_gradient(mdp, logits, float(epsilon))


@functools.partial(jax.jit, static_argnames="epsilon")
def _tabular_gradient(mdp, logits, epsilon):
    return jax.grad(lambda z: expected_return(mdp, mixed_policy(z, epsilon)))(logits)


@functools.lru_cache(maxsize=64)
def _network_gradient(apply_fn: Callable, epsilon: float):
    def objective(params, mdp):
        logits = apply_fn(params, _float(mdp.observations))
        return expected_return(mdp, mixed_policy(logits, epsilon))

    return jax.jit(lambda mdp, params: jax.grad(objective)(params, mdp))


def estimator_gradient(mdp: TabularMDP, policy: Any, expected_credit, params: Any = None, *,
                       epsilon: float = 0.0, first_step_only: bool = False):
    """An estimator's exact expected gradient from its expected credit.

    E[g_hat] = sum_t sum_s d_t(s) sum_a grad pi(a|s) E_t(s, a)   (docs/index.md, "Expected credit").
    With ``expected_credit = q_values(...)`` this is the policy-gradient theorem, i.e. the true
    gradient. ``first_step_only`` keeps the t = 0 term only (the COCOA paper's key-to-door figures).

    Args:
      mdp: the MDP.
      policy: tabular logits (S, A) or a network ``apply_fn`` (then pass ``params``).
      expected_credit: (S, A) or per step (H, S, A).
      params: network parameters (network policies only).
      epsilon: epsilon-mixing of the policy.
      first_step_only: keep only the t = 0 term.
    """
    _check_mdp(mdp)
    credit = _float(expected_credit)
    shape = (mdp.num_states, mdp.num_actions)
    if credit.shape == shape:
        credit = jnp.broadcast_to(credit, (mdp.horizon, *shape))
    if credit.shape != (mdp.horizon, *shape):
        raise ValueError(f"expected_credit must have shape (S, A) = {shape} or (H, S, A) = "
                         f"{(mdp.horizon, *shape)}; got {credit.shape}")
    if callable(policy):
        if params is None:
            raise ValueError("estimator_gradient with a network policy needs its `params`")
        probs_fn = lambda p: mixed_policy(policy(p, _float(mdp.observations)), epsilon)
        theta = params
    else:
        probs_fn = lambda z: mixed_policy(z, epsilon)
        theta = _float(policy)
    marginals = occupancy(mdp, jax.lax.stop_gradient(probs_fn(theta)))
    if first_step_only:
        marginals = marginals.at[1:].set(0.0)
    weights = jnp.einsum("ts,tsa->sa", marginals, credit)

    def surrogate(theta):
        return jnp.sum(probs_fn(theta) * weights)

    return jax.grad(surrogate)(theta)


def later_occurrences(mdp: TabularMDP, policy_probs, hindsight_map, num_objects: int):
    """Expected later occurrences of hindsight objects, and the reward they carry (COCOA paper §3).

    A hindsight object U_k = hindsight_map[S_k, A_k, k_R] is a class in [0, num_objects) chosen by
    the state, the action and the index k_R of the reward value at step k (COCOA-reward:
    hindsight_map[s, a, k] = k; HCA-state: = s). Occurrences in terminal states are not counted.

    Returns:
      counts (H, S, A, U): sum_{k>t} P(U_k = u | S_t = s, A_t = a), the summed later occupancy;
      rewards (H, S, A, U): sum_{k>t} E[R_k 1{U_k = u} | S_t = s, A_t = a].
    """
    _check_mdp(mdp)
    _check_policy(mdp, policy_probs)
    expected = (mdp.num_states, mdp.num_actions, mdp.num_reward_values)
    if tuple(jnp.shape(hindsight_map)) != expected:
        raise ValueError(f"hindsight_map must have shape (S, A, K) = {expected}; got {jnp.shape(hindsight_map)}")
    return _later_occurrences(mdp, policy_probs, jnp.asarray(hindsight_map, jnp.int32), num_objects)


@functools.partial(jax.jit, static_argnames="num_objects")
def _later_occurrences(mdp, policy_probs, hindsight_map, num_objects):
    policy_probs = _float(policy_probs)
    reward_probs = _float(mdp.reward_probs) * (1.0 - _float(mdp.terminal))[:, None, None]
    objects = jax.nn.one_hot(hindsight_map, num_objects, dtype=reward_probs.dtype)  # (S, A, K, U)
    # Per (s, a): expected count and expected reward of each object at this step.
    here = jnp.stack([jnp.einsum("sak,saku->sau", reward_probs, objects),
                      jnp.einsum("sak,k,saku->sau", reward_probs, _float(mdp.reward_values), objects)], axis=-1)
    successor_probs = _float(mdp.successor_probs)

    def step(from_next, _):  # from_next (S, U, 2): occurrences at steps >= t+1 given S_{t+1}
        later = jnp.einsum("san,sanuc->sauc", successor_probs, from_next[mdp.successors])
        from_here = jnp.einsum("sa,sauc->suc", policy_probs, here + later)
        return from_here, later

    initial = jnp.zeros((mdp.num_states, num_objects, 2), reward_probs.dtype)
    _, later = jax.lax.scan(step, initial, None, length=mdp.horizon, reverse=True)
    return later[..., 0], later[..., 1]


def contribution_coefficients(mdp: TabularMDP, policy_probs, hindsight_map, num_objects: int):
    """Exact w_t(s, a, u) = P^pi(u later | s, a) / P^pi(u later | s), (H, S, A, U); 1 where undefined.

    "Later" counts expected occurrences over k > t (docs/oracle.md).
    """
    counts, _ = later_occurrences(mdp, policy_probs, hindsight_map, num_objects)
    marginal = jnp.einsum("sa,tsau->tsu", _float(policy_probs), counts)[:, :, None, :]
    defined = marginal > 1e-12
    return jnp.where(defined, counts / jnp.where(defined, marginal, 1.0), 1.0)


def hindsight_map(mdp: TabularMDP, kind: str):
    """The (S, A, K) hindsight-object map of a standard object kind: "reward" (U = K) or "state" (U = S)."""
    shape = (mdp.num_states, mdp.num_actions, mdp.num_reward_values)
    if kind == "reward":
        return jnp.broadcast_to(jnp.arange(mdp.num_reward_values), shape), mdp.num_reward_values
    if kind == "state":
        return jnp.broadcast_to(jnp.arange(mdp.num_states)[:, None, None], shape), mdp.num_states
    raise ValueError(f"unknown hindsight object kind {kind!r}; expected 'reward' or 'state'")


def return_lattice(mdp: TabularMDP, max_atoms: int = 4096, max_denominator: int = 1000):
    """The lattice of values G_t = sum_{k>=t} R_k can take: (atoms (M,), spacing).

    Every reward value must be an integer multiple of a common spacing (found from their rational
    ratios); returns over at most H steps then lie on M evenly spaced atoms.
    """
    values = np.asarray(mdp.reward_values, dtype=float)
    nonzero = np.abs(values[np.abs(values) > 1e-12])
    if nonzero.size == 0:
        return np.zeros(1), 1.0
    unit = nonzero.min()
    ratios = [fractions.Fraction(v / unit).limit_denominator(max_denominator) for v in nonzero]
    if any(abs(float(r) - v / unit) > 1e-6 * max(1.0, v / unit) for r, v in zip(ratios, nonzero)):
        raise ValueError(f"reward values {values.tolist()} are not multiples of a common spacing; "
                         "the return distribution needs a lattice")
    spacing = unit / math.lcm(*(r.denominator for r in ratios))
    low = mdp.horizon * min(0.0, values.min())
    high = mdp.horizon * max(0.0, values.max())
    count = int(round((high - low) / spacing)) + 1
    if count > max_atoms:
        raise ValueError(f"the return lattice needs {count} atoms (spacing {spacing:g} over [{low:g}, {high:g}]); "
                         f"the limit is max_atoms={max_atoms}")
    return low + spacing * np.arange(count), spacing


def return_distribution(mdp: TabularMDP, policy_probs, max_atoms: int = 4096):
    """Exact law of the return-to-go: P(G_t = g_m | S_t = s, A_t = a), (H, S, A, M), and the atoms (M,).

    G_t = sum_{k>=t} R_k, by a backward recursion over distributions on the lattice of
    ``return_lattice`` (each reward value shifts the distribution by a whole number of atoms).
    """
    _check_mdp(mdp)
    _check_policy(mdp, policy_probs)
    atoms, spacing = return_lattice(mdp, max_atoms)
    offset = int(round(-atoms[0] / spacing))  # index of the atom G = 0
    shifts = tuple(int(round(v / spacing)) for v in np.asarray(mdp.reward_values, dtype=float))
    return _return_distribution(mdp, policy_probs, len(atoms), offset, shifts), jnp.asarray(atoms, jnp.result_type(float))


@functools.partial(jax.jit, static_argnames=("num_atoms", "offset", "shifts"))
def _return_distribution(mdp, policy_probs, num_atoms, offset, shifts):
    policy_probs = _float(policy_probs)
    reward_probs = _float(mdp.reward_probs)
    successor_probs = _float(mdp.successor_probs)

    def shift(distribution, atoms):  # G + r: move mass up by `atoms` places (never past the lattice)
        if atoms >= 0:
            return jnp.pad(distribution, [(0, 0)] * (distribution.ndim - 1) + [(atoms, 0)])[..., :num_atoms]
        return jnp.pad(distribution, [(0, 0)] * (distribution.ndim - 1) + [(0, -atoms)])[..., -atoms:]

    def step(from_next, _):  # from_next (S, M): law of G_{t+1} given S_{t+1}
        after = jnp.einsum("san,sanm->sam", successor_probs, from_next[mdp.successors])
        here = sum(reward_probs[:, :, k, None] * shift(after, atoms) for k, atoms in enumerate(shifts))
        return jnp.einsum("sa,sam->sm", policy_probs, here), here

    zero_return = jnp.zeros((mdp.num_states, num_atoms), reward_probs.dtype).at[:, offset].set(1.0)
    _, laws = jax.lax.scan(step, zero_return, None, length=mdp.horizon, reverse=True)
    return laws
