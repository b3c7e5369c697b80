"""The iterated prisoner's dilemma: sampled rules, the analytic returns against Monte Carlo, the
naive learner and the exact shaping gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cocoa.envs import ipd


@pytest.mark.parametrize("a, b, rewards, seen", [
    (0, 0, (1, 1), (1, 1)), (0, 1, (-1, 2), (2, 3)), (1, 0, (2, -1), (3, 2)), (1, 1, (0, 0), (4, 4))])
def test_payoffs_and_the_swapped_observation(a, b, rewards, seen):
    env = ipd.IteratedPrisonersDilemma(episode_length=2)
    observations, state = env.reset()
    assert np.asarray(observations).argmax(-1).tolist() == [ipd.START, ipd.START]
    observations, state, paid, done = env.step(state, jnp.array([a, b]))
    assert np.asarray(paid).tolist() == list(rewards) and not bool(done)
    assert np.asarray(observations).argmax(-1).tolist() == list(seen)  # (own, other) from each side
    _, state, _, done = env.step(state, jnp.array([a, b]))
    assert bool(done)
    _, _, paid, _ = env.step(state, jnp.array([a, b]))
    assert np.asarray(paid).tolist() == [0.0, 0.0]  # a finished episode pays nothing


def _monte_carlo(logits_a, logits_b, discount, episodes=20000, horizon=160, seed=0):
    """(1 - gamma)-discounted returns of memory-1 players in the sampled game, per episode (N, 2)."""
    env = ipd.IteratedPrisonersDilemma(episode_length=horizon)
    logits = jnp.stack([logits_a, logits_b])

    def episode(key):
        observations, state = env.reset()

        def step(carry, key):
            observations, state = carry
            cooperate = jax.random.uniform(key, (2,)) < jax.nn.sigmoid(jnp.sum(logits * observations, -1))
            observations, state, rewards, _ = env.step(state, jnp.where(cooperate, ipd.COOPERATE, ipd.DEFECT))
            return (observations, state), rewards

        _, rewards = jax.lax.scan(step, (observations, state), jax.random.split(key, horizon))
        return (1 - discount) * jnp.sum(discount ** jnp.arange(horizon)[:, None] * rewards, axis=0)

    return np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(seed), episodes)))


def test_analytic_returns_match_long_monte_carlo_rollouts_and_reject_a_wrong_view():
    rng = np.random.default_rng(3)
    logits_a, logits_b = (jnp.asarray(rng.normal(scale=1.5, size=5), jnp.float32) for _ in range(2))
    discount = 0.9  # 0.9^160 < 1e-7: the truncation is negligible
    sampled = _monte_carlo(logits_a, logits_b, discount)
    mean, error = sampled.mean(0), sampled.std(0, ddof=1) / np.sqrt(sampled.shape[0])
    exact = np.array([float(j) for j in ipd.analytic_returns(logits_a, logits_b, discount)])
    assert np.all(np.abs(mean - exact) < 4 * error), (mean, exact, error)
    # The same check rejects B playing from A's view (CD and DC not swapped).
    wrong = np.array([float(j) for j in ipd.analytic_returns(logits_a, logits_b[jnp.array([0, 1, 3, 2, 4])], discount)])
    assert np.any(np.abs(mean - wrong) > 4 * error), (mean, wrong, error)


def test_known_strategies():
    always, never = jnp.full(5, 20.0), jnp.full(5, -20.0)
    tit_for_tat = jnp.array([20.0, 20.0, -20.0, 20.0, -20.0])  # cooperate first, then copy the other
    for a, b, expected in [(always, always, (1, 1)), (never, never, (0, 0)), (always, never, (-1, 2)),
                           (tit_for_tat, tit_for_tat, (1, 1))]:
        np.testing.assert_allclose([float(j) for j in ipd.analytic_returns(a, b, 0.95)], expected, atol=1e-5)
    # Tit-for-tat against always-defect: exploited once, then mutual defection.
    j_a, j_b = ipd.analytic_returns(tit_for_tat, never, 0.9)
    np.testing.assert_allclose([float(j_a), float(j_b)], [(1 - 0.9) * -1, (1 - 0.9) * 2], atol=1e-5)


def test_the_naive_learner_climbs_and_the_shaping_gradient_is_exact():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        meta, naive = jnp.asarray(rng.normal(size=5)), jnp.asarray(rng.normal(size=5))
        trajectory = ipd.naive_learning(meta, naive, 0.9, steps=20, learning_rate=1.0)
        returns = [float(ipd.analytic_returns(meta, row, 0.9)[1]) for row in trajectory]
        assert returns[-1] > returns[0] and np.all(np.diff(returns) > -1e-9)
        gradient = jax.grad(ipd.shaping_objective)(meta, naive, 0.9, 5, 1.0)
        direction = jnp.asarray(rng.normal(size=5))
        epsilon = 1e-6
        finite = (ipd.shaping_objective(meta + epsilon * direction, naive, 0.9, 5, 1.0)
                  - ipd.shaping_objective(meta - epsilon * direction, naive, 0.9, 5, 1.0)) / (2 * epsilon)
        np.testing.assert_allclose(float(gradient @ direction), float(finite), rtol=1e-6)
        # Learning-aware: differs from the gradient that holds the naive learner's trajectory fixed.
        fixed = jax.grad(lambda m: jnp.sum(jax.vmap(lambda n: ipd.analytic_returns(m, n, 0.9)[0])(
            jax.lax.stop_gradient(ipd.naive_learning(meta, naive, 0.9, 5, 1.0)))))(meta)
        assert float(jnp.linalg.norm(gradient - fixed)) > 1e-3


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match=r"discount must be a number in \[0, 1\)"):
        ipd.analytic_returns(jnp.zeros(5), jnp.zeros(5), 1.0)
    with pytest.raises(ValueError, match=r"logits_b must hold 5 logits"):
        ipd.analytic_returns(jnp.zeros(5), jnp.zeros(4), 0.9)
    with pytest.raises(ValueError, match="episode_length must be an integer >= 1"):
        ipd.IteratedPrisonersDilemma(episode_length=0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        ipd.naive_learning(jnp.zeros(5), jnp.zeros(5), 0.9, steps=0, learning_rate=1.0)


def test_exact_shaping_escapes_all_defect_to_extortion():
    """The analytic IPD's shaping claim: gradient ascent on the exact learning-aware objective, from an
    always-defecting meta player against a naive learner starting uniform (20 naive steps of learning
    rate 10, gamma 0.9), ends above 1 per step for the meta player while the naive learner stays far below."""
    naive = jnp.zeros(5)
    objective = lambda meta: ipd.shaping_objective(meta, naive, 0.9, 20, 10.0)
    optimizer = optax.adam(0.15)

    def step(carry, _):
        meta, state = carry
        updates, state = optimizer.update(-jax.grad(objective)(meta), state)
        return (optax.apply_updates(meta, updates), state), None

    start = jnp.full(5, -3.0)
    assert float(objective(start)) / 20 < 0.15  # all-defect: 0.12 per step, from the learner's early cooperation
    (meta, _), _ = jax.jit(lambda carry: jax.lax.scan(step, carry, None, length=600))((start, optimizer.init(start)))
    returns = jax.vmap(lambda n: jnp.stack(ipd.analytic_returns(meta, n, 0.9)))(
        ipd.naive_learning(meta, naive, 0.9, 20, 10.0))
    meta_mean, naive_mean = (float(x) for x in returns.mean(0))
    assert meta_mean > 1.0 and naive_mean < 0.5, (meta_mean, naive_mean)
