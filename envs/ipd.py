"""The iterated prisoner's dilemma: a two-player functional environment, and its analytic form.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (the IPD experiments); docs/environments/ipd.md.

Each step both players cooperate (C = 0) or defect (D = 1) at once. Payoffs (own, other):
CC (1, 1), CD (-1, 2), DC (2, -1), DD (0, 0). A player observes one of 5 one-hot observations,
from its own view: 0 at the start, then the previous joint action as (own, other), 1 + 2 own + other
(CC 1, CD 2, DC 3, DD 4). So player B's observation of a joint action is player A's with the two
actions swapped. An inner episode lasts ``episode_length`` steps.

The sampled game, ``IteratedPrisonersDilemma``, is gymnax-style over explicit state and params,
with both players' actions, observations and rewards on a leading axis of 2.

The analytic game: memory-1 policies are 5 logits (the log-odds of cooperating after each
observation). ``analytic_returns`` gives both players' (1 - gamma)-normalised discounted returns of
the infinitely repeated game by one 4 x 4 linear solve: with the joint action a Markov chain
(start distribution p0, transition matrix P), J = (1 - gamma) p0 (I - gamma P)^-1 r.
``naive_learning`` unrolls a naive learner's exact gradient steps against fixed logits, and
``shaping_objective`` is the meta player's return summed over that learning trajectory, exactly
differentiable: the learning-aware oracle.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.checks import check_integer
from cocoa.envs.base import params_dataclass

COOPERATE, DEFECT = 0, 1
NUM_ACTIONS = 2
NUM_OBSERVATIONS = 5  # start, CC, CD, DC, DD from the player's own view
START = 0
# PAYOFF[own, other]: the player's reward.
PAYOFF = np.array([[1.0, -1.0], [2.0, 0.0]], np.float32)
# The joint states CC, CD, DC, DD (A's view) as B sees them: CC, DC, CD, DD.
SWAP = np.array([0, 2, 1, 3])


@params_dataclass
class IPDParams:
    payoff: jax.Array  # (2, 2) reward of (own action, other action)
    episode_length: jax.Array  # int ()


@dataclasses.dataclass(frozen=True)
class IPDState:
    last: jax.Array  # int (2,) each player's observation index
    time: jax.Array
    done: jax.Array


jax.tree_util.register_dataclass(IPDState, data_fields=["last", "time", "done"], meta_fields=[])


def observation_index(own, other):
    """The observation index of a joint action from one player's view: 1 + 2 own + other."""
    return 1 + 2 * own + other


class IteratedPrisonersDilemma:
    """Two players, ``episode_length`` simultaneous steps of the prisoner's dilemma (module docstring).

    ``reset(params)`` -> (observations (2, 5), state); ``step(state, actions (2,), params)`` ->
    (observations (2, 5), state, rewards (2,), done). Deterministic: no noise. Stepping a finished
    episode pays nothing and changes nothing. ``jax.vmap`` batches it.
    """

    name = "IteratedPrisonersDilemma-v0"
    num_players = 2
    num_actions = NUM_ACTIONS
    observation_shape = (NUM_OBSERVATIONS,)

    def __init__(self, *, episode_length: int = 10):
        check_integer("episode_length", episode_length, 1, why=" (T, the steps of an inner episode)")
        self.episode_length = int(episode_length)
        self.default_params = IPDParams(payoff=jnp.asarray(PAYOFF), episode_length=jnp.int32(episode_length))

    @staticmethod
    def _observe(last):
        return jax.nn.one_hot(last, NUM_OBSERVATIONS, dtype=jnp.float32)

    def reset(self, params=None):
        del params
        state = IPDState(last=jnp.full((2,), START, jnp.int32), time=jnp.int32(0), done=jnp.bool_(False))
        return self._observe(state.last), state

    def step(self, state, actions, params=None):
        params = self.default_params if params is None else params
        actions = jnp.asarray(actions, jnp.int32)
        own, other = actions, actions[::-1]
        live = ~state.done
        rewards = jnp.where(live, params.payoff[own, other], 0.0)
        time = state.time + live.astype(jnp.int32)
        last = jnp.where(live, observation_index(own, other), state.last)
        next_state = IPDState(last=last.astype(jnp.int32), time=time, done=state.done | (time >= params.episode_length))
        return self._observe(next_state.last), next_state, rewards, next_state.done

    def __repr__(self):
        return f"IteratedPrisonersDilemma(episode_length={self.episode_length})"


def _check_logits(name, logits):
    logits = jnp.asarray(logits)
    if logits.shape[-1:] != (NUM_OBSERVATIONS,):
        raise ValueError(f"{name} must hold 5 logits (start, CC, CD, DC, DD) on its last axis; got shape {logits.shape}")
    return logits


def analytic_returns(logits_a, logits_b, discount: float):
    """(J_a, J_b): the (1 - gamma)-normalised discounted returns per step of the infinitely repeated IPD.

    Args:
      logits_a, logits_b: (5,) each, the log-odds of cooperating after start, CC, CD, DC, DD, each
        from the player's own view. Differentiable.
      discount: gamma in [0, 1).
    """
    if not isinstance(discount, (int, float, np.floating)) or isinstance(discount, bool) or not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must be a number in [0, 1) (the infinitely repeated game); got {discount!r}")
    coop_a = jax.nn.sigmoid(_check_logits("logits_a", logits_a))
    coop_b = jax.nn.sigmoid(_check_logits("logits_b", logits_b))

    def joint(p_a, p_b):  # (4,) probabilities of CC, CD, DC, DD (A's view)
        return jnp.stack([p_a * p_b, p_a * (1 - p_b), (1 - p_a) * p_b, (1 - p_a) * (1 - p_b)], axis=-1)

    start = joint(coop_a[START], coop_b[START])
    # From joint state s (A's view) A sees observation 1 + s, B sees 1 + SWAP[s].
    transitions = joint(coop_a[1:], coop_b[1 + SWAP])  # (4, 4)
    visits = jnp.linalg.solve((jnp.eye(4) - discount * transitions).T, start)  # p0 (I - gamma P)^-1
    reward_a = jnp.asarray(PAYOFF).reshape(-1)  # CC, CD, DC, DD from A's view
    reward_b = reward_a[SWAP]
    return (1.0 - discount) * visits @ reward_a, (1.0 - discount) * visits @ reward_b


def naive_learning(meta_logits, naive_logits, discount: float, steps: int, learning_rate: float):
    """The naive learner's logits before each of its ``steps`` exact gradient-ascent steps on its own
    analytic return against the fixed ``meta_logits`` (the meta player is A, the naive one B):
    (steps, 5), the first row ``naive_logits``. Differentiable in both."""
    check_integer("steps", steps, 1)

    def step(logits, _):
        gradient = jax.grad(lambda own: analytic_returns(meta_logits, own, discount)[1])(logits)
        return logits + learning_rate * gradient, logits

    start = jnp.asarray(naive_logits, jnp.result_type(naive_logits, meta_logits, float))  # float64 under x64
    _, trajectory = jax.lax.scan(step, start, None, length=steps)
    return trajectory


def shaping_objective(meta_logits, naive_logits, discount: float, steps: int, learning_rate: float):
    """The meta player's analytic return summed over the naive learner's ``steps``-step learning
    trajectory (``naive_learning``); its gradient in ``meta_logits`` is the learning-aware gradient,
    exactly, through the unrolled naive updates."""
    trajectory = naive_learning(meta_logits, naive_logits, discount, steps, learning_rate)
    returns = jax.vmap(lambda naive: analytic_returns(meta_logits, naive, discount)[0])(trajectory)
    return jnp.sum(returns)
