"""Speed benchmark: prints a table of env-steps/s, updates/s, oracle seconds and peak memory.

Run with ``make speed`` or ``python -m cocoa.benchmarks.speed [--only NAME ...]``. Every timing
excludes compilation (each program is compiled and run once before it is timed) and is the best
of ``--repeats`` runs. Targets (issue 2) are printed beside the figures they apply to.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cocoa import agents, envs, oracle
from cocoa.rollout import rollout
from cocoa.train import TrainConfig, make_init, make_train
from cocoa.types import TabularMDP


def _best_time(function: Callable, repeats: int) -> float:
    jax.block_until_ready(function())  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function())
        times.append(time.perf_counter() - start)
    return min(times)


def rollout_throughput(length: int, batch: int, repeats: int) -> float:
    """Env-steps/s of one jitted batched rollout of key-to-door under a random MLP policy."""
    env = envs.make("LinearKeyToDoor-v0", length=length)
    agent = agents.make("reinforce", num_actions=env.num_actions)
    params = agent.init(jax.random.PRNGKey(0), env.observation_shape).policy_params
    run = jax.jit(lambda key: rollout(env, agent.behaviour_probs, params, key, batch_size=batch,
                                      horizon=length).rewards.sum())
    seconds = _best_time(lambda: run(jax.random.PRNGKey(1)), repeats)
    return batch * length / seconds


def gymnasium_loop_throughput(length: int, episodes: int) -> float:
    """Env-steps/s of a pure-Python loop over the Gymnasium adapter with random actions."""
    import gymnasium

    env = gymnasium.make("cocoa/LinearKeyToDoor-v0", length=length)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    env.step(0)  # compile the adapter's jitted step
    steps, start = 0, time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            done = terminated or truncated
            steps += 1
    return steps / (time.perf_counter() - start)


def vector_env_throughput(length: int, num_envs: int, steps: int, mode: str) -> float:
    """Env-steps/s of ``gymnasium.make_vec("cocoa/LinearKeyToDoor-v0", num_envs)`` with random actions:
    ``mode`` "jitted" (cocoa's one batched step) or "sync" (gymnasium's SyncVectorEnv of N adapters)."""
    import gymnasium

    vector = gymnasium.make_vec("cocoa/LinearKeyToDoor-v0", num_envs=num_envs, length=length,
                                vectorization_mode="vector_entry_point" if mode == "jitted" else "sync")
    rng = np.random.default_rng(0)
    actions = rng.integers(0, vector.single_action_space.n, size=(steps, num_envs))
    vector.reset(seed=0)
    vector.step(actions[0])  # compile
    start = time.perf_counter()
    for action in actions:
        vector.step(action)
    seconds = time.perf_counter() - start
    vector.close()
    return steps * num_envs / seconds


def training_throughput(agent_name: str, length: int, seeds: int, updates: int, repeats: int) -> tuple[float, float]:
    """(updates/s per seed, env-steps/s summed over seeds) of the compiled training core (``make_train``)."""
    env = envs.make("LinearKeyToDoor-v0", length=length)
    agent = agents.make_for_env(agent_name, env)
    config = TrainConfig(updates=updates, batch_size=8, seeds=seeds, eval_interval=updates)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    run = jax.jit(jax.vmap(make_train(env, agent, config))).lower(keys).compile()
    init = jax.jit(jax.vmap(make_init(env, agent, horizon=length))).lower(keys).compile()
    # Updates only: less the initialisation (COCOA-feature's one-off feature fit happens there).
    seconds = _best_time(lambda: run(keys), repeats) - _best_time(lambda: init(keys), repeats)
    return updates / seconds, updates * 8 * length * seeds / seconds


def hindsight_output_layer_seconds(length: int, repeats: int) -> float:
    """Seconds per update of the hindsight network's output-layer matmuls alone (forward and both
    backward products) at the fewest rows the per-state form evaluates (states x rewarding classes).

    A floor for COCOA-reward's update on this machine: no arrangement of the same network does less.
    """
    env = envs.make("LinearKeyToDoor-v0", length=length)
    estimator = agents.make_for_env("cocoa-reward", env).estimator
    rows = env.tabular_mdp().num_states * len(estimator.active_classes())
    hidden = estimator.model_hidden_sizes[-1]
    outputs = 2 * env.num_actions * (1 + 2 * env.num_actions)  # ReLU-difference halves x (base + gate)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    z, w, dy = (jax.random.normal(keys[0], (rows, hidden)), jax.random.normal(keys[1], (hidden, outputs)),
                jax.random.normal(keys[2], (rows, outputs)))

    def step(carry, _):
        w, z = carry
        y = dy * (z @ w)
        return (w - 1e-9 * (z.T @ y), z - 1e-9 * (y @ w.T)), None

    steps = 500
    run = jax.jit(lambda w, z: jax.lax.scan(step, (w, z), None, length=steps)[0])
    return _best_time(lambda: run(w, z), repeats) / steps


def random_sparse_mdp(num_states: int, num_actions: int, num_successors: int, horizon: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, num_states, size=(num_states, num_actions, num_successors), dtype=np.int32)
    successor_probs = rng.dirichlet(np.ones(num_successors), size=(num_states, num_actions))
    reward_probs = rng.dirichlet(np.ones(3), size=(num_states, num_actions))
    return TabularMDP(successors=successors, successor_probs=successor_probs,
                      reward_values=np.array([-1.0, 0.0, 1.0]), reward_probs=reward_probs,
                      initial=np.full(num_states, 1.0 / num_states), observations=np.zeros((num_states, 1)),
                      terminal=np.zeros(num_states, bool), horizon=horizon)


def oracle_seconds(mdp: TabularMDP, repeats: int) -> float:
    """Seconds for one exact policy gradient (values, occupancy-free autodiff) after compilation."""
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(mdp.num_states, mdp.num_actions)), jnp.float32)
    return _best_time(lambda: oracle.policy_gradient(mdp, logits, epsilon=0.05), repeats)


def shaping_throughput(policy: str, updates: int, repeats: int, **settings) -> float:
    """Env-steps/s (joint actions) of the co-player shaping runner, by default at the COALA paper's
    IPD sizes (T 10, M 20, B 16), meta-batch 32; ``updates`` compiled meta updates per call, after
    compilation. ``settings``: other ``ShapingConfig`` fields (the env, its sizes)."""
    from cocoa.shaping import ShapingConfig, init_params, make_meta_update

    config = ShapingConfig(policy=policy, **settings)
    update, optimizer = make_meta_update(config)
    params = init_params(config)
    carry = (params, optimizer.init(params))
    run = jax.jit(lambda carry, keys: jax.lax.scan(update, carry, keys)[0])
    keys = jax.random.split(jax.random.PRNGKey(0), updates)
    return config.steps_per_update * updates / _best_time(lambda: run(carry, keys), repeats)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best is kept)")
    parser.add_argument("--updates", type=int, default=500, help="updates per timed training segment")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["rollout", "vector", "training", "estimators", "shaping", "oracle"], help="run only these sections")
    parser.add_argument("--slow", action="store_true", help="include HCA-state at L=103 (all B T^2 pairs)")
    args = parser.parse_args(argv)
    sections = set(args.only or ["rollout", "vector", "training", "estimators", "shaping", "oracle"])
    rows: list[tuple[str, str, str]] = []

    def add(name, value, target=""):
        rows.append((name, value, target))
        print(f"  {name}: {value}", flush=True)

    print(f"cocoa speed benchmark on {platform.processor() or platform.machine()}, "
          f"{jax.device_count()} x {jax.devices()[0].platform}, jax {jax.__version__}", flush=True)
    if "rollout" in sections:
        jitted = rollout_throughput(23, 1024, args.repeats)
        looped = gymnasium_loop_throughput(23, 100)
        add("rollout L=23, 1024 episodes, jitted (env-steps/s)", f"{jitted:,.0f}")
        add("rollout L=23, Python loop over gymnasium adapter (env-steps/s)", f"{looped:,.0f}")
        add("jitted / Python loop", f"{jitted / looped:,.0f}x", ">= 50x")
    if "vector" in sections:
        jitted = vector_env_throughput(23, 64, 2000, "jitted")
        synced = vector_env_throughput(23, 64, 200, "sync")
        add("make_vec cocoa/LinearKeyToDoor-v0 L=23, N=64, one jitted step (env-steps/s)", f"{jitted:,.0f}")
        add("make_vec ... vectorization_mode='sync', N=64 (env-steps/s)", f"{synced:,.0f}")
        add("jitted vector env / SyncVectorEnv", f"{jitted / synced:,.0f}x", ">= 20x")
    if "training" in sections:
        targets = {(23, 1): ">= 470,000 (5x paper code)", (103, 1): ">= 180,000 (10x paper code)",
                   (23, 32): ">= 2,000,000", (103, 32): ">= 2,000,000"}
        for length in (23, 103):
            for seeds in (1, 32):
                updates_per_second, steps = training_throughput("reinforce", length, seeds, args.updates,
                                                                args.repeats)
                add(f"train REINFORCE L={length}, batch 8, {seeds} seed(s) (env-steps/s; updates/s per seed)",
                    f"{steps:,.0f}; {updates_per_second:,.0f}", targets[(length, seeds)])
        updates_per_second, steps = training_throughput("advantage", 23, 1, args.updates, args.repeats)
        add("train Advantage L=23, batch 8, 1 seed (env-steps/s; updates/s)", f"{steps:,.0f}; {updates_per_second:,.0f}")
    if "estimators" in sections:
        # Issue 3: a COCOA-reward update costs at most 2x a REINFORCE update at L=103, batch 8.
        for length in (23, 103):
            baseline, _ = training_throughput("reinforce", length, 1, args.updates, args.repeats)
            for name in ("advantage", "q-critic", "trajcv", "hca-return", "cocoa-reward", "cocoa-feature",
                         "hca-state", "cocoa-reward-gt"):
                if name == "hca-state" and length > 23 and not args.slow:
                    continue
                updates_per_second, steps = training_throughput(name, length, 1, args.updates, args.repeats)
                target = "<= 2x" if name == "cocoa-reward" and length == 103 else ""
                add(f"update cost vs REINFORCE, {name} L={length}, batch 8 (x; env-steps/s)",
                    f"{baseline / updates_per_second:.2f}x; {steps:,.0f}", target)
            floor = hindsight_output_layer_seconds(length, args.repeats)
            add(f"COCOA-reward L={length}: its hindsight output layer's matmuls alone (x REINFORCE update)",
                f"{floor * baseline:.2f}x", "floor of the row above")
    if "shaping" in sections:
        add("IPD shaping runner, tabular meta policy, T 10 M 20 B 16, meta-batch 32 (env-steps/s)",
            f"{shaping_throughput('tabular', 50, args.repeats):,.0f}", ">= 5,000,000")
        add("IPD shaping runner, GRU meta policy (width 32), same sizes (env-steps/s)",
            f"{shaping_throughput('gru', 5, args.repeats):,.0f}")
        add("IPD shaping runner, Hawk meta policy (one RG-LRU block, width 32), same sizes (env-steps/s)",
            f"{shaping_throughput('hawk', 5, args.repeats):,.0f}")
        for critic in (False, True):  # the coala-cleanup suite trains the critic
            cleanup = shaping_throughput("gru", 10, args.repeats, env="CleanUpLite-v0", episodes=4, batch_size=4,
                                         meta_batch=4, meta_critic=critic)
            add("CleanUp-lite shaping runner, GRU meta agents and A2C network naive learners, T 64 M 4 B 4, "
                f"meta-batch 4{', meta critic' if critic else ''} (env-steps/s)", f"{cleanup:,.0f}")
    if "oracle" in sections:
        mdp = envs.make("LinearKeyToDoor-v0", length=103).tabular_mdp()
        add("oracle policy gradient, key-to-door L=103 (s)", f"{oracle_seconds(mdp, args.repeats):.4f}", "< 1 s")
        start = time.perf_counter()
        envs.make("LinearKeyToDoor-v0", length=103).tabular_mdp()
        add("tabular_mdp build, key-to-door L=103 (s)", f"{time.perf_counter() - start:.4f}", "< 1 s")
        big = random_sparse_mdp(100_000, 4, 4, 100)
        add("oracle policy gradient, random MDP 1e5 states, A=4, N=4, H=100 (s)",
            f"{oracle_seconds(big, args.repeats):.3f}", "seconds")
    add("peak memory (MB, resident)", f"{peak_memory_mb():,.0f}")

    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    print(f"| {'measure'.ljust(width)} | {'value'.ljust(value_width)} | target |")
    print(f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|--------|")
    for name, value, target in rows:
        print(f"| {name.ljust(width)} | {value.ljust(value_width)} | {target} |")


if __name__ == "__main__":
    main()
