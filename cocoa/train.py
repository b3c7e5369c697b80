"""The training loop, PureJaxRL-style: one compiled call runs many whole updates for many seeds.

An *update* rolls out ``batch_size`` episodes with ``lax.scan`` over time, computes the credit
matrix, and takes one policy step and one model step (``Agent.update``). ``make_train`` is the pure
core: one seed's whole training as one function, to ``jit`` and ``vmap``. ``train`` drives the same
pieces (``make_init`` and a *segment*: ``lax.scan`` over ``eval_interval`` updates, ``vmap``-ed over
seeds and compiled once); Python only loops over segments, to evaluate, check for NaN / inf,
report progress and hand rows to a callback.
Seed ``i`` uses ``fold_in(PRNGKey(seed), i)``, so its results do not depend on how many seeds run.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from cocoa import oracle
from cocoa.agents.agent import Agent, AgentState
from cocoa.envs.base import Environment
from cocoa.envs.gymnasium_source import GymnasiumHostEnv
from cocoa.envs.registry import as_environment
from cocoa.host_rollout import HostCollector
from cocoa.rollout import episode_returns, rollout


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how wide to train, and how to evaluate."""

    updates: int = 2000
    batch_size: int = 8
    seeds: int = 1
    seed: int = 0
    eval_interval: int = 100
    eval_episodes: int = 64
    horizon: Optional[int] = None  # default: the environment's max_episode_steps
    # Run the policy once per tabular state instead of once per step: None = when the environment is
    # tabular with at most batch_size * horizon states (exact either way; ``rollout(per_state=...)``).
    policy_per_state: Optional[bool] = None

    def __post_init__(self):
        for name in ("updates", "batch_size", "seeds", "eval_interval", "eval_episodes"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.horizon is not None and (not isinstance(self.horizon, (int, np.integer)) or self.horizon < 1):
            raise ValueError(f"horizon must be a positive integer or None; got {self.horizon!r}")


@dataclasses.dataclass
class TrainResult:
    """Evaluation rows (one per evaluation and seed), the final agent states and timings."""

    rows: list[dict]
    final_state: AgentState  # leading axis: seed
    final_shadow_states: tuple  # one AgentState per shadow, leading axis: seed
    compile_seconds: float
    train_seconds: float
    env_steps: int

    @property
    def env_steps_per_second(self) -> float:
        return self.env_steps / max(self.train_seconds, 1e-9)

    def final_means(self) -> dict:
        """Mean over seeds of the metrics at the last evaluation."""
        last = max(row["update"] for row in self.rows)
        final = [row for row in self.rows if row["update"] == last]
        keys = [k for k in final[0] if k not in ("update", "seed", "episodes")]
        return {k: float(np.mean([row[k] for row in final])) for k in keys}


class NonFiniteError(FloatingPointError):
    """Training produced NaN or inf."""


def _horizon(env: Environment, config: TrainConfig) -> int:
    horizon = config.horizon or env.max_episode_steps
    if horizon is None:
        raise ValueError(f"{env.name} has no max_episode_steps; pass TrainConfig(horizon=...)")
    return int(horizon)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _check_inputs(env, agent, config, shadows=(), host_ok=False):
    """Clear errors for what every entry point of the training core takes, before any tracing."""
    if isinstance(env, GymnasiumHostEnv) and not host_ok:
        raise TypeError(f"{env.name} runs on the host (it does not jit), so it has no pure training function; "
                        "train it with cocoa.train.train")
    if not isinstance(env, (Environment, GymnasiumHostEnv)):
        raise TypeError(f"env must be a cocoa.envs.Environment; got {type(env).__name__}")
    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be a cocoa.agents.Agent; got {type(agent).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a cocoa.train.TrainConfig; got {type(config).__name__}")
    for candidate in (agent, *shadows):
        if candidate.num_actions != env.num_actions:
            raise ValueError(f"agent {candidate.name!r} was built for {candidate.num_actions} actions but {env.name} "
                             f"has {env.num_actions}; build it with agents.make_for_env(name, env)")


def make_prepare(env: Environment, agent: Agent, shadows: Sequence[Agent] = (), horizon: int | None = None) -> Callable:
    """((agent_state, shadow_states), key) -> the same after each estimator's one-off fit
    (``Estimator.prepare``) on episodes of the agent's current policy; pure. Identity when no estimator has
    such a stage. Shadows fit on the very episodes the agent fits on."""
    episodes = max((candidate.prepare_episodes for candidate in (agent, *shadows)), default=0)
    if episodes and not isinstance(env, Environment):
        raise TypeError(f"{env.name} runs on the host: its episodes for the one-off fit come from make_host_prepare")

    def prepare(states, key):
        if not episodes:
            return states
        agent_state, shadow_states = states
        rollout_key, fit_key = jax.random.split(key)
        trajectory = rollout(env, agent.behaviour_probs, agent_state.policy_params, rollout_key,
                             batch_size=episodes, horizon=horizon or env.max_episode_steps)
        return _fit_all(agent, shadows, states, trajectory, fit_key)

    return prepare


def _fit_all(agent: Agent, shadows: Sequence[Agent], states, trajectory, key):
    agent_state, shadow_states = states
    keys = jax.random.split(key, len(shadows) + 1)
    return (agent.prepare(agent_state, trajectory, keys[0]),
            tuple(shadow.prepare(state, trajectory, shadow_key)
                  for shadow, state, shadow_key in zip(shadows, shadow_states, keys[1:])))


def make_init(env: Environment, agent: Agent, shadows: Sequence[Agent] = (), horizon: int | None = None) -> Callable:
    """init_key -> (agent_state, shadow_states) of one seed; pure. Shadows start from the agent's policy.
    Estimators with a one-off fit (``Estimator.prepare``) take it here, on episodes of that initial policy;
    on a host environment ``make_host_prepare`` does it after init."""
    prepare = make_prepare(env, agent, shadows, horizon) if isinstance(env, Environment) else None

    def init(init_key):
        agent_state = agent.init(init_key, env.observation_shape)
        shadow_states = tuple(
            dataclasses.replace(shadow.init(jax.random.fold_in(init_key, index + 1), env.observation_shape),
                                policy_params=agent_state.policy_params)
            for index, shadow in enumerate(shadows))
        states = (agent_state, shadow_states)
        return states if prepare is None else prepare(states, jax.random.fold_in(init_key, len(shadows) + 1))

    return init


def _make_learn(agent: Agent, shadows: Sequence[Agent], learn_policy: bool = True) -> Callable:
    """(states, trajectory, rollout_key) -> (states, metrics): what one update does with its batch.

    Shadow agents train only their models, on the very batches the main agent collects and learns from.
    With ``learn_policy=False`` the agent too takes only its model step (model training at a fixed policy).
    """

    def learn(states, trajectory, rollout_key):
        agent_state, shadow_states = states
        if learn_policy:
            # The update's own stream (the model batch's resampling) leaves the rollout's keys as they were.
            agent_state, metrics = agent.update(agent_state, trajectory, key=jax.random.fold_in(rollout_key, 1))
        else:
            agent_state, model_loss = agent.model_update(agent_state, trajectory)
            metrics = {"model_loss": model_loss}
        shadow_states = tuple(shadow.model_update(state, trajectory)[0] for shadow, state in zip(shadows, shadow_states))
        metrics["train_return"] = jnp.mean(episode_returns(trajectory))
        metrics["env_steps"] = jnp.sum(trajectory.mask)
        return (agent_state, shadow_states), metrics

    return learn


def _make_update(env: Environment, agent: Agent, config: TrainConfig, shadows: Sequence[Agent],
                 learn_policy: bool = True) -> Callable:
    """((states, key), None) -> ((states, key), metrics): one update of one seed, the body of every scan."""
    horizon = _horizon(env, config)
    learn = _make_learn(agent, shadows, learn_policy)

    def one_update(carry, _):
        states, key = carry
        key, rollout_key = jax.random.split(key)
        trajectory = rollout(env, agent.behaviour_probs, states[0].policy_params, rollout_key,
                             batch_size=config.batch_size, horizon=horizon, per_state=config.policy_per_state)
        states, metrics = learn(states, trajectory, rollout_key)
        return (states, key), metrics

    return one_update


def _seed_keys(seed_key):
    """(init, run, evaluation) keys of one seed."""
    return jax.random.split(seed_key, 3)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _keys_of_seeds(seed: int, seeds: int):
    """(init, run, evaluation) keys, each (seeds, 2), of seeds 0 .. seeds - 1 of run ``seed``."""
    seed_keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(jnp.arange(seeds))
    keys = jax.vmap(_seed_keys)(seed_keys)
    return keys[:, 0], keys[:, 1], keys[:, 2]


_fold_in_each = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))


def make_train(env: Environment, agent: Agent, config: TrainConfig, shadows: Sequence[Agent] = ()) -> Callable:
    """seed_key -> ((agent_state, shadow_states), per-update metrics): ``config.updates`` updates of one seed.

    Pure and compiled as one program, PureJaxRL style: ``jax.jit(jax.vmap(make_train(...)))(keys)``
    trains many seeds at once. ``train`` below drives the same pieces in segments, to evaluate and
    report between them; the speed benchmark times this function.
    """
    _check_inputs(env, agent, config, shadows)
    init, one_update = make_init(env, agent, shadows, _horizon(env, config)), _make_update(env, agent, config, shadows)

    def train_one(seed_key):
        init_key, run_key, _ = _seed_keys(seed_key)
        (states, _), metrics = jax.lax.scan(one_update, (init(init_key), run_key), None, length=config.updates)
        return states, metrics

    return train_one


def make_model_training(env: Environment, agent: Agent, config: TrainConfig) -> Callable:
    """(agent_state, key) -> (agent_state, model losses (updates,)): ``config.updates`` model steps on
    fresh batches of the agent's fixed policy; the training step with the policy step left out. Jitted."""
    _check_inputs(env, agent, config)
    one_update = _make_update(env, agent, config, (), learn_policy=False)

    def train_model(agent_state, key):
        ((agent_state, _), _), metrics = jax.lax.scan(one_update, ((agent_state, ()), key), None,
                                                      length=config.updates)
        return agent_state, metrics["model_loss"]

    return jax.jit(train_model)


def _summarise(metrics: dict, states, shadows: Sequence[Agent]) -> tuple[dict, dict]:
    """Per-update metrics (updates, ...) of one seed -> (their means, which quantities stayed finite)."""
    agent_state, shadow_states = states
    finite = {name: _all_finite(value) for name, value in metrics.items()}
    finite["policy_params"] = _all_finite(agent_state.policy_params)
    finite["model_params"] = _all_finite(agent_state.model_params)
    for shadow, state in zip(shadows, shadow_states):
        finite[f"model_params of shadow {shadow.name}"] = _all_finite(state.model_params)
    summary = {name: jnp.mean(value) for name, value in metrics.items()}
    summary["env_steps"] = jnp.sum(metrics["env_steps"])
    return summary, finite


def make_segment(env: Environment, agent: Agent, config: TrainConfig, num_updates: int,
                 shadows: Sequence[Agent] = ()) -> Callable:
    """((agent_states, shadow_states), keys) -> (states, keys, summary, finite): ``num_updates`` updates per seed."""
    one_update = _make_update(env, agent, config, shadows)

    def segment(states, key):
        (states, key), metrics = jax.lax.scan(one_update, (states, key), None, length=num_updates)
        return (states, key, *_summarise(metrics, states, shadows))

    return jax.jit(jax.vmap(segment))


def make_host_segment(env: GymnasiumHostEnv, agent: Agent, config: TrainConfig) -> Callable:
    """(num_updates, states, keys) -> (states, keys, summary, finite), as ``make_segment``'s, for an
    environment collected on the host: each update collects one batch per seed (``HostCollector``) and
    runs the compiled, seed-vmapped update on it; the reward check runs on the host, before it."""
    collector = HostCollector(env, agent.behaviour_probs, seeds=config.seeds, episodes=config.batch_size,
                              seed=config.seed)
    learn = jax.jit(jax.vmap(_make_learn(agent, ())))
    split = jax.jit(jax.vmap(jax.random.split))
    summarise = jax.jit(jax.vmap(lambda metrics, states: _summarise(metrics, states, ())))

    def segment(num_updates, states, keys):
        history = []
        for _ in range(num_updates):
            keys, rollout_keys = jnp.swapaxes(split(keys), 0, 1)
            trajectory, _ = collector.collect(states[0].policy_params, rollout_keys)
            agent.estimator.check_rewards(np.asarray(trajectory.rewards)[np.asarray(trajectory.mask) > 0])
            states, metrics = learn(states, trajectory, rollout_keys)
            history.append(metrics)
        metrics = jax.tree.map(lambda *values: jnp.stack(values, axis=1), *history)  # (seeds, updates)
        return (states, keys, *summarise(metrics, states))

    return segment


def make_host_prepare(env: GymnasiumHostEnv, agent: Agent, config: TrainConfig) -> Callable:
    """(states, keys) -> states, ``make_prepare`` for an environment collected on the host: the episodes for
    the estimator's one-off fit are collected per seed on the host, the fit runs compiled and seed-vmapped."""
    if not agent.prepare_episodes:
        return lambda states, keys: states
    collector = HostCollector(env, agent.behaviour_probs, seeds=config.seeds, episodes=agent.prepare_episodes,
                              seed=config.seed + 2)
    fit = jax.jit(jax.vmap(lambda states, trajectory, key: _fit_all(agent, (), states, trajectory, key)))

    def prepare(states, keys):
        rollout_keys, fit_keys = jnp.swapaxes(jax.vmap(jax.random.split)(keys), 0, 1)
        trajectory, _ = collector.collect(states[0].policy_params, rollout_keys)
        agent.estimator.check_rewards(np.asarray(trajectory.rewards)[np.asarray(trajectory.mask) > 0])
        return fit(states, trajectory, fit_keys)

    return prepare


def make_evaluate(env: Environment, agent: Agent, config: TrainConfig) -> Callable:
    """(agent_states, keys) -> per-seed mean return and environment metrics of the epsilon-free policy,
    and on a tabular environment its exact expected return (``exact_return``, from the oracle)."""
    horizon = _horizon(env, config)
    mdp = env.tabular_mdp() if env.is_tabular else None

    def evaluate(agent_state, key):
        trajectory = rollout(env, agent.greedy_free_probs, agent_state.policy_params, key,
                             batch_size=config.eval_episodes, horizon=horizon)
        metrics = {"return": jnp.mean(episode_returns(trajectory))}
        for name, value in env.episode_metrics(trajectory.info, trajectory.mask).items():
            metrics[name] = jnp.mean(value)
        if mdp is not None:
            probs = agent.greedy_free_probs(agent_state.policy_params, jnp.asarray(mdp.observations, jnp.float32))
            metrics["exact_return"] = oracle.expected_return(mdp, probs)
        return metrics

    return jax.jit(jax.vmap(evaluate))


def make_host_evaluate(env: GymnasiumHostEnv, agent: Agent, config: TrainConfig) -> Callable:
    """``make_evaluate`` for an environment collected on the host (its own vector env and seed)."""
    collector = HostCollector(env, agent.greedy_free_probs, seeds=config.seeds, episodes=config.eval_episodes,
                              seed=config.seed + 1)

    def evaluate(agent_states, keys):
        trajectory, _ = collector.collect(agent_states.policy_params, keys)
        return {"return": jnp.mean(jnp.sum(trajectory.rewards * trajectory.mask, axis=-1), axis=-1)}

    return evaluate


def _check_env_changes(env, agent: Agent, shadows: Sequence[Agent], config: TrainConfig,
                       env_changes: dict) -> list[tuple[int, Environment]]:
    """[(first update, environment)] of each training phase, after checking that the changes fit ``env``."""
    if not isinstance(env_changes, dict):
        raise TypeError(f"env_changes must be a dict {{update: environment}}; got {type(env_changes).__name__}")
    phases = [(0, env)]
    for update in sorted(env_changes):
        changed = env_changes[update]
        if isinstance(update, (bool, np.bool_)) or not isinstance(update, (int, np.integer)) \
                or not 0 < update < config.updates:
            raise ValueError(f"env_changes: {update!r} must be an update in [1, {config.updates - 1}]")
        if not isinstance(changed, Environment) or type(changed) is not type(env):
            raise TypeError(f"env_changes[{update}] must be a {type(env).__name__} (a variant of the environment "
                            f"trained on); got {type(changed).__name__}")
        same = (jax.tree.structure(changed.default_params) == jax.tree.structure(env.default_params)
                and all(np.shape(a) == np.shape(b) for a, b in zip(jax.tree.leaves(changed.default_params),
                                                                    jax.tree.leaves(env.default_params)))
                and changed.observation_shape == env.observation_shape and changed.num_actions == env.num_actions
                and changed.max_episode_steps == env.max_episode_steps)
        if not same:
            raise ValueError(f"env_changes[{update}] ({changed!r}) must keep the shapes of {env!r}: the same "
                             "observations, actions, horizon and parameter shapes")
        phases.append((int(update), changed))
    if len(phases) > 1:
        for candidate in (agent, *shadows):
            if candidate.estimator.exact:
                raise ValueError(f"{candidate.name!r} takes its model from one exact MDP; with env_changes use "
                                 "learned estimators (the oracle still measures them on the MDP in force)")
            support = getattr(candidate.estimator, "reward_values", None)
            for start, phase_env in phases:
                if support is not None and phase_env.is_tabular:
                    values = np.asarray(phase_env.tabular_mdp().reward_values, float)
                    missing = [float(v) for v in values if np.abs(np.asarray(support) - v).min() > 1e-6]
                    if missing:
                        raise ValueError(f"{candidate.name!r} declares reward_values {np.asarray(support).tolist()}, "
                                         f"but from update {start} the rewards include {missing}: declare the "
                                         "support of every phase")
    return phases


def train(env: Environment | GymnasiumHostEnv, agent: Agent, config: TrainConfig = TrainConfig(), *,
          progress: bool = True, on_evaluation: Callable[[list[dict]], Any] | None = None,
          shadows: Sequence[Agent] = (),
          on_shadows: Callable[[int, AgentState, tuple, Environment], Any] | None = None,
          env_changes: dict[int, Environment] | None = None) -> TrainResult:
    """Trains ``config.seeds`` seeds of ``agent`` on ``env`` in parallel.

    Args:
      env: a cocoa environment, or anything ``envs.as_environment`` takes: a name (``"gymnasium:<id>"``
        too), a ``TabularMDP`` or a ``gymnasium.Env``. Environments that do not jit (a
        ``GymnasiumHostEnv``) have their batches collected on the host and fed to the same compiled update.
      agent: an agent from ``cocoa.agents.make``.
      config: updates, batch size, seeds, evaluation schedule.
      progress: show a progress bar.
      on_evaluation: called with the new rows after each evaluation (e.g. to append to a CSV).
      shadows: agents with the same policy network whose models train on the main agent's batches
        ("shadow training", e.g. to measure every estimator along one learning run).
      on_shadows: called at each evaluation with (update, agent states, shadow states, the environment in
        force), states with a leading seed axis.
      env_changes: {update: environment}: from that update on, training, evaluation and shadow measurements use
        that environment, a variant of ``env`` with the same shapes (e.g. key-to-door's treasure negated: the
        reward-switch experiment). The evaluation at a change point already uses the new environment. Learned
        estimators only (an exact model belongs to one MDP); a declared reward support must cover every phase.

    Raises:
      NonFiniteError: NaN or inf in the metrics or parameters; says which seed, quantity and updates.
    """
    env = as_environment(env)
    _check_inputs(env, agent, config, shadows, host_ok=True)
    host = isinstance(env, GymnasiumHostEnv)
    if host and shadows:
        raise ValueError(f"shadow training measures estimators against the exact gradient, but {env.name} has no "
                         "tabular form")
    if host and env_changes:
        raise ValueError(f"env_changes need a functional environment; {env.name} runs on the host")
    init_keys, run_keys, eval_keys = _keys_of_seeds(config.seed, config.seeds)
    for shadow in shadows:
        if shadow.config.hidden_sizes != agent.config.hidden_sizes or shadow.config.epsilon != agent.config.epsilon:
            raise ValueError(f"shadow {shadow.name!r} must share the main agent's policy network and epsilon "
                             "(build it with the same shared options)")
    fitting = [candidate for candidate in (agent, *shadows) if candidate.prepare_episodes]
    if progress and fitting:  # a one-off fit before the first update can take a minute: say so
        print(f"fitting {', '.join(candidate.name for candidate in fitting)} on "
              f"{max(candidate.prepare_episodes for candidate in fitting)} episodes of the initial policy "
              f"({config.seeds} seed(s))...", file=sys.stderr, flush=True)
    init = make_init(env, agent, shadows, None if host else _horizon(env, config))
    states = jax.jit(jax.vmap(init))(init_keys)  # one compile, not one per op

    phases = _check_env_changes(env, agent, shadows, config, env_changes or {})  # [(first update, env)]
    starts = [start for start, _ in phases]
    boundaries = sorted(set(range(0, config.updates, config.eval_interval)) | set(starts)) + [config.updates]
    phase_of = lambda update: max(i for i, start in enumerate(starts) if start <= update)
    compile_start = time.perf_counter()
    if progress:  # compilation takes tens of seconds before the first update: say so
        print(f"compiling {agent.name} on {env.name} ({config.seeds} seed(s), batch {config.batch_size})...",
              file=sys.stderr, flush=True)
    if host:  # batches collected on the host; the update compiles once, at the first call
        states = make_host_prepare(env, agent, config)(states, _fold_in_each(init_keys, len(shadows) + 1))
        host_segment, host_evaluate = make_host_segment(env, agent, config), make_host_evaluate(env, agent, config)
        run_segment = lambda phase, num_updates, states, keys: host_segment(num_updates, states, keys)
        evaluate = lambda phase, agent_states, keys: host_evaluate(agent_states, keys)
    else:
        needed = {(phase_of(a), b - a) for a, b in zip(boundaries[:-1], boundaries[1:])}
        segments = {(phase, n): make_segment(phases[phase][1], agent, config, n, shadows).lower(states, run_keys).compile()
                    for phase, n in sorted(needed)}
        evaluations = [make_evaluate(phase_env, agent, config).lower(states[0], eval_keys).compile()
                       for _, phase_env in phases]
        run_segment = lambda phase, num_updates, states, keys: segments[(phase, num_updates)](states, keys)
        evaluate = lambda phase, agent_states, keys: evaluations[phase](agent_states, keys)
    compile_seconds = time.perf_counter() - compile_start

    rows: list[dict] = []

    def record(update: int, states, key_index: int):
        agent_states, shadow_states = states
        keys = _fold_in_each(eval_keys, key_index)
        metrics = jax.device_get(evaluate(phase_of(update), agent_states, keys))
        new = [{"update": update, "seed": seed, "episodes": update * config.batch_size,
                **{name: float(value[seed]) for name, value in metrics.items()}}
               for seed in range(config.seeds)]
        rows.extend(new)
        if on_evaluation is not None:
            on_evaluation(new)
        if on_shadows is not None and shadows:
            on_shadows(update, agent_states, shadow_states, phases[phase_of(update)][1])

    record(0, states, 0)
    train_seconds, env_steps = 0.0, 0
    bar = tqdm(total=config.updates, disable=not progress, unit="update", desc=f"{agent.name} on {env.name}")
    for index, (start, stop) in enumerate(zip(boundaries[:-1], boundaries[1:]), start=1):
        tick = time.perf_counter()
        states, run_keys, summary, finite = jax.block_until_ready(
            run_segment(phase_of(start), stop - start, states, run_keys))
        train_seconds += time.perf_counter() - tick
        finite = jax.device_get(finite)
        for name, ok in finite.items():
            if not np.all(ok):
                seed = int(np.flatnonzero(~np.asarray(ok))[0])
                raise NonFiniteError(
                    f"training produced NaN or inf in {name!r} for seed {seed} between updates {start} and "
                    f"{stop} ({agent.name} on {env.name}); try a smaller learning rate or max_grad_norm")
        env_steps += int(np.sum(jax.device_get(summary["env_steps"])))
        record(stop, states, index)
        bar.update(stop - start)
        last = [row for row in rows if row["update"] == stop]
        bar.set_postfix(ret=f"{np.mean([r['return'] for r in last]):.3f}")
    bar.close()
    return TrainResult(rows=rows, final_state=states[0], final_shadow_states=states[1],
                       compile_seconds=compile_seconds,
                       train_seconds=train_seconds, env_steps=env_steps)
