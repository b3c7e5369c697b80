"""The network game of the shaping runner (cocoa.network_game): sampling, the naive learner's A2C
step, the per-agent reset rule, and the runner on CleanUp-lite."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cocoa import network_game
from cocoa.shaping import ShapingConfig, init_params, make_meta_gradient, make_meta_update

Z = 5.0


def _frequency_z(logits, actions):
    """The largest |z| of the action counts against the softmax of ``logits``."""
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    counts = np.bincount(np.asarray(actions), minlength=len(p))
    n = len(actions)
    return np.max(np.abs(counts - n * p) / np.sqrt(n * p * (1 - p)))


def test_sampling_matches_the_softmax_and_gives_the_chosen_log_prob():
    logits = jnp.array([0.3, -1.0, 2.0, 0.0, -0.5, 1.0])
    uniforms = jax.random.uniform(jax.random.PRNGKey(0), (40_000,))
    actions, log_probs = network_game.sample(jnp.broadcast_to(logits, (40_000, 6)), uniforms)
    assert _frequency_z(logits, actions) < Z
    np.testing.assert_allclose(log_probs, jax.nn.log_softmax(logits)[actions], rtol=1e-6)
    # The same counts reject a softmax a little off (the test can fail).
    assert _frequency_z(logits.at[2].add(0.1), actions) > Z


def _logits_network(params, state, observations):
    """A network whose params are its logits (A,) and value (a scalar), whatever it observes."""
    batch = observations.shape[0]
    return (jnp.broadcast_to(params["logits"], (batch,) + params["logits"].shape),
            jnp.broadcast_to(params["value"], (batch,))), state


def test_the_a2c_loss_gradient_is_the_normalised_advantage_policy_gradient_plus_the_value_regression():
    rng = np.random.default_rng(0)
    batch, steps, num_actions, scale = 3, 4, 5, 0.5
    params = {"logits": jnp.asarray(rng.normal(size=num_actions)), "value": jnp.asarray(0.7)}
    actions = rng.integers(0, num_actions, (batch, steps))
    rewards = rng.normal(size=(batch, steps))
    for baseline, discount in (("value", 1.0), ("batch-mean", 1.0), ("value", 0.9)):
        gradient = jax.grad(lambda p: network_game.a2c_loss(
            _logits_network, jnp.zeros(batch), p, jnp.zeros((batch, steps, 1)), jnp.asarray(actions),
            jnp.asarray(rewards), reward_scale=scale, baseline=baseline, discount=discount))(params)
        returns = np.zeros_like(rewards)  # sum_{k >= t} discount^(k - t) r_k, step by step
        for t in range(steps):
            returns[:, t] = sum(discount ** (k - t) * rewards[:, k] for k in range(t, steps))
        returns *= scale
        base = 0.7 if baseline == "value" else returns.mean(axis=0, keepdims=True)
        advantages = returns - base
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy = np.exp(params["logits"]) / np.exp(params["logits"]).sum()
        score = np.eye(num_actions)[actions] - policy  # d log pi(a) / d logits, (B, T, A)
        expected_logits = -np.mean(np.sum(advantages[..., None] * score, axis=1), axis=0)
        expected_value = network_game.VALUE_LOSS_WEIGHT * np.mean(np.sum(0.7 - returns, axis=1))
        np.testing.assert_allclose(gradient["logits"], expected_logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gradient["value"], expected_value, rtol=1e-5)
    with pytest.raises(ValueError, match="discount must be in \\(0, 1\\]; got 1.5"):
        network_game.discounted_returns(jnp.zeros((2, 3)), 1.5)


class _ActionRewardEnv:
    """Each player's reward is its own action's index; nothing to observe; episodes never end early."""

    def reset(self, key):
        return jnp.zeros((2, 1)), jnp.zeros(())

    def step(self, key, state, actions):
        return jnp.zeros((2, 1)), state, actions.astype(jnp.float32), jnp.bool_(False)


def _counting_network(params, state, observations):
    """Plays its step count deterministically (the action with that index), so the rewards read back
    each player's recurrent state; its params do nothing."""
    count = state.astype(jnp.int32)
    logits = jnp.where(jnp.arange(32) == count[:, None], 0.0, -1e4) + 0.0 * params
    return (logits, 0.0 * params + jnp.zeros(count.shape)), state + 1.0


def _run(network, init, env, *, steps, episodes, batch, **options):
    options = dict(naive_optimizer=optax.adam(0.1), reward_scale=1.0, naive_baseline="value",
                   cooperation=lambda state, actions: actions == 0) | options
    return jax.jit(network_game.make_run(env, network, lambda key, opponent: init(key), lambda b: jnp.zeros(b),
                                         episode_length=steps,
                                         episodes=episodes, batch_size=batch, **options))


def test_the_naive_context_restarts_every_episode_and_the_meta_agents_persist():
    run = _run(_counting_network, lambda key: jnp.zeros(()), _ActionRewardEnv(), steps=4, episodes=3, batch=2)
    for is_naive in (True, False):
        games = run(jnp.zeros(()), jax.random.PRNGKey(0), jnp.zeros(()), is_naive)
        assert games.pop("observations").shape == (2, 12, 1)  # the meta agent's inputs, for its replay
        assert all(x.shape == (2, 12) for x in games.values())
        np.testing.assert_array_equal(games["actions"], np.broadcast_to(np.arange(12), (2, 12)))
        np.testing.assert_array_equal(games["rewards"], np.broadcast_to(np.arange(12.0), (2, 12)))
        co = np.tile(np.arange(4.0), 3) if is_naive else np.arange(12.0)
        np.testing.assert_array_equal(games["co_rewards"], np.broadcast_to(co, (2, 12)))
        np.testing.assert_allclose(games["log_probs"], 0.0, atol=1e-6)  # deterministic actions


class _FirstActionPaysEnv:
    """The co-player earns 1 for action 0; the meta agent earns nothing."""

    def reset(self, key):
        return jnp.zeros((2, 1)), jnp.zeros(())

    def step(self, key, state, actions):
        return jnp.zeros((2, 1)), state, jnp.stack([0.0, (actions[1] == 0).astype(jnp.float32)]), jnp.bool_(False)


def test_a_naive_learner_learns_within_the_meta_trajectory_and_a_meta_opponent_does_not():
    init = lambda key: {"logits": jnp.zeros(4), "value": jnp.zeros(())}
    run = _run(_logits_network, init, _FirstActionPaysEnv(), steps=5, episodes=10, batch=16)
    keys = jax.random.split(jax.random.PRNGKey(3), 16)
    opponent = init(None)
    for is_naive in (True, False):
        games = jax.vmap(lambda k: run(init(None), k, opponent, is_naive))(keys)
        per_episode = np.asarray(games["co_rewards"]).reshape(16, 16, 10, 5).mean(axis=(0, 1, 3))
        if is_naive:
            assert abs(per_episode[0] - 0.25) < 0.05 and per_episode[-1] > 0.6
        else:  # a meta opponent keeps its uniform policy: 1/4 throughout (sd of each mean about 0.024)
            assert np.all(np.abs(per_episode - 0.25) < 0.1)


def test_a_cleanup_meta_update_runs_and_moves_the_policy():
    config = ShapingConfig(env="CleanUpLite-v0", policy="gru", hidden_size=8, episode_length=32, episodes=2,
                           batch_size=4, meta_batch=2, population=2, p_naive=0.5)
    assert config.naive_policy == "network" and config.naive_learning_rate == 0.005
    update, optimizer = make_meta_update(config)
    params = init_params(config)
    assert params["policy_head"]["w"].shape == (2, 8, 6)  # a logit per CleanUp action, per meta agent
    (new, _), metrics = update((params, optimizer.init(params)), jax.random.PRNGKey(0))
    assert metrics["meta_reward"] > 0 and metrics["meta_vs_meta_reward"] > 0  # some apples were harvested
    assert float(jnp.abs(new["policy_head"]["w"]).sum()) > 0
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(new))
    assert metrics["meta_cooperation"].shape == (2,)
    assert np.all((0 <= metrics["meta_cooperation"]) & (metrics["meta_cooperation"] <= 1))


def test_the_meta_critic_at_init_scales_the_policy_gradient_and_trains_the_value_head():
    # Zero-initialised value head: V = 0, so with lambda 1 every rule's GAE advantage is its
    # Monte-Carlo weight on the scaled rewards (with no baseline), and the critic's targets are the
    # returns-to-go.
    options = dict(policy="gru", naive_policy="network", hidden_size=8, episode_length=4, episodes=3,
                   batch_size=2, meta_batch=2, population=2, p_naive=0.5)
    plain, critic = ShapingConfig(**options, meta_baseline="none"), ShapingConfig(**options, meta_critic=True)
    assert critic.meta_baseline == "none" and ShapingConfig(**options).meta_baseline == "step-mean"
    params = init_params(plain)
    key = jax.random.PRNGKey(3)
    without, metrics_without = jax.jit(make_meta_gradient(plain))(params, key)
    with_critic, metrics_with = jax.jit(make_meta_gradient(critic))(params, key)
    np.testing.assert_allclose(metrics_with["meta_reward"], metrics_without["meta_reward"])  # same games
    for name in without:
        if name == "value_head":
            continue
        for a, b in zip(jax.tree.leaves(with_critic[name]), jax.tree.leaves(without[name])):
            np.testing.assert_allclose(a, critic.reward_scale * b, rtol=1e-5, atol=1e-7)
    assert float(jnp.abs(without["policy_head"]["w"]).sum()) > 0
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(without["value_head"]))
    # Descending the critic loss at V = 0 raises V towards the (positive on average) IPD returns.
    assert float(jnp.abs(with_critic["value_head"]["w"]).sum()) > 0
    assert float(with_critic["value_head"]["b"].sum()) < 0


@pytest.mark.parametrize("options, message", [
    (dict(meta_critic=True), "meta_critic needs the players' value head, so naive_policy must be 'network'; "
                             "got 'memory-1'"),
    (dict(policy="gru", naive_policy="network", meta_gae_lambda=1.5),
     "meta_gae_lambda must be in \\[0, 1\\]; got 1.5"),
    (dict(env="CleanUpLite-v0", policy="gru", naive_policy="memory-1"), "on CleanUpLite-v0 naive learners are 'network'"),
    (dict(naive_policy="network"), "the policy must be a sequence policy, 'gru' or 'hawk'; got 'tabular'"),
    (dict(naive_policy="network", policy="memory-1"), "a sequence policy, 'gru' or 'hawk'; got 'memory-1'"),
    (dict(env="CleanUpLite-v0"), "got 'tabular' \\(on CleanUpLite-v0 it is always 'network'\\)"),
    (dict(naive_policy="lstm"), "unknown naive_policy 'lstm'; known naive policies: memory-1, network"),
    (dict(env="Tennis-v0"), "unknown env 'Tennis-v0'; known shaping envs: IteratedPrisonersDilemma-v0, CleanUpLite-v0")])
def test_bad_network_game_settings_name_themselves(options, message):
    with pytest.raises(ValueError, match=message):
        ShapingConfig(**options)
