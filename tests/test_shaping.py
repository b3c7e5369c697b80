"""The tabular co-player shaping runner (cocoa.shaping): plumbing and learning of the naive co-player."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa.shaping import ShapingConfig, make_meta_trajectory, make_meta_update

SMALL = dict(episode_length=4, episodes=6, batch_size=8, meta_batch=4)


def test_a_meta_trajectory_has_the_batch_layout_and_repeats_per_key():
    config = ShapingConfig(**SMALL)
    run = jax.jit(make_meta_trajectory(config))
    meta = jnp.zeros((6, 5))
    first, again = run(meta, jnp.zeros(5), jax.random.PRNGKey(0)), run(meta, jnp.zeros(5), jax.random.PRNGKey(0))
    assert all(x.shape == (8, 24) for x in first)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_the_co_player_learns_to_defect_against_a_defector_within_the_meta_trajectory():
    """Against an always-defecting meta agent the naive learner's reward per episode rises towards 0
    (it stops being exploited); with a zero learning rate it stays at the uniform policy's -0.5."""
    meta = jnp.full((20, 5), -20.0)
    rewards = {}
    for rate in (1e-9, 5.0):
        config = ShapingConfig(episode_length=10, episodes=20, batch_size=16, naive_learning_rate=rate)
        run = jax.jit(make_meta_trajectory(config))
        naive = jax.vmap(lambda k: run(meta, jnp.zeros(5), k)[2])(jax.random.split(jax.random.PRNGKey(1), 32))
        rewards[rate] = np.asarray(naive).reshape(32, 16, 20, 10).mean(axis=(0, 1, 3))  # per inner episode
    assert abs(rewards[1e-9].mean() + 0.5) < 0.05
    assert rewards[5.0][-1] > rewards[5.0][0] + 0.3 and rewards[5.0][-1] > -0.2


def test_one_compiled_meta_update_runs_and_is_finite():
    config = ShapingConfig(**SMALL, rule="m-fos")
    update, optimizer = make_meta_update(config)
    logits = jnp.zeros((6, 5))
    (logits, _), metrics = update((logits, optimizer.init(logits)), jax.random.PRNGKey(0))
    assert np.isfinite(np.asarray(logits)).all() and float(jnp.abs(logits).sum()) > 0
    assert set(metrics) == {"meta_reward", "naive_reward"}


@pytest.mark.parametrize("options, message", [
    (dict(rule="lola"), "unknown rule 'lola'"), (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(naive_learning_rate=-1.0), "naive_learning_rate must be a positive number")])
def test_bad_settings_name_themselves(options, message):
    with pytest.raises(ValueError, match=message):
        ShapingConfig(**options)
