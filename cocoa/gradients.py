"""Gradient-quality analysis: each estimator's bias, variance and SNR at a fixed policy.

At one policy (an MLP initialised from a seed, or trained with REINFORCE), every agent's model is
trained at that policy (the training step with the policy held fixed), then its per-trajectory
gradient estimates are compared with the exact gradient and the estimator's exact expectation
(``cocoa.policy_gradients``, ``cocoa.metrics``; docs/gradients.md). Where the MDP's trajectory
space is small, every trajectory is enumerated with its probability (``cocoa.enumeration``), so
the variance is exact too; otherwise trajectories are sampled.

Used by ``cocoa gradients``, which writes the report with ``cocoa.gradient_report``.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from cocoa import agents, envs, metrics, oracle
from cocoa.agents.agent import Agent, AgentState
from cocoa.enumeration import count_trajectories, enumerate_trajectories
from cocoa.envs.base import Environment
from cocoa.policy_gradients import expected_gradient, per_trajectory_gradients, true_gradient
from cocoa.rollout import rollout
from cocoa.train import TrainConfig, make_model_training, make_prepare

DEFAULT_MAX_ENUMERATED = 20_000
# The shared policy's network: every agent uses the AgentConfig defaults.
_POLICY_AGENT = "reinforce"


def train_models(agent: Agent, agent_state: AgentState, env: Environment, updates: int, batch_size: int,
                 key, *, horizon: int | None = None) -> tuple[AgentState, jax.Array]:
    """Trains only the estimator's model, ``updates`` steps on rollouts of the fixed behaviour policy.

    The training step with the policy step left out (``cocoa.train.make_model_training``): each
    step rolls out ``batch_size`` episodes and takes one model step (``Agent.model_update``).
    The policy is not changed.
    Exact (``-gt``) estimators get the oracle's model at the policy instead; estimators
    without a model are returned as they are.

    Returns:
      the new agent state and the model losses (updates,) (empty when nothing was trained).
    """
    if not isinstance(updates, (int, np.integer)) or updates < 0:
        raise ValueError(f"updates must be a non-negative integer; got {updates!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    no_losses = jnp.zeros((0,))
    if agent.estimator.exact:
        return dataclasses.replace(agent_state, model_params=agent.exact_model(agent_state.policy_params)), no_losses
    if updates == 0 or not jax.tree.leaves(agent_state.model_params):
        return agent_state, no_losses
    horizon = horizon or env.max_episode_steps
    if horizon is None:
        raise ValueError(f"{env.name} has no max_episode_steps; pass horizon=")
    config = TrainConfig(updates=int(updates), batch_size=int(batch_size), horizon=int(horizon))
    return _model_training(env, agent, config)(agent_state, key)


_model_training = functools.lru_cache(maxsize=32)(make_model_training)  # compiled once per (env, agent, config)


def parse_policy(policy: str) -> int:
    """REINFORCE updates of a policy spec: ``"init"`` -> 0, ``"trained:N"`` -> N."""
    if policy == "init":
        return 0
    prefix, _, count = str(policy).partition(":")
    if prefix == "trained" and count.isdigit() and int(count) > 0:
        return int(count)
    raise ValueError(f"policy must be 'init' or 'trained:N' with N a positive number of REINFORCE updates; "
                     f"got {policy!r}")


def shared_policy_params(env: Environment, policy: str, seed: int, *, horizon: int | None = None,
                         progress: bool = False):
    """The policy every agent is analysed at: the MLP initialised with ``seed``, or trained with REINFORCE.

    ``"trained:N"`` runs ``cocoa.train.train`` for N updates (batch 8, episodes of ``horizon`` steps,
    default the environment's ``max_episode_steps``) from seed ``seed``.
    """
    from cocoa.train import train

    updates = parse_policy(policy)
    agent = agents.make_for_env(_POLICY_AGENT, env)
    if updates == 0:
        return agent.policy.init(jax.random.PRNGKey(seed), env.observation_shape)
    config = TrainConfig(updates=updates, seed=seed, eval_interval=updates, horizon=horizon)
    result = train(env, agent, config, progress=progress)
    return jax.tree.map(lambda x: x[0], result.final_state.policy_params)


def _agent_key(key, name: str):
    """A key per agent that does not depend on the other agents analysed."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()))


def analyse(env: Environment | str, agent_names: Sequence[str], *, env_params: dict | None = None,
            policy: str = "init", samples: int = 1000, model_updates: int = 200, model_batch_size: int = 8,
            seed: int = 0, first_step_only: bool = False, exact_if_possible: bool = True,
            max_enumerated: int = DEFAULT_MAX_ENUMERATED, batch_size: int = 1,
            progress: bool = False) -> list[dict]:
    """Bias, variance, SNR and cosine of each agent's gradient estimator at one shared policy.

    Args:
      env: a tabular environment, its name (built with ``env_params``; ``gymnasium:<id>`` too), or
        anything else ``envs.as_environment`` takes (a ``TabularMDP``, a Gymnasium env with a ``P`` table).
      agent_names: registered agent names (``cocoa.agents.names()``).
      env_params: the environment's parameters (recorded; used to build it from a name).
      policy: ``"init"`` (the MLP policy initialised with ``seed``) or ``"trained:N"`` (N REINFORCE
        updates with ``cocoa.train.train``). All agents share it (AgentConfig's default network).
      samples: trajectories sampled when the trajectory space is not enumerated.
      model_updates: model-only training steps of each agent at the policy (``train_models``).
      model_batch_size: episodes per model step.
      seed: seeds the policy, the samples and each agent's model.
      first_step_only: keep only the t = 0 term of every gradient (docs/oracle.md).
      exact_if_possible: enumerate every trajectory when there are at most ``max_enumerated``; the
        variance is then exact (``exact_variance``), else sampled.
      max_enumerated: the enumeration limit.
      batch_size: episodes per gradient estimate (divides the variance; ``cocoa.metrics``).
      progress: show progress bars.

    Returns:
      one record per agent: env, env_params, agent, policy, the metrics of
      ``cocoa.metrics.gradient_quality`` (bias, variance, snr, cosine, their ``_db`` versions,
      mean_gap), samples (trajectories used), exact_variance, first_step_only and the settings.
    """
    env_params = dict(env_params or {})
    env = envs.make(env, **env_params) if isinstance(env, str) else envs.as_environment(env)
    if not env.is_tabular:
        raise ValueError(f"{env.name} has no tabular form; the gradient analysis needs the exact gradient "
                         "from the oracle")
    names = list(agent_names)
    if not names:
        raise ValueError("no agents given; known agents: " + ", ".join(agents.names()))
    for name in names:
        agents.is_exact(name)  # unknown names: the registry's error, listing the known agents
    parse_policy(policy)
    for option, value, smallest in (("samples", samples, 1), ("model_updates", model_updates, 0),
                                    ("model_batch_size", model_batch_size, 1), ("batch_size", batch_size, 1),
                                    ("max_enumerated", max_enumerated, 1)):
        if not isinstance(value, (int, np.integer)) or value < smallest:
            raise ValueError(f"{option} must be an integer >= {smallest}; got {value!r}")

    mdp = env.tabular_mdp()
    sample_key, agents_key = jax.random.split(jax.random.PRNGKey(seed))
    policy_params = shared_policy_params(env, policy, seed, horizon=mdp.horizon, progress=progress)
    reference = agents.make_for_env(_POLICY_AGENT, env)  # the shared policy network, no model
    reference_state = AgentState(policy_params, policy_opt_state=None, model_params={}, model_opt_state=None)
    probs = reference.policy_table(policy_params, mdp)
    trajectories, weights, exact = _trajectories(env, mdp, reference, policy_params, probs, sample_key,
                                                 samples, exact_if_possible, max_enumerated)
    g_star = true_gradient(reference, reference_state, mdp, first_step_only=first_step_only)
    if not float(jnp.sum(jnp.square(g_star))) > 0.0:
        raise ValueError(f"the exact gradient is zero at policy {policy!r} (seed {seed}) on {env.name}: bias, "
                         "variance and SNR are relative to it and undefined; try another policy or seed")
    shared = {
        "env": env.name, "env_params": env_params, "policy": policy, "seed": seed,
        "first_step_only": bool(first_step_only), "exact_variance": exact,
        "samples": int(trajectories.batch_size), "batch_size": batch_size, "model_updates": model_updates,
        "expected_return": float(oracle.expected_return(mdp, probs)),
        "true_gradient_norm": float(jnp.linalg.norm(g_star)),
    }

    records = []
    for name in tqdm(names, disable=not progress, desc="gradient quality", unit="agent"):
        agent = agents.make_for_env(name, env)
        key = _agent_key(agents_key, name)
        init_key, train_key = jax.random.split(key)
        state = dataclasses.replace(agent.init(init_key, env.observation_shape), policy_params=policy_params)
        if agent.prepare_episodes:  # the one-off fit (COCOA-feature's features) on episodes of this policy
            prepare = jax.jit(make_prepare(env, agent, horizon=mdp.horizon))
            state, _ = prepare((state, ()), jax.random.fold_in(init_key, 1))
        state, losses = train_models(agent, state, env, model_updates, model_batch_size, train_key,
                                     horizon=mdp.horizon)
        gradients = per_trajectory_gradients(agent, state, trajectories, first_step_only=first_step_only)
        g_bar = expected_gradient(agent, state, mdp, first_step_only=first_step_only)
        quality = metrics.gradient_quality(gradients, g_star, g_bar, weights, batch_size)
        records.append({**shared, "agent": name,
                        **{k: float(v) for k, v in quality.items()},
                        "model_loss": float(losses[-1]) if losses.size else None})
    return records


def _trajectories(env, mdp, agent, policy_params, probs, key, samples, exact_if_possible, max_enumerated):
    """(trajectories, weights or None, exact?): every trajectory when few enough, else ``samples`` rollouts."""
    if exact_if_possible and count_trajectories(mdp, probs) <= max_enumerated:
        trajectories, probabilities = enumerate_trajectories(mdp, probs, max_trajectories=max_enumerated)
        return trajectories, jnp.asarray(probabilities), True
    sample = jax.jit(functools.partial(rollout, env, agent.behaviour_probs, batch_size=int(samples),
                                       horizon=mdp.horizon))
    return sample(policy_params, key), None, False
