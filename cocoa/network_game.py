"""A meta-trajectory against a naive learner that is a network: the shaping runner's game for
two-player environments with vector observations and categorical actions (CleanUp-lite).

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Algorithm 1; App. C: naive learners run the meta agents' network, trained by A2C
without bootstrapping); docs/estimators/coala.md.

Every player runs one recurrent network ``network(params, state, observations (B, D)) ->
((logits (B, A), value (B,)), state)``. The meta agent's params are fixed within the
meta-trajectory and its recurrent state persists across the inner episodes. The co-player is

* a naive learner (``is_naive``): its params from ``naive_start(key, opponent params)`` (fresh ones
  drawn with its own key, or a copy of a meta agent's), its state reset at every inner episode's
  start, and after every inner episode one A2C step (an optax step, its optimiser state kept across
  the meta-trajectory) on its own B episodes: Monte-Carlo
  returns within the episode, less its value (or the batch-mean return), the advantages
  normalised, plus a squared-error value loss; everything of it is discarded at the end; or
* another meta agent (``opponent_params``, fixed, its state persisting like the meta agent's).

Both kinds are one network evaluated with params selected per co-player, so a mixed pool pays for
one co-player network per step. All random numbers of an inner episode are drawn in bulk.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

VALUE_LOSS_WEIGHT = 0.5


def sample(logits, uniforms):
    """Categorical actions by inverse CDF: logits (..., A), uniforms (...) -> (actions, log-probs)."""
    log_probs = jax.nn.log_softmax(logits)
    cdf = jnp.cumsum(jnp.exp(log_probs), axis=-1)
    actions = jnp.minimum(jnp.sum(uniforms[..., None] > cdf, axis=-1), logits.shape[-1] - 1)
    return actions, jnp.take_along_axis(log_probs, actions[..., None], axis=-1)[..., 0]


def unroll(network, initial_state, params, observations, actions):
    """The network run over observations (B, L, D) from ``initial_state``, its state carried from step
    to step: the log-probs (B, L) of ``actions`` (B, L) and the values (B, L)."""
    def step(state, observation):
        (logits, value), state = network(params, state, observation)
        return state, (logits, value)

    _, (logits, values) = jax.lax.scan(step, initial_state, jnp.swapaxes(observations, 0, 1))
    logits, values = jnp.swapaxes(logits, 0, 1), jnp.swapaxes(values, 0, 1)  # (B, L, A), (B, L)
    return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[..., None], axis=-1)[..., 0], values


def discounted_returns(rewards, discount: float = 1.0):
    """Monte-Carlo returns within an episode: rewards (..., T) -> sum_{k >= t} discount^(k - t) r_k."""
    if not 0 < discount <= 1:
        raise ValueError(f"discount must be in (0, 1]; got {discount!r}")
    if discount == 1.0:
        return jnp.cumsum(rewards[..., ::-1], axis=-1)[..., ::-1]
    steps = jnp.arange(rewards.shape[-1])
    powers = jnp.where(steps[:, None] >= steps[None, :], discount ** (steps[:, None] - steps[None, :]), 0.0)
    return rewards @ powers.astype(rewards.dtype)  # powers[k, t] = discount^(k - t) for k >= t


def a2c_loss(network, initial_state, params, observations, actions, rewards, *, reward_scale: float,
             baseline: str, discount: float = 1.0):
    """The naive learner's loss on its B episodes of one inner episode: observations (B, T, D),
    actions (B, T), rewards (B, T). Monte-Carlo returns within the episode (scaled, discounted by
    ``discount``), less the value (``baseline="value"``) or the mean return at each step over the B
    episodes; the advantages normalised over the batch; the value regressed on the returns."""
    log_probs, values = unroll(network, initial_state, params, observations, actions)
    returns = discounted_returns(rewards, discount) * reward_scale
    base = values if baseline == "value" else jnp.mean(returns, axis=0, keepdims=True)
    advantages = jax.lax.stop_gradient(returns - base)
    advantages = (advantages - jnp.mean(advantages)) / (jnp.std(advantages) + 1e-8)
    policy_loss = -jnp.mean(jnp.sum(log_probs * advantages, axis=1))
    value_loss = 0.5 * jnp.mean(jnp.sum((values - returns) ** 2, axis=1))
    return policy_loss + VALUE_LOSS_WEIGHT * value_loss


def make_run(env, network: Callable, naive_start: Callable, initial_state: Callable, *, episode_length: int,
             episodes: int, batch_size: int, naive_optimizer: optax.GradientTransformation, reward_scale: float,
             naive_baseline: str, cooperation: Callable, naive_discount: float = 1.0) -> Callable:
    """(meta params, key, opponent params, is_naive) -> dict of (B, M T) arrays: the meta agent's
    ``log_probs``, ``values`` (its value head's), ``rewards`` and ``cooperated``, its inputs ``observations``
    (B, M T, D) and ``actions``, the co-player's ``co_rewards`` and ``co_cooperated``. ``env``: gymnax-style, ``reset(key)`` -> (observations (2, D), state),
    ``step(key, state, actions (2,))`` -> (observations, state, rewards (2,), done).
    ``naive_start(key, opponent params)`` -> the naive learner's first params.
    ``cooperation(state, actions (2,))`` -> bool (2,): what counts as cooperating (the report's
    per-episode cooperation)."""
    batch = batch_size

    def run(meta_params, key, opponent_params, is_naive):
        naive_key, play_key = jax.random.split(key)
        opponent_params = jax.lax.stop_gradient(opponent_params)
        naive_params = naive_start(naive_key, opponent_params)

        def episode(carry, key):
            naive_params, naive_opt_state, meta_state, opponent_state = carry
            reset_key, env_key, action_key = jax.random.split(key, 3)
            observations, env_state = jax.vmap(env.reset)(jax.random.split(reset_key, batch))
            co_params = jax.tree.map(lambda n, o: jnp.where(is_naive, n, o), naive_params, opponent_params)
            # The naive learner's context starts afresh every episode; a meta opponent's persists.
            co_state = jax.tree.map(lambda fresh, kept: jnp.where(is_naive, fresh, kept), initial_state(batch),
                                    opponent_state)
            env_keys = jax.random.split(env_key, episode_length * batch).reshape(episode_length, batch, -1)
            uniforms = jax.random.uniform(action_key, (episode_length, batch, 2))

            def step(carry, inputs):
                observations, env_state, meta_state, co_state = carry
                env_keys, uniforms = inputs
                (meta_logits, meta_values), meta_state = network(meta_params, meta_state, observations[:, 0])
                (co_logits, _), co_state = network(co_params, co_state, observations[:, 1])
                meta_actions, meta_log_probs = sample(meta_logits, uniforms[:, 0])
                co_actions, _ = sample(jax.lax.stop_gradient(co_logits), uniforms[:, 1])
                actions = jnp.stack([meta_actions, co_actions], axis=-1)
                cooperated = jax.vmap(cooperation)(env_state, actions)
                next_observations, env_state, rewards, _ = jax.vmap(env.step)(env_keys, env_state, actions)
                outputs = (meta_log_probs, meta_values, rewards[:, 0], cooperated[:, 0], rewards[:, 1],
                           cooperated[:, 1], observations[:, 0], meta_actions, observations[:, 1], co_actions)
                return (next_observations, env_state, meta_state, co_state), outputs

            (_, _, meta_state, co_state), outputs = jax.lax.scan(
                step, (observations, env_state, meta_state, co_state), (env_keys, uniforms))
            outputs = tuple(jnp.swapaxes(x, 0, 1) for x in outputs)  # (T, B, ...) -> (B, T, ...)
            co_observations, co_actions = outputs[8:]
            # The naive learner's A2C step on its own B episodes just played.
            gradient = jax.grad(lambda p: a2c_loss(network, initial_state(batch), p, co_observations, co_actions,
                                                   outputs[4], reward_scale=reward_scale,
                                                   baseline=naive_baseline, discount=naive_discount))(naive_params)
            updates, naive_opt_state = naive_optimizer.update(gradient, naive_opt_state, naive_params)
            naive_params = jax.lax.stop_gradient(optax.apply_updates(naive_params, updates))
            opponent_state = jax.tree.map(lambda kept, played: jnp.where(is_naive, kept, played), opponent_state,
                                          co_state)
            return (naive_params, naive_opt_state, meta_state, opponent_state), outputs[:8]

        carry = (naive_params, naive_optimizer.init(naive_params), initial_state(batch), initial_state(batch))
        _, outputs = jax.lax.scan(episode, carry, jax.random.split(play_key, episodes))
        names = ("log_probs", "values", "rewards", "cooperated", "co_rewards", "co_cooperated", "observations",
                 "actions")
        # (M, B, T, ...) -> (B, M T, ...)
        return {name: jnp.swapaxes(x, 0, 1).reshape((batch, -1) + x.shape[3:]) for name, x in zip(names, outputs)}

    return run
