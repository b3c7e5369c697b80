"""COALA-PG's credit weights (cocoa.agents.coala.rule_returns): the scan against the explicit sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa.agents.coala import RULES, rule_advantages, rule_returns, shaping_scan

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


# --- unbiasedness, by exact enumeration of a tiny game ----------------------------------------------

# A one-step game (T = 1) in which the ego's action changes what the co-player learns: the co-player
# is paid for matching the ego (so its update follows the ego's actions), the ego for being matched
# on action 0 and for the co-player's action 1 otherwise.
EGO_PAYOFF = np.array([[2.0, -1.0], [0.0, 1.0]])  # [ego action, co-player action]
CO_PAYOFF = np.array([[1.0, 0.0], [0.0, 1.0]])
EPISODES, LEARNING_RATE = 3, 1.5


def _paths(batch):
    """Every outcome of the meta-trajectory: int (P, M, B, 2) ego and co-player actions."""
    outcomes = np.array(np.meshgrid(*[[0, 1]] * (2 * batch * EPISODES), indexing="ij")).reshape(2 * batch * EPISODES, -1).T
    return jnp.asarray(outcomes.reshape(-1, EPISODES, batch, 2))


def _path_terms(theta, paths, co_logit=0.0):
    """Per path: probability, ego rewards (B, M), the ego's log-probability. The naive co-player
    (one logit, the log-odds of action 0) takes a REINFORCE step on its B episodes after each episode."""
    batch = paths.shape[2]

    def one(path):
        def episode(phi, inputs):
            logits, actions = inputs
            ego, co = actions[:, 0], actions[:, 1]
            ego_log = jnp.where(ego == 0, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
            co_log = jnp.where(co == 0, jax.nn.log_sigmoid(phi), jax.nn.log_sigmoid(-phi))
            co_reward = jnp.asarray(CO_PAYOFF)[ego, co]
            score = jnp.where(co == 0, 1.0, 0.0) - jax.nn.sigmoid(phi)
            phi = phi + LEARNING_RATE * jnp.mean(score * co_reward)
            return phi, (jnp.sum(ego_log), jnp.sum(co_log), jnp.asarray(EGO_PAYOFF)[ego, co])

        _, (ego_log, co_log, rewards) = jax.lax.scan(episode, jnp.asarray(co_logit, theta.dtype), (theta, path))
        return jnp.exp(jnp.sum(ego_log) + jnp.sum(co_log)), rewards.T, jnp.sum(ego_log)

    return jax.vmap(one)(paths)


@pytest.mark.parametrize("batch", [2, 3])
def test_coala_is_unbiased_and_the_baselines_are_not(batch):
    """E[g_hat] over every path, exactly, against autodiff of the exact objective
    J(theta) = E[(1/B) sum_b sum_l r_l^b] (ego logits per inner episode, B = 2 and 3, M = 3, T = 1)."""
    with jax.enable_x64(True):
        theta = jnp.array([0.3, -0.5, 0.8])
        paths = _paths(batch)

        def objective(theta):
            probs, rewards, _ = _path_terms(theta, paths)
            return jnp.sum(probs * jnp.sum(rewards, axis=(1, 2))) / batch

        exact = jax.grad(objective)(theta)
        probs, rewards, _ = _path_terms(theta, paths)
        assert float(jnp.sum(probs)) == pytest.approx(1.0, abs=1e-12)
        errors = {}
        for rule in ("coala", "m-fos", "batch-unaware"):
            weights = jax.vmap(lambda r: rule_returns(r, 1, rule))(rewards)  # (P, B, M)

            def surrogate(theta):  # the score of every ego action weighted by W, averaged over paths
                logits = theta[None, :, None]
                ego = paths[..., 0]  # (P, M, B)
                log_probs = jnp.where(ego == 0, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
                return jnp.sum(probs[:, None, None] * log_probs * jnp.swapaxes(weights, 1, 2))

            errors[rule] = float(jnp.linalg.norm(jax.grad(surrogate)(theta) - exact) / jnp.linalg.norm(exact))
        assert errors["coala"] < 1e-10, errors
        assert errors["m-fos"] > 0.05 and errors["batch-unaware"] > 0.05, errors


# --- the scan with a critic: GAE advantages and lambda-return targets -------------------------------

def _ordinary_gae(rewards, values, discount, gae_lambda):
    """GAE over the whole meta-trajectory, written out (V = 0 after the last step)."""
    batch, length = rewards.shape
    next_values = np.concatenate([values[:, 1:], np.zeros((batch, 1))], axis=1)
    deltas = rewards + discount * next_values - values
    advantages = np.zeros_like(rewards)
    running = np.zeros(batch)
    for l in reversed(range(length)):
        running = deltas[:, l] + discount * gae_lambda * running
        advantages[:, l] = running
    return advantages


@pytest.mark.parametrize("seed", range(6))
def test_the_scan_with_a_critic_as_property_tests(seed):
    """Random B, T, M, gamma, lambda: switches off = ordinary GAE (and the targets its lambda-returns);
    with V = 0 and gamma = lambda = 1 the advantages are rule_returns; the rules differ from the
    ordinary GAE the same way with and without a critic in the last episode (no future term)."""
    rng = np.random.default_rng(seed)
    batch, episode_length, episodes = rng.integers(1, 6), rng.integers(1, 5), rng.integers(1, 5)
    discount, gae_lambda = rng.uniform(0.5, 1.0), rng.uniform(0.0, 1.0)
    rewards = rng.normal(size=(batch, episode_length * episodes))
    values = rng.normal(size=rewards.shape)
    r32, v32 = jnp.asarray(rewards, jnp.float32), jnp.asarray(values, jnp.float32)
    gae = _ordinary_gae(rewards, values, discount, gae_lambda)
    for rule in RULES:
        advantages, targets = rule_advantages(r32, v32, int(episode_length), rule, discount=discount,
                                              gae_lambda=gae_lambda)
        np.testing.assert_allclose(targets, values + gae, rtol=1e-4, atol=1e-4)
        last = slice(rewards.shape[1] - episode_length, None)
        expected_last = gae[:, last] * (1.0 if rule == "m-fos" else 1.0 / batch)
        np.testing.assert_allclose(advantages[:, last], expected_last, rtol=1e-4, atol=1e-4)
        no_critic, _ = rule_advantages(r32, jnp.zeros_like(r32), int(episode_length), rule)
        np.testing.assert_allclose(no_critic, rule_returns(r32, int(episode_length), rule), rtol=1e-5, atol=1e-5)
    off = shaping_scan(jnp.asarray(rewards - values, jnp.float32), int(episode_length), scale_current=False,
                       share_future=False, decay=discount * gae_lambda)
    np.testing.assert_allclose(off, _ordinary_gae(rewards, np.zeros_like(values), discount, gae_lambda)
                               - _ordinary_gae(values, np.zeros_like(values), discount, gae_lambda),
                               rtol=1e-4, atol=1e-4)


def test_a_critic_shared_by_the_batch_is_a_baseline_under_coala():
    """gamma = lambda = 1 and V depending on the step only (the same for every trajectory): COALA's
    advantage is its return minus V_l / B minus (1 - 1/B) V at the next episode's start (0 in the
    last episode), a constant in the actions, so the gradient stays unbiased."""
    rng = np.random.default_rng(3)
    batch, episode_length = 3, 2
    rewards = jnp.asarray(rng.normal(size=(batch, 6)), jnp.float32)  # M 3
    values = jnp.broadcast_to(jnp.asarray(rng.normal(size=6), jnp.float32), rewards.shape)
    advantages, _ = rule_advantages(rewards, values, episode_length, "coala")
    steps = np.arange(6)
    next_start = (steps // episode_length + 1) * episode_length
    following = np.where(next_start < 6, np.asarray(values[0])[np.minimum(next_start, 5)], 0.0)
    expected = rule_returns(rewards, episode_length, "coala") - values / batch - (1 - 1 / batch) * following
    np.testing.assert_allclose(advantages, expected, rtol=1e-4, atol=1e-4)


def test_bad_critic_settings_are_reported():
    with pytest.raises(ValueError, match="gae_lambda must be a number in \\[0, 1\\]; got 1.5"):
        rule_advantages(jnp.zeros((2, 4)), jnp.zeros((2, 4)), 2, gae_lambda=1.5)
    with pytest.raises(ValueError, match="unknown rule 'lola'"):
        rule_advantages(jnp.zeros((2, 4)), jnp.zeros((2, 4)), 2, "lola")
