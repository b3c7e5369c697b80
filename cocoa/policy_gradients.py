"""Policy-gradient estimates and their exact counterparts, with respect to the policy network.

For an agent at a policy: each trajectory's estimate g_i (the gradient of the policy surrogate
with the estimator's credit), the exact gradient g* and the estimator's exact expected gradient ḡ
from the oracle (docs/oracle.md, docs/gradients.md). ``cocoa.metrics`` turns them into bias,
variance and SNR; ``cocoa.gradients`` and ``cocoa.shadow`` use them at one policy or along training.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from cocoa import agents, oracle
from cocoa.agents.agent import Agent, AgentState
from cocoa.types import TabularMDP, Trajectory

_CHUNK_SIZE = 1024


def model_params_for(agent: Agent, agent_state: AgentState) -> Any:
    """The estimator's model at the agent's policy: the oracle's tables for ``-gt`` estimators."""
    if agent.estimator.exact:
        return agent.exact_model(agent_state.policy_params)
    return agent_state.model_params


@functools.lru_cache(maxsize=32)
def _chunk_gradients_fn(agent: Agent, first_step_only: bool):
    """Jitted (policy_params, model_params, trajectory (C, T)) -> (C, P) per-trajectory gradients."""

    def chunk_gradients(policy_params, model_params, trajectory: Trajectory):
        credit = jax.lax.stop_gradient(agent.estimator.credit(model_params, trajectory))
        mask = trajectory.mask
        if first_step_only:
            mask = mask * (jnp.arange(trajectory.length) == 0).astype(mask.dtype)

        def one_trajectory(observations, credit, mask):
            def surrogate(params):
                probs = agent.behaviour_probs(params, observations[None])
                return agents.policy_surrogate(probs, credit[None], mask[None])

            return ravel_pytree(jax.grad(surrogate)(policy_params))[0]

        return jax.vmap(one_trajectory)(trajectory.observations, credit, mask)

    return jax.jit(chunk_gradients)


def per_trajectory_gradients(agent: Agent, agent_state: AgentState, trajectories: Trajectory, *,
                             first_step_only: bool = False, chunk_size: int = _CHUNK_SIZE) -> jax.Array:
    """(N, P) each trajectory's estimate ĝ_i = Σ_t Σ_a ∇π(a|S_t) C_t(a), w.r.t. the policy network.

    The gradient of ``agents.policy_surrogate`` on each trajectory alone (a batch of one), with
    the credit of ``agent.estimator.credit`` under the agent's model (the oracle's tables for
    ``-gt`` estimators), flattened with ``ravel_pytree`` in the order of the policy parameters.
    Computed in chunks of ``chunk_size`` trajectories to bound memory.

    Args:
      agent: the agent (policy network + estimator).
      agent_state: its parameters; ``policy_params`` is the policy the gradient is taken at.
      trajectories: (N, T) trajectories collected with that policy.
      first_step_only: keep only the t = 0 term (docs/oracle.md).
      chunk_size: trajectories per compiled call.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    num = trajectories.batch_size
    chunk_size = min(chunk_size, num)
    compute = _chunk_gradients_fn(agent, bool(first_step_only))
    model_params = model_params_for(agent, agent_state)
    chunks = []
    for start in range(0, num, chunk_size):
        # The last chunk is padded with repeats of the final trajectory (one compiled shape).
        rows = np.minimum(np.arange(start, start + chunk_size), num - 1)
        chunk = jax.tree.map(lambda x: x[rows], trajectories)
        chunks.append(compute(agent_state.policy_params, model_params, chunk)[: num - start])
    return jnp.concatenate(chunks)


class _Identity:
    """Hashes and compares by the object's identity (a ``TabularMDP`` holds arrays, so has no hash); as a
    cache key it also keeps the object alive, so its ``id`` cannot be reused meanwhile."""

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return id(self.value)

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.value is self.value


@functools.lru_cache(maxsize=32)
def _compiled(function, agent: Agent, mdp: _Identity, first_step_only: bool):
    """``function(agent, agent_state, mdp, first_step_only)`` as one compiled program of the agent state:
    eagerly its few hundred oracle operations would each dispatch, and compile, on their own."""
    return jax.jit(functools.partial(function, agent, mdp=mdp.value, first_step_only=first_step_only))


def true_gradient(agent: Agent, agent_state: AgentState, mdp: TabularMDP, *,
                  first_step_only: bool = False) -> jax.Array:
    """(P,) the exact policy gradient g* = ∇_θ J w.r.t. the policy network, flattened.

    With ``first_step_only``: only the t = 0 term of the policy-gradient theorem,
    Σ_s d_0(s) Σ_a ∇π(a|s) Q_0(s, a) (docs/oracle.md).
    """
    return _compiled(_true_gradient, agent, _Identity(mdp), bool(first_step_only))(agent_state)


def _true_gradient(agent, agent_state, *, mdp, first_step_only):
    params, epsilon = agent_state.policy_params, agent.config.epsilon
    if first_step_only:
        q = oracle.q_values(mdp, agent.policy_table(params, mdp))
        gradient = oracle.estimator_gradient(mdp, agent.policy.logits, q, params=params, epsilon=epsilon,
                                             first_step_only=True)
    else:
        gradient = oracle.policy_gradient(mdp, agent.policy.logits, params, epsilon=epsilon)
    return ravel_pytree(gradient)[0]


def expected_gradient(agent: Agent, agent_state: AgentState, mdp: TabularMDP, *,
                      first_step_only: bool = False) -> jax.Array:
    """(P,) the estimator's exact expected gradient ḡ, from its ``expected_credit`` (docs/index.md)."""
    return _compiled(_expected_gradient, agent, _Identity(mdp), bool(first_step_only))(agent_state)


def _expected_gradient(agent, agent_state, *, mdp, first_step_only):
    params = agent_state.policy_params
    credit = agent.estimator.expected_credit(model_params_for(agent, agent_state), mdp,
                                             agent.policy_table(params, mdp))
    gradient = oracle.estimator_gradient(mdp, agent.policy.logits, credit, params=params,
                                         epsilon=agent.config.epsilon, first_step_only=first_step_only)
    return ravel_pytree(gradient)[0]
