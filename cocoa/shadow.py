"""Shadow measurement: gradient quality of other estimators along one agent's training.

Shadow agents share the main agent's policy and train only their models on its batches
(``cocoa.train.train(shadows=...)``); at each evaluation ``shadow_quality`` measures every shadow's
estimator at the main agent's current policy against the oracle.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import numpy as np

from cocoa import metrics
from cocoa.agents.agent import Agent, AgentState
from cocoa.envs.base import Environment
from cocoa.policy_gradients import expected_gradient, per_trajectory_gradients, true_gradient
from cocoa.rollout import rollout


@functools.lru_cache(maxsize=16)
def _sampler(env: Environment, agent: Agent, samples: int, horizon: int):
    return jax.jit(functools.partial(rollout, env, agent.behaviour_probs, batch_size=samples, horizon=horizon))


def shadow_quality(env: Environment, agent: Agent, shadows: Sequence[Agent], update: int, agent_states: AgentState,
                   shadow_states: tuple, *, samples: int = 256, seed: int = 0,
                   first_step_only: bool = False) -> list[dict]:
    """Bias, variance, SNR and cosine of every shadow estimator at the main agent's current policy.

    One record per (seed, shadow): ``samples`` trajectories of the behaviour policy give the
    per-trajectory estimates; the oracle gives the true gradient and each shadow's exact expected
    gradient under its current model (``cocoa.metrics.gradient_quality``). States carry a leading
    seed axis, as ``cocoa.train.train`` passes them to ``on_shadows``. ``first_step_only`` keeps
    only the t = 0 term of every gradient (the key decision, as the COCOA paper's key-to-door figures).
    """
    if not env.is_tabular:
        raise ValueError(f"{env.name} has no tabular form; shadow measurements need the oracle's exact gradient")
    if not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2 (a variance needs two); got {samples!r}")
    if len(shadows) != len(shadow_states):
        raise ValueError(f"got {len(shadows)} shadows but {len(shadow_states)} shadow states")
    mdp = env.tabular_mdp()
    sample = _sampler(env, agent, int(samples), mdp.horizon)
    records = []
    for index in range(jax.tree.leaves(agent_states.policy_params)[0].shape[0]):
        pick = lambda tree: jax.tree.map(lambda x: x[index], tree)
        policy_params = pick(agent_states.policy_params)
        reference = AgentState(policy_params, policy_opt_state=None, model_params={}, model_opt_state=None)
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), update), index)
        trajectories = sample(policy_params, key)
        g_star = true_gradient(agent, reference, mdp, first_step_only=first_step_only)
        for shadow, states in zip(shadows, shadow_states):
            state = dataclasses.replace(pick(states), policy_params=policy_params)
            gradients = per_trajectory_gradients(shadow, state, trajectories, first_step_only=first_step_only)
            quality = metrics.gradient_quality(gradients, g_star,
                                               expected_gradient(shadow, state, mdp, first_step_only=first_step_only))
            records.append({"update": update, "seed": index, "agent": shadow.name,
                            "first_step_only": bool(first_step_only), **{k: float(v) for k, v in quality.items()}})
    return records
