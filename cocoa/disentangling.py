"""Does a hindsight estimator keep the contexts of task interleaving apart? The context credit matrix.

Meulemans et al., NeurIPS 2023 (arXiv 2306.16803), task interleaving: a context's query decision
should get credit only for that context's later answer reward. For a COCOA-family estimator with
contribution coefficients w(s, a, u), entry (i, j) of the matrix is the mean of |w(S_t, A_t, U_k) - 1|
over pairs of a query step t of context i and a later rewarded answer step k > t of context j, in
episodes of the agent's behaviour policy: how far the estimator moves the query's credit away from
"this reward had nothing to do with it" (w = 1). Near-diagonal means disentangled.
"""

from __future__ import annotations

import jax
import numpy as np

from cocoa.agents.agent import Agent, AgentState
from cocoa.agents.hindsight_estimator import HindsightEstimator
from cocoa.envs.task_interleaving import TaskInterleaving
from cocoa.rollout import rollout


def context_credit_matrix(env: TaskInterleaving, agent: Agent, state: AgentState, *, episodes: int = 2000,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(C, C) mean |w - 1| from query steps of context i (rows) to rewarded answers of context j
    (columns), and (C, C) the number of such pairs, over ``episodes`` of the behaviour policy.

    The coefficients are the agent's own: the learned network, or the oracle's (time-indexed) for a
    ``-gt`` agent. ``state`` is one seed's agent state.
    """
    if not isinstance(env, TaskInterleaving):
        raise TypeError(f"the context credit matrix is defined on TaskInterleaving-v0; got {type(env).__name__}")
    if isinstance(episodes, (bool, np.bool_)) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer; got {episodes!r}")
    estimator = agent.estimator
    if not isinstance(estimator, HindsightEstimator) or not hasattr(estimator, "reward_values"):
        raise ValueError(f"{agent.name!r} has no reward-valued contribution coefficients; the matrix is for "
                         "COCOA-reward (learned or -gt)")
    mdp = env.tabular_mdp()
    policy = agent.policy_table(state.policy_params, mdp)
    hindsight_map, _ = estimator.object_map(state.model_params, mdp)
    if estimator.exact:
        coefficients = np.asarray(estimator.exact_model(policy)["coefficients"])  # (H, S, A, U)
    else:
        coefficients = np.asarray(estimator.learned_coefficients(state.model_params, mdp, policy))[None]  # (1, S, A, U)
    trajectory = jax.device_get(jax.jit(lambda key: rollout(env, agent.behaviour_probs, state.policy_params, key,
                                                            batch_size=episodes, horizon=mdp.horizon))(
        jax.random.PRNGKey(seed)))

    states, actions = np.asarray(trajectory.state_index), np.asarray(trajectory.actions)
    rewards, real = np.asarray(trajectory.rewards), np.asarray(trajectory.mask) > 0
    query, answer = np.asarray(trajectory.info["query"]) & real, np.asarray(trajectory.info["answer"]) & real
    context_of = np.append(env._states[:, 1], -1)  # the context of every tabular state (-1: terminal)
    value_class = np.abs(rewards[..., None] - np.asarray(mdp.reward_values)).argmin(-1)  # (B, T) reward slot
    object_class = np.asarray(hindsight_map)[states, actions, value_class]  # (B, T) U_k's class
    # Every (episode b, query step t, later rewarded answer step k > t) triple at once.
    later = np.triu(np.ones((rewards.shape[1],) * 2, bool), k=1)  # (T, T): k > t
    b, t, k = np.nonzero(query[:, :, None] & (answer & (rewards > 0))[:, None, :] & later)
    time = np.minimum(t, coefficients.shape[0] - 1)
    w = coefficients[time, states[b, t], actions[b, t], object_class[b, k]]
    total = np.zeros((env.contexts, env.contexts))
    count = np.zeros((env.contexts, env.contexts), np.int64)
    np.add.at(total, (context_of[states[b, t]], context_of[states[b, k]]), np.abs(w - 1.0))
    np.add.at(count, (context_of[states[b, t]], context_of[states[b, k]]), 1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), count
