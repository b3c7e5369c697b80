"""Gradient-quality analysis: each estimator's bias, variance and SNR at a fixed policy.

At one policy (an MLP initialised from a seed, or trained with REINFORCE), every agent's model is
trained at that policy, then its per-trajectory gradient estimates g_i (w.r.t. the policy
network's parameters) are compared with the exact gradient g* and the estimator's exact
expectation ḡ from the oracle (docs/oracle.md, docs/gradients.md, ``cocoa.metrics``). Where the MDP's
trajectory space is small, every trajectory is enumerated with its probability
(``cocoa.enumeration``), so the variance is exact too; otherwise trajectories are sampled.

Used by ``cocoa gradients`` (which also writes the report: ``write_report``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import zlib
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from cocoa import agents, envs, metrics, oracle
from cocoa.agents.agent import Agent, AgentState
from cocoa.enumeration import count_trajectories, enumerate_trajectories
from cocoa.envs.base import Environment
from cocoa.rollout import rollout
from cocoa.types import TabularMDP, Trajectory

REPORT_FILE = "report.md"
PLOT_FILE = "gradients.png"
RECORDS_FILE = "gradients.json"
DEFAULT_MAX_ENUMERATED = 20_000
# Bars below this are drawn at it, hatched: float32 rounding alone gives relative errors ~1e-12.
PLOT_FLOOR_DB = -60.0
_CHUNK_SIZE = 1024
# The shared policy's network: every agent uses the AgentConfig defaults.
_POLICY_AGENT = "reinforce"


# --- per-trajectory and exact gradients -----------------------------------------------------------

def model_params_for(agent: Agent, agent_state: AgentState) -> Any:
    """The estimator's model at the agent's policy: the oracle's tables for ``-gt`` estimators."""
    if agent.estimator.exact:
        return agent.exact_model(agent_state.policy_params)
    return agent_state.model_params


def policy_table(agent: Agent, policy_params, mdp: TabularMDP) -> jax.Array:
    """(S, A) the agent's behaviour policy (epsilon-mixed) in every state of ``mdp``."""
    return agent.behaviour_probs(policy_params, jnp.asarray(mdp.observations, jnp.float32))


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


def true_gradient(agent: Agent, agent_state: AgentState, mdp: TabularMDP, *,
                  first_step_only: bool = False) -> jax.Array:
    """(P,) the exact policy gradient g* = ∇_θ J w.r.t. the policy network, flattened.

    With ``first_step_only``: only the t = 0 term of the policy-gradient theorem,
    Σ_s d_0(s) Σ_a ∇π(a|s) Q_0(s, a) (docs/oracle.md).
    """
    params, epsilon = agent_state.policy_params, agent.config.epsilon
    if first_step_only:
        q = oracle.q_values(mdp, policy_table(agent, params, mdp))
        gradient = oracle.estimator_gradient(mdp, agent.policy.logits, q, params=params, epsilon=epsilon,
                                             first_step_only=True)
    else:
        gradient = oracle.policy_gradient(mdp, agent.policy.logits, params, epsilon=epsilon)
    return ravel_pytree(gradient)[0]


def expected_gradient(agent: Agent, agent_state: AgentState, mdp: TabularMDP, *,
                      first_step_only: bool = False) -> jax.Array:
    """(P,) the estimator's exact expected gradient ḡ, from its ``expected_credit`` (docs/index.md)."""
    params = agent_state.policy_params
    credit = agent.estimator.expected_credit(model_params_for(agent, agent_state), mdp,
                                             policy_table(agent, params, mdp))
    gradient = oracle.estimator_gradient(mdp, agent.policy.logits, credit, params=params,
                                         epsilon=agent.config.epsilon, first_step_only=first_step_only)
    return ravel_pytree(gradient)[0]


# --- model training at a fixed policy -------------------------------------------------------------

def train_models(agent: Agent, agent_state: AgentState, env: Environment, updates: int, batch_size: int,
                 key, *, horizon: int | None = None) -> tuple[AgentState, jax.Array]:
    """Trains only the estimator's model, ``updates`` steps on rollouts of the fixed behaviour policy.

    One compiled ``lax.scan``; each step rolls out ``batch_size`` episodes and takes one
    ``agent.model_optimizer`` step on ``agent.estimator.model_loss`` followed by the estimator's
    ``after_update`` hook, as in ``Agent.update``. The policy is not changed.
    Ground-truth (``-gt``) estimators get the oracle's model at the policy instead; estimators
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
    return _model_training_fn(agent, env, int(updates), int(batch_size), int(horizon))(agent_state, key)


def _model_training_fn(agent: Agent, env: Environment, updates: int, batch_size: int, horizon: int):
    def train(agent_state, key):
        def step(state, step_key):
            trajectory = rollout(env, agent.behaviour_probs, state.policy_params, step_key, batch_size=batch_size,
                                 horizon=horizon)
            return agent.model_update(state, trajectory)

        return jax.lax.scan(step, agent_state, jax.random.split(key, updates))

    return jax.jit(train)


# --- the analysis ---------------------------------------------------------------------------------

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
    from cocoa.train import TrainConfig, train

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
      env: a tabular environment, or its name (built with ``env_params``).
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
    if isinstance(env, str):
        env = envs.make(env, **env_params)
    if not isinstance(env, Environment):
        raise TypeError(f"env must be a cocoa.envs.Environment or an environment name; got {type(env).__name__}")
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
    probs = policy_table(reference, policy_params, mdp)
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


# --- the report -----------------------------------------------------------------------------------

_COLUMNS = [("bias", "bias", "{:.3g}"), ("variance", "variance", "{:.3g}"), ("snr", "SNR", "{:.3g}"),
            ("cosine", "cosine", "{:.4f}"), ("bias_db", "bias dB", "{:.1f}"),
            ("variance_db", "variance dB", "{:.1f}"), ("snr_db", "SNR dB", "{:.1f}")]
_PLOTTED = [("bias_db", "bias"), ("variance_db", "variance"), ("snr_db", "SNR")]


def _group_key(record: dict) -> tuple:
    return (record["env"], json.dumps(record["env_params"], sort_keys=True), record["policy"],
            record["first_step_only"], record.get("batch_size", 1))


def _group_title(record: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(record["env_params"].items()))
    title = f"{record['env']}" + (f" ({params})" if params else "") + f", policy {record['policy']}"
    if record["first_step_only"]:
        title += ", first step only"
    if record.get("batch_size", 1) != 1:
        title += f", batch {record['batch_size']}"
    return title


def _groups(records: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(_group_key(record), []).append(record)
    return list(groups.values())


def _cell(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "−∞" if value < 0 else "∞"
    return pattern.format(value)


def markdown_tables(records: list[dict]) -> str:
    """One markdown table per (env, env params, policy): agent, the metrics (also in dB), samples, exact?."""
    header = ["agent", *(title for _, title, _ in _COLUMNS), "samples", "exact?"]
    lines = []
    for group in _groups(records):
        first = group[0]
        lines += [f"## {_group_title(first)}", "",
                  f"J = {first['expected_return']:.4g}, ‖g*‖ = {first['true_gradient_norm']:.4g}; seed "
                  f"{first['seed']}; models trained {first['model_updates']} updates at this policy.", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for record in group:
            cells = [_cell(record[key], pattern) for key, _, pattern in _COLUMNS]
            exact = "yes (enumerated)" if record["exact_variance"] else "no (sampled)"
            lines.append("| " + " | ".join([record["agent"], *cells, str(record["samples"]), exact]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(records: list[dict], path: str | Path):
    """Grouped bar chart of bias, variance and SNR in dB per agent (one panel per env and policy).

    Values below ``PLOT_FLOOR_DB`` (an unbiased estimator's bias is ~-130 dB of float rounding, or
    -inf) are drawn at the floor, hatched.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups = _groups(records)
    figure, axes = plt.subplots(len(groups), 1, figsize=(max(6.0, 1.2 * max(map(len, groups)) + 2), 4.5 * len(groups)),
                                squeeze=False)
    width = 0.8 / len(_PLOTTED)
    for axis, group in zip(axes[:, 0], groups):
        positions = np.arange(len(group))
        for index, (key, _) in enumerate(_PLOTTED):
            values = np.array([record[key] if record[key] is not None else np.nan for record in group], float)
            floored = values < PLOT_FLOOR_DB  # includes -inf (exactly zero)
            values[floored] = PLOT_FLOOR_DB
            bars = axis.bar(positions + (index - (len(_PLOTTED) - 1) / 2) * width, values, width,
                            color=f"C{index}")
            for bar, below in zip(bars, floored):
                if below:
                    bar.set_hatch("//")
        axis.axhline(0.0, color="black", linewidth=0.6)
        axis.set_xticks(positions, [record["agent"] for record in group], rotation=20, ha="right")
        axis.set_ylabel("dB")
        axis.set_title(_group_title(group[0]) + f"\nhatched: below {PLOT_FLOOR_DB:.0f} dB (zero up to rounding)",
                       fontsize=9)
        axis.grid(axis="y", alpha=0.3)
        handles = [Patch(color=f"C{index}", label=label) for index, (_, label) in enumerate(_PLOTTED)]
        axis.legend(handles=handles, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(records: list[dict], out_dir: str | Path, *, command: str | None = None) -> Path:
    """Writes ``report.md``, ``gradients.png`` and ``gradients.json`` into ``out_dir``; returns report.md.

    In the JSON, non-finite numbers (−∞ dB for an exactly zero bias) are written as null.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = [{k: _json_value(v) for k, v in record.items()} for record in records]
    (out_dir / RECORDS_FILE).write_text(json.dumps(clean, indent=2) + "\n")
    plot(records, out_dir / PLOT_FILE)
    text = ["# cocoa gradient quality", ""]
    if command:
        text += [f"Made with `{command}`.", ""]
    text += ["Against the exact gradient g* of the oracle (docs/gradients.md): bias = ‖g* − ḡ‖² / ‖g*‖² with ḡ "
             "the estimator's exact expected gradient; variance = E‖g − ḡ‖² / ‖g*‖²; SNR = ‖g*‖² / E‖g − g*‖²; "
             "cosine(ḡ, g*). dB = 10·log10. `exact?`: every trajectory enumerated with its probability "
             "(no sampling error), or sampled.", "",
             markdown_tables(records), f"![gradient quality]({PLOT_FILE})", "",
             f"Records: `{RECORDS_FILE}`.", ""]
    report = out_dir / REPORT_FILE
    report.write_text("\n".join(text))
    return report


# --- shadow training ------------------------------------------------------------------------------

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


def plot_shadow_curves(records: list[dict], path: str | Path):
    """Bias, variance and SNR (dB, mean over seeds) of each shadow estimator against the update."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["agent"] for r in records))
    figure, axes = plt.subplots(1, len(_PLOTTED), figsize=(5 * len(_PLOTTED), 3.8), squeeze=False)
    for axis, (key, title) in zip(axes[0], _PLOTTED):
        for name in names:
            updates = sorted({r["update"] for r in records if r["agent"] == name})
            means = [np.mean([np.clip(r[key], -150, None) for r in records
                              if r["agent"] == name and r["update"] == u]) for u in updates]
            axis.plot(updates, means, marker="o", markersize=3, label=name)
        axis.set_xlabel("update")
        axis.set_title(f"{title} (dB)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
