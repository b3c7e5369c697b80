"""Co-player shaping in the iterated prisoner's dilemma with tabular policies: the batched runner.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Algorithm 1); docs/estimators/coala.md.

A meta-trajectory: the meta agent plays B parallel games of M inner episodes of T steps against one
naive co-player. The meta agent's policy is fixed within the meta-trajectory: tabular logits per
(inner-episode index, observation), the log-odds of cooperating. The co-player starts from fresh
memory-1 logits and, after every inner episode, takes one REINFORCE step (Monte-Carlo returns within
the episode, the batch-mean return as baseline) on its own B episodes; its logits are discarded at
the end. A meta-batch of independent co-players runs vmapped, and that axis is never mixed into
the B axis. The meta gradient weighs each of the meta agent's scores by ``rule_returns`` of its
rewards (the rule: COALA, M-FOS or batch-unaware), averaged over the meta-batch. One compiled call
runs a whole meta update: every meta-trajectory, the gradient and an Adam step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from cocoa.agents.coala import RULES, rule_returns
from cocoa.envs.base import check_integer
from cocoa.envs.ipd import COOPERATE, DEFECT, NUM_OBSERVATIONS, IteratedPrisonersDilemma


@dataclasses.dataclass(frozen=True)
class ShapingConfig:
    """Sizes and learning rates of the shaping runner (the paper's IPD sizes: T 10, M 20, B 16)."""

    episode_length: int = 10  # T
    episodes: int = 20  # M
    batch_size: int = 16  # B
    meta_batch: int = 32  # independent co-players per meta update
    rule: str = "coala"
    meta_learning_rate: float = 0.05
    # Fast enough that the co-player stops being exploitable within a meta-trajectory; at 1.0 it is
    # not, and shaping it is worth less than defecting (docs/estimators/coala.md).
    naive_learning_rate: float = 10.0
    reward_scale: float = 0.05  # the naive learner's rewards, as in the paper

    def __post_init__(self):
        for name in ("episode_length", "episodes", "batch_size", "meta_batch"):
            check_integer(name, getattr(self, name), 1)
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; known rules: {', '.join(RULES)}")
        for name in ("meta_learning_rate", "naive_learning_rate", "reward_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number; got {value!r}")


def _play_episode(env, meta_logits, naive_logits, key, config: ShapingConfig):
    """B games of one inner episode, (B, T) each: the meta agent's log-probs and rewards, and the
    co-player's observation indices, whether it cooperated, and its rewards."""
    batch = config.batch_size
    observations, state = jax.vmap(lambda _: env.reset())(jnp.arange(batch))

    def step(carry, key):
        observations, state = carry
        seen = jnp.argmax(observations, axis=-1)  # (B, 2) observation index of each player
        logits = jnp.stack([meta_logits[seen[:, 0]], naive_logits[seen[:, 1]]], axis=-1)  # (B, 2)
        cooperate = jax.random.uniform(key, (batch, 2)) < jax.nn.sigmoid(logits)
        actions = jnp.where(cooperate, COOPERATE, DEFECT)
        log_probs = jnp.where(cooperate, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
        observations, state, rewards, _ = jax.vmap(env.step)(state, actions)
        return (observations, state), (log_probs[:, 0], rewards[:, 0], seen[:, 1], cooperate[:, 1], rewards[:, 1])

    _, outputs = jax.lax.scan(step, (observations, state), jax.random.split(key, config.episode_length))
    return tuple(jnp.swapaxes(x, 0, 1) for x in outputs)  # (T, B) -> (B, T)


def make_meta_trajectory(config: ShapingConfig) -> Callable:
    """(meta logits (M, 5), naive start logits (5,), key) -> (meta log-probs (B, M T), meta rewards
    (B, M T), naive rewards (B, M T)): one meta-trajectory against one learning co-player."""
    env = IteratedPrisonersDilemma(episode_length=config.episode_length)

    def naive_objective(naive_logits, seen, cooperated, rewards):
        """The co-player's REINFORCE surrogate on its B episodes (Monte-Carlo returns, batch-mean baseline)."""
        logits = naive_logits[seen]
        log_probs = jnp.where(cooperated, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
        returns = jnp.cumsum(rewards[:, ::-1], axis=1)[:, ::-1] * config.reward_scale
        advantages = returns - jnp.mean(returns, axis=0, keepdims=True)
        return jnp.mean(jnp.sum(log_probs * advantages, axis=1))

    def run(meta_logits, naive_logits, key):
        def episode(naive_logits, inputs):
            logits, key = inputs
            meta_log_probs, meta_rewards, seen, cooperated, naive_rewards = _play_episode(
                env, logits, naive_logits, key, config)
            # The co-player's step on its own B episodes, from the games just played.
            gradient = jax.grad(naive_objective)(naive_logits, seen, cooperated, naive_rewards)
            return naive_logits + config.naive_learning_rate * gradient, (meta_log_probs, meta_rewards, naive_rewards)

        _, outputs = jax.lax.scan(episode, naive_logits, (meta_logits, jax.random.split(key, config.episodes)))
        # (M, B, T) -> (B, M T)
        return tuple(jnp.swapaxes(x, 0, 1).reshape(config.batch_size, -1) for x in outputs)

    return run


def make_meta_update(config: ShapingConfig) -> Callable:
    """((meta logits, optimiser state), key) -> ((meta logits, optimiser state), metrics): one jitted
    meta update over ``meta_batch`` fresh co-players (naive start logits 0: uniform)."""
    run = make_meta_trajectory(config)
    optimizer = optax.adam(config.meta_learning_rate)

    def surrogate(meta_logits, key):
        keys = jax.random.split(key, config.meta_batch)
        naive_start = jnp.zeros(NUM_OBSERVATIONS)
        log_probs, rewards, naive_rewards = jax.vmap(lambda k: run(meta_logits, naive_start, k))(keys)
        weights = jax.vmap(lambda r: rule_returns(r, config.episode_length, config.rule))(rewards)
        # Maximise sum_b sum_l log pi * W per co-player, averaged over the meta-batch.
        objective = jnp.mean(jnp.sum(log_probs * jax.lax.stop_gradient(weights), axis=(1, 2)))
        return -objective, {"meta_reward": jnp.mean(rewards), "naive_reward": jnp.mean(naive_rewards)}

    def update(carry, key):
        meta_logits, opt_state = carry
        gradient, metrics = jax.grad(surrogate, has_aux=True)(meta_logits, key)
        updates, opt_state = optimizer.update(gradient, opt_state, meta_logits)
        return (optax.apply_updates(meta_logits, updates), opt_state), metrics

    return jax.jit(update), optimizer
