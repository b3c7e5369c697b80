"""Co-player shaping in the iterated prisoner's dilemma with tabular policies: the batched runner.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Algorithm 1, the mixed pools of Sec. 5); docs/estimators/coala.md.

A meta-trajectory: a meta agent plays B parallel games of M inner episodes of T steps against one
co-player. A meta agent's policy is fixed within the meta-trajectory: tabular logits per
(inner-episode index, observation), the log-odds of cooperating. The co-player is either

* a naive learner: it starts from fresh memory-1 logits and, after every inner episode, takes one
  REINFORCE step (Monte-Carlo returns within the episode, the batch-mean return as baseline) on
  its own B episodes; its logits are discarded at the end; or
* another meta agent of the pool, fixed like the first (then the ordinary policy gradient applies).

A pool of ``population`` meta agents each faces ``meta_batch`` independent co-players per update,
naive with probability ``p_naive``; the meta-batch axis is never mixed into the B axis. Each meta
score is weighed by ``rule_returns`` of the meta agent's rewards: the rule (COALA, M-FOS or
batch-unaware) against a naive learner, batch-unaware against a meta agent. All meta agents update
at once. One compiled call runs a whole update: every meta-trajectory, the gradients and an Adam step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from cocoa.agents.coala import RULES, rule_returns
from cocoa.envs.base import check_integer
from cocoa.envs.ipd import COOPERATE, DEFECT, NUM_OBSERVATIONS, IteratedPrisonersDilemma

METRICS = ("meta_reward", "naive_reward", "meta_vs_meta_reward")
COOPERATION = ("meta_cooperation", "naive_cooperation", "meta_vs_meta_cooperation")  # per inner episode


@dataclasses.dataclass(frozen=True)
class ShapingConfig:
    """Sizes and learning rates of the shaping runner (the paper's IPD sizes: T 10, M 20, B 16)."""

    episode_length: int = 10  # T
    episodes: int = 20  # M
    batch_size: int = 16  # B
    meta_batch: int = 32  # independent co-players per meta agent and update
    rule: str = "coala"
    population: int = 1  # meta agents, updated together
    p_naive: float = 1.0  # the probability that a co-player is naive, else another meta agent of the pool
    # Per opponent type, over the pool's whole batch: the weights' mean subtracted, divided by their std.
    normalize_advantages: bool = False
    meta_learning_rate: float = 0.05
    # Fast enough that the co-player stops being exploitable within a meta-trajectory; at 1.0 it is
    # not, and shaping it is worth less than defecting (docs/estimators/coala.md).
    naive_learning_rate: float = 10.0
    reward_scale: float = 0.05  # the naive learner's rewards, as in the paper

    def __post_init__(self):
        for name in ("episode_length", "episodes", "batch_size", "meta_batch", "population"):
            check_integer(name, getattr(self, name), 1)
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; known rules: {', '.join(RULES)}")
        for name in ("meta_learning_rate", "naive_learning_rate", "reward_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number; got {value!r}")
        if not isinstance(self.p_naive, (int, float)) or isinstance(self.p_naive, bool) or not 0 <= self.p_naive <= 1:
            raise ValueError(f"p_naive must be a probability in [0, 1]; got {self.p_naive!r}")

    @property
    def steps_per_update(self) -> int:
        """Environment steps of one update, summed over the pool (one step = one joint action)."""
        return self.population * self.meta_batch * self.batch_size * self.episodes * self.episode_length


def _play_episode(env, meta_logits, co_logits, key, config: ShapingConfig):
    """B games of one inner episode, (B, T) each: the meta agent's log-probs, rewards and cooperation,
    and the co-player's observation indices, cooperation and rewards."""
    batch = config.batch_size
    observations, state = jax.vmap(lambda _: env.reset())(jnp.arange(batch))

    def step(carry, key):
        observations, state = carry
        seen = jnp.argmax(observations, axis=-1)  # (B, 2) observation index of each player
        logits = jnp.stack([meta_logits[seen[:, 0]], co_logits[seen[:, 1]]], axis=-1)  # (B, 2)
        cooperate = jax.random.uniform(key, (batch, 2)) < jax.nn.sigmoid(logits)
        actions = jnp.where(cooperate, COOPERATE, DEFECT)
        log_probs = jnp.where(cooperate, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
        observations, state, rewards, _ = jax.vmap(env.step)(state, actions)
        return (observations, state), (log_probs[:, 0], rewards[:, 0], cooperate[:, 0], seen[:, 1], cooperate[:, 1],
                                       rewards[:, 1])

    _, outputs = jax.lax.scan(step, (observations, state), jax.random.split(key, config.episode_length))
    return tuple(jnp.swapaxes(x, 0, 1) for x in outputs)  # (T, B) -> (B, T)


def make_meta_trajectory(config: ShapingConfig) -> Callable:
    """(meta logits (M, 5), naive start logits (5,), key, opponent logits (M, 5), is_naive) -> dict of
    (B, M T) arrays: the meta agent's ``log_probs``, ``rewards`` and ``cooperated``, the co-player's
    ``co_rewards`` and ``co_cooperated``. One meta-trajectory against one co-player: a naive learner
    from the start logits where ``is_naive``, else the fixed opponent logits (another meta agent)."""
    env = IteratedPrisonersDilemma(episode_length=config.episode_length)

    def naive_objective(naive_logits, seen, cooperated, rewards):
        """The co-player's REINFORCE surrogate on its B episodes (Monte-Carlo returns, batch-mean baseline)."""
        logits = naive_logits[seen]
        log_probs = jnp.where(cooperated, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
        returns = jnp.cumsum(rewards[:, ::-1], axis=1)[:, ::-1] * config.reward_scale
        advantages = returns - jnp.mean(returns, axis=0, keepdims=True)
        return jnp.mean(jnp.sum(log_probs * advantages, axis=1))

    def run(meta_logits, naive_logits, key, opponent_logits, is_naive):
        def episode(naive_logits, inputs):
            logits, opponent, key = inputs
            co_logits = jnp.where(is_naive, naive_logits, opponent)
            log_probs, rewards, cooperated, seen, co_cooperated, co_rewards = _play_episode(
                env, logits, co_logits, key, config)
            # The naive co-player's step on its own B episodes, from the games just played.
            gradient = jax.grad(naive_objective)(naive_logits, seen, co_cooperated, co_rewards)
            return naive_logits + config.naive_learning_rate * gradient, (
                log_probs, rewards, cooperated, co_rewards, co_cooperated)

        _, outputs = jax.lax.scan(episode, naive_logits,
                                  (meta_logits, opponent_logits, jax.random.split(key, config.episodes)))
        names = ("log_probs", "rewards", "cooperated", "co_rewards", "co_cooperated")
        # (M, B, T) -> (B, M T)
        return {name: jnp.swapaxes(x, 0, 1).reshape(config.batch_size, -1) for name, x in zip(names, outputs)}

    return run


def init_logits(config: ShapingConfig) -> jax.Array:
    """The pool's starting logits, (population, M, 5): zeros, cooperating with probability 1/2."""
    return jnp.zeros((config.population, config.episodes, NUM_OBSERVATIONS))


def _masked_mean(values, mask, axis=None):
    """The mean of ``values`` where ``mask`` holds (broadcast), NaN where it holds nowhere."""
    mask = jnp.broadcast_to(mask, values.shape)
    count = jnp.sum(mask, axis=axis)
    return jnp.where(count > 0, jnp.sum(jnp.where(mask, values, 0.0), axis=axis) / jnp.maximum(count, 1), jnp.nan)


def _normalize(weights, mask):
    """The weights where ``mask`` holds, less their mean, over their std (left alone elsewhere)."""
    mask = jnp.broadcast_to(mask, weights.shape)
    mean = _masked_mean(weights, mask)
    std = jnp.sqrt(_masked_mean((weights - mean) ** 2, mask))
    return jnp.where(mask, (weights - mean) / (std + 1e-8), weights)


def make_meta_update(config: ShapingConfig) -> tuple[Callable, optax.GradientTransformation]:
    """((pool logits (P, M, 5), optimiser state), key) -> ((pool logits, optimiser state), metrics): one
    jitted update of the pool (module docstring). Metrics: the rewards per step of ``METRICS`` (NaN
    where no game of that kind was played) and the cooperation per inner episode, (M,), of ``COOPERATION``."""
    run = make_meta_trajectory(config)
    optimizer = optax.adam(config.meta_learning_rate)
    pool, slots, steps = config.population, config.meta_batch, config.episode_length

    def surrogate(pool_logits, key):
        type_key, opponent_key, play_key = jax.random.split(key, 3)
        is_naive = jax.random.uniform(type_key, (pool, slots)) < config.p_naive
        # Another meta agent of the pool (the agent itself when it is alone).
        offsets = jax.random.randint(opponent_key, (pool, slots), 1, max(pool, 2)) if pool > 1 else 0
        opponents = (jnp.arange(pool)[:, None] + offsets) % pool * jnp.ones((pool, slots), jnp.int32)
        opponent_logits = jax.lax.stop_gradient(pool_logits)[opponents]  # (P, K, M, 5)
        keys = jax.random.split(play_key, pool * slots).reshape(pool, slots, -1)
        naive_start = jnp.zeros(NUM_OBSERVATIONS)
        play = jax.vmap(jax.vmap(run, (None, None, 0, 0, 0)), (0, None, 0, 0, 0))
        games = play(pool_logits, naive_start, keys, opponent_logits, is_naive)  # each (P, K, B, M T)
        by_rule = jax.vmap(jax.vmap(lambda r: rule_returns(r, steps, config.rule)))
        unaware = jax.vmap(jax.vmap(lambda r: rule_returns(r, steps, "batch-unaware")))
        naive = is_naive[:, :, None, None]
        weights = jnp.where(naive, by_rule(games["rewards"]), unaware(games["rewards"]))
        if config.normalize_advantages:
            weights = _normalize(_normalize(weights, naive), ~naive)
        # Maximise sum_b sum_l log pi * W per co-player, averaged over the meta-batch, summed over the pool.
        objective = jnp.sum(jnp.mean(jnp.sum(games["log_probs"] * jax.lax.stop_gradient(weights), axis=(2, 3)), axis=1))

        def per_episode(x, mask):  # (P, K, B, M T) -> (M,)
            x = x.reshape(x.shape[:3] + (config.episodes, steps)).astype(jnp.float32)
            return _masked_mean(x, mask[:, :, None, None, None], axis=(0, 1, 2, 4))

        metrics = {
            "meta_reward": _masked_mean(games["rewards"], naive),
            "naive_reward": _masked_mean(games["co_rewards"], naive),
            "meta_vs_meta_reward": _masked_mean(games["rewards"], ~naive),
            "meta_cooperation": per_episode(games["cooperated"], is_naive),
            "naive_cooperation": per_episode(games["co_cooperated"], is_naive),
            "meta_vs_meta_cooperation": per_episode(games["cooperated"], ~is_naive),
        }
        return -objective, metrics

    def update(carry, key):
        pool_logits, opt_state = carry
        gradient, metrics = jax.grad(surrogate, has_aux=True)(pool_logits, key)
        updates, opt_state = optimizer.update(gradient, opt_state, pool_logits)
        return (optax.apply_updates(pool_logits, updates), opt_state), metrics

    return jax.jit(update), optimizer


def train_shaping(config: ShapingConfig, *, seeds=(0,), updates: int = 2000, log_every: int = 100,
                  progress: bool = True) -> dict:
    """Train one pool per seed, the seeds vmapped, compiled once; the metrics averaged over each block
    of ``log_every`` updates.

    Returns: ``update`` (N,), the last update of each block; for each of ``METRICS`` (seeds, N); for
    each of ``COOPERATION`` (seeds, N, M); and ``logits``, the final pools (seeds, P, M, 5).
    """
    check_integer("updates", updates, 1)
    check_integer("log_every", log_every, 1)
    if updates % log_every:
        raise ValueError(f"updates ({updates}) must be a whole number of log_every blocks ({log_every})")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    update, optimizer = make_meta_update(config)

    @jax.jit
    def block(carry, keys):  # keys (log_every, seeds, 2)
        def one(carry, keys):
            return jax.vmap(update)(carry, keys)

        carry, metrics = jax.lax.scan(one, carry, keys)
        return carry, jax.tree.map(lambda x: jnp.nanmean(x, axis=0), metrics)

    logits = jnp.stack([init_logits(config)] * len(seeds))
    carry = (logits, jax.vmap(optimizer.init)(logits))
    seed_keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    history = []
    bar = tqdm(total=updates, desc=f"shaping {config.rule} p_naive={config.p_naive}", disable=not progress, unit="update")
    for start in range(0, updates, log_every):
        keys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, start), log_every))(seed_keys)
        carry, metrics = block(carry, jnp.swapaxes(keys, 0, 1))
        history.append(jax.device_get(metrics))
        bar.update(log_every)
    bar.close()
    out = {"update": np.arange(log_every, updates + 1, log_every)}
    for name in METRICS + COOPERATION:
        out[name] = np.stack([h[name] for h in history], axis=1)
    out["logits"] = np.asarray(carry[0])
    return out


def train_analytic_pool(*, population: int = 4, p_naive: float = 0.75, updates: int = 600, seed: int = 0,
                        start_logit: float = -3.0, init_noise: float = 1.0, discount: float = 0.9,
                        naive_steps: int = 20, naive_learning_rate: float = 10.0,
                        learning_rate: float = 0.15) -> dict:
    """A pool of memory-1 meta agents on the analytic IPD, by exact gradient ascent (the oracle of the
    mixed pools). Agent i maximises p_naive times its mean return along a naive learner's exact
    learning trajectory (``envs.ipd.shaping_objective`` / naive_steps, differentiated through the
    learner's steps) plus (1 - p_naive) times its mean return against the other agents, held fixed.
    The agents start near ``start_logit`` (-3: nearly always defect) with Gaussian noise.

    Returns: ``logits`` (P, 5), ``meta_reward`` and ``naive_reward`` (per step, along the naive
    learner's trajectory, pool mean) and ``meta_vs_meta_reward`` (pool mean over ordered pairs i != j).
    """
    from cocoa.envs import ipd

    check_integer("population", population, 2 if p_naive < 1 else 1, why=" (meta opponents need another agent)")
    check_integer("updates", updates, 1)
    if not 0 <= p_naive <= 1:
        raise ValueError(f"p_naive must be a probability in [0, 1]; got {p_naive!r}")
    naive_start = jnp.zeros(NUM_OBSERVATIONS)
    others = 1.0 - jnp.eye(population)

    def objective(pool, fixed):
        shaping = jax.vmap(lambda m: ipd.shaping_objective(m, naive_start, discount, naive_steps,
                                                           naive_learning_rate) / naive_steps)(pool)
        pairs = jax.vmap(lambda m: jax.vmap(lambda o: ipd.analytic_returns(m, o, discount)[0])(fixed))(pool)
        against_meta = jnp.sum(pairs * others, axis=1) / max(population - 1, 1)
        return jnp.sum(p_naive * shaping + (1.0 - p_naive) * against_meta)

    optimizer = optax.adam(learning_rate)

    def step(carry, _):
        pool, state = carry
        gradient = jax.grad(objective)(pool, jax.lax.stop_gradient(pool))
        updates_, state = optimizer.update(-gradient, state)
        return (optax.apply_updates(pool, updates_), state), None

    pool = start_logit + init_noise * jax.random.normal(jax.random.PRNGKey(seed), (population, NUM_OBSERVATIONS))
    (pool, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=updates))((pool, optimizer.init(pool)))

    def along_learning(meta):
        trajectory = ipd.naive_learning(meta, naive_start, discount, naive_steps, naive_learning_rate)
        return jnp.mean(jax.vmap(lambda n: jnp.stack(ipd.analytic_returns(meta, n, discount)))(trajectory), axis=0)

    versus_naive = jax.vmap(along_learning)(pool)  # (P, 2)
    pairs = jax.vmap(lambda m: jax.vmap(lambda o: ipd.analytic_returns(m, o, discount)[0])(pool))(pool)
    return {"logits": np.asarray(pool), "meta_reward": float(jnp.mean(versus_naive[:, 0])),
            "naive_reward": float(jnp.mean(versus_naive[:, 1])),
            "meta_vs_meta_reward": float(jnp.sum(pairs * others) / max(population * (population - 1), 1))}
