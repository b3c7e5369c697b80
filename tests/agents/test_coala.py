"""COALA-PG's credit weights (cocoa.agents.coala.rule_returns): the scan against the explicit sums."""

import jax.numpy as jnp
import numpy as np
import pytest

from cocoa.agents.coala import rule_returns

SHAPES = [(1, 1, 1), (2, 1, 3), (3, 4, 2), (5, 3, 4), (4, 2, 1), (16, 10, 3)]  # (B, T, M)


def _explicit(rewards, episode_length, rule):
    """The double sums of the docstring, written out with loops."""
    batch, length = rewards.shape
    weights = np.zeros_like(rewards)
    for b in range(batch):
        for l in range(length):
            end = (l // episode_length + 1) * episode_length  # one past the last step of l's episode
            current = rewards[b, l:end].sum()
            if rule == "batch-unaware":
                weights[b, l] = rewards[b, l:].sum() / batch
            else:
                future = rewards[:, end:].sum() / batch
                weights[b, l] = (current / batch if rule == "coala" else current) + future
    return weights


@pytest.mark.parametrize("batch, episode_length, episodes", SHAPES)
@pytest.mark.parametrize("rule", ["coala", "m-fos", "batch-unaware"])
def test_the_scan_equals_the_explicit_double_sum(batch, episode_length, episodes, rule):
    rewards = np.random.default_rng(batch * 100 + episode_length * 10 + episodes).normal(
        size=(batch, episode_length * episodes))
    np.testing.assert_allclose(rule_returns(jnp.asarray(rewards, jnp.float32), episode_length, rule),
                               _explicit(rewards, episode_length, rule), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch, episode_length, episodes", SHAPES)
def test_identities_between_the_rules(batch, episode_length, episodes):
    rng = np.random.default_rng(7 + batch)
    rewards = jnp.asarray(rng.normal(size=(batch, episode_length * episodes)), jnp.float32)
    coala, mfos, unaware = (rule_returns(rewards, episode_length, rule) for rule in ("coala", "m-fos", "batch-unaware"))
    # Batch-unaware times B is the ordinary return-to-go over the whole meta-trajectory.
    np.testing.assert_allclose(batch * unaware, jnp.cumsum(rewards[:, ::-1], axis=1)[:, ::-1], rtol=1e-5, atol=1e-5)
    # M-FOS is COALA with the current episode's term times B.
    steps = jnp.arange(rewards.shape[1])
    ends = (steps // episode_length + 1) * episode_length
    current = jnp.stack([jnp.sum(jnp.where((steps >= l) & (steps < ends[l]), rewards, 0.0), axis=1)
                         for l in range(rewards.shape[1])], axis=1)
    np.testing.assert_allclose(mfos - coala, (1.0 - 1.0 / batch) * current, rtol=1e-5, atol=1e-5)
    # The last episode has no future term: all three credit only the own trajectory there.
    last = slice(rewards.shape[1] - episode_length, None)
    np.testing.assert_allclose(coala[:, last], current[:, last] / batch, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(unaware[:, last], current[:, last] / batch, rtol=1e-5, atol=1e-5)
    # Linearity in the rewards.
    other = jnp.asarray(rng.normal(size=rewards.shape), jnp.float32)
    np.testing.assert_allclose(rule_returns(2.0 * rewards - 3.0 * other, episode_length, "coala"),
                               2.0 * coala - 3.0 * rule_returns(other, episode_length, "coala"), rtol=1e-4, atol=1e-4)


def test_a_reward_in_another_trajectorys_future_counts_only_for_the_sharing_rules():
    rewards = jnp.zeros((2, 4)).at[1, 3].set(1.0)  # trajectory 1, second episode (T = 2)
    coala = rule_returns(rewards, 2, "coala")
    unaware = rule_returns(rewards, 2, "batch-unaware")
    np.testing.assert_allclose(coala[0, :2], [0.5, 0.5])  # trajectory 0's first episode shares it
    np.testing.assert_allclose(unaware[0], [0.0, 0.0, 0.0, 0.0])


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="unknown rule 'lola'; known rules: coala, m-fos, batch-unaware"):
        rule_returns(jnp.zeros((2, 4)), 2, "lola")
    with pytest.raises(ValueError, match="not a whole number of inner episodes of 3"):
        rule_returns(jnp.zeros((2, 4)), 3)
    with pytest.raises(ValueError, match="episode_length must be a positive integer"):
        rule_returns(jnp.zeros((2, 4)), 0)
