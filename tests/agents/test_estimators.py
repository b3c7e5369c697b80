"""REINFORCE and Advantage: Monte-Carlo means of their gradient estimates and credits against the
oracle on key-to-door, the return helpers, and the agent registry's errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import agents, envs, oracle
from cocoa.agents import Advantage, Reinforce, policy_surrogate, returns, tabular_policy
from cocoa.rollout import rollout
from estimator_controls import Unscaled  # tests/: the biased control

LENGTH = 7
EPSILON = 0.05
NUM_EPISODES = 20000
# Max over components of |z|: the gradient has S * A = 15 * 4 = 60 components (fewer with nonzero
# variance), the credit check about 50 cells x actions. Under the null each |z| > 5 has probability
# ~6e-7 (normal approximation, N = 20000), so max |z| > 5 happens by chance w.p. < 1e-4.
Z_BOUND = 5.0
# Cells (t, s) with fewer visits are not z-tested in the credit check (normal approximation).
MIN_VISITS = 200


@pytest.fixture(scope="module")
def setting():
    env = envs.make("LinearKeyToDoor-v0", length=LENGTH, layout_seed=1)
    mdp = env.tabular_mdp()
    logits = np.random.default_rng(0).normal(size=(mdp.num_states, mdp.num_actions)).astype(np.float32)
    policy_fn = tabular_policy(mdp, EPSILON)
    trajectory = jax.jit(lambda key: rollout(env, policy_fn, jnp.asarray(logits), key,
                                             batch_size=NUM_EPISODES, horizon=LENGTH))(jax.random.PRNGKey(42))
    with jax.enable_x64(True):
        logits64 = logits.astype(np.float64)
        probs64 = np.asarray(oracle.mixed_policy(jnp.asarray(logits64), EPSILON))
        true_gradient = np.asarray(oracle.policy_gradient(mdp, logits64, epsilon=EPSILON))
    assert np.abs(true_gradient).max() > 1e-2
    return dict(env=env, mdp=mdp, logits=logits, trajectory=trajectory, probs64=probs64,
                true_gradient=true_gradient)


@jax.jit
def per_trajectory_gradients(logits, credit, state_index, mask):
    """(B, S, A) gradient of each trajectory's surrogate sum_t sum_a pi(a | S_t) C_t(a) w.r.t. the logits."""

    def surrogate(table, credit, states, mask):
        probs = oracle.mixed_policy(table[states], EPSILON)
        return policy_surrogate(probs[None], jax.lax.stop_gradient(credit)[None], mask[None])

    return jax.vmap(jax.grad(surrogate), in_axes=(None, 0, 0, 0))(logits, credit, state_index, mask)


def gradient_z_scores(estimator, model_params, setting):
    trajectory = setting["trajectory"]
    credit = estimator.credit(model_params, trajectory)
    gradients = np.asarray(per_trajectory_gradients(jnp.asarray(setting["logits"]), credit,
                                                    trajectory.state_index, trajectory.mask), np.float64)
    gradients = gradients.reshape(NUM_EPISODES, -1)
    target = setting["true_gradient"].reshape(-1)
    mean, std = gradients.mean(0), gradients.std(0, ddof=1)
    varies = std > 1e-7
    z = (mean[varies] - target[varies]) / (std[varies] / np.sqrt(NUM_EPISODES))
    return z, mean[~varies], target[~varies], int(varies.sum())


def random_value_network(setting):
    estimator = Advantage(model_hidden_sizes=(32,))
    params = estimator.init_model(jax.random.PRNGKey(3), setting["env"].observation_shape, 4)
    values = np.asarray(estimator.values(params, jnp.asarray(setting["mdp"].observations)))
    assert np.abs(values).max() > 0.05  # a baseline far from zero, so it really changes the credit
    return estimator, params


@pytest.mark.parametrize("name", ["reinforce", "advantage"])
def test_gradient_estimate_is_unbiased(setting, name):
    if name == "reinforce":
        estimator, params = Reinforce(), {}
    else:
        estimator, params = random_value_network(setting)
    z, constant_mean, constant_target, varying = gradient_z_scores(estimator, params, setting)
    assert varying >= 30  # most components are random; the rest are checked exactly below
    assert np.abs(z).max() < Z_BOUND, f"max |z| = {np.abs(z).max():.2f}"
    np.testing.assert_allclose(constant_mean, constant_target, atol=1e-6)


def test_same_check_rejects_a_biased_estimator(setting):
    z, _, _, _ = gradient_z_scores(Unscaled(), {}, setting)
    assert np.abs(z).max() > Z_BOUND, f"max |z| = {np.abs(z).max():.2f}"


def credit_z_scores(estimator, model_params, setting):
    """z-scores of the Monte-Carlo mean of C_t(a) per (t, S_t) cell against expected_credit[t, s, a]."""
    mdp, trajectory = setting["mdp"], setting["trajectory"]
    credit = np.asarray(estimator.credit(model_params, trajectory), np.float64)  # (N, T, A)
    with jax.enable_x64(True):
        expected = np.asarray(estimator.expected_credit(model_params, mdp, setting["probs64"]))
    assert expected.shape == (mdp.horizon, mdp.num_states, mdp.num_actions)
    horizon, num_states, num_actions = expected.shape
    steps = np.broadcast_to(np.arange(LENGTH), (NUM_EPISODES, LENGTH))
    cell = (steps * num_states + np.asarray(trajectory.state_index)).reshape(-1)
    flat = credit.reshape(-1, num_actions)
    counts = np.bincount(cell, minlength=horizon * num_states)
    sums = np.zeros((horizon * num_states, num_actions))
    squares = np.zeros_like(sums)
    np.add.at(sums, cell, flat)
    np.add.at(squares, cell, flat ** 2)
    tested = counts >= MIN_VISITS
    n = counts[tested][:, None]
    mean = sums[tested] / n
    std = np.sqrt(np.maximum(squares[tested] / n - mean ** 2, 0.0) * n / (n - 1))
    target = expected.reshape(-1, num_actions)[tested]
    varies = std > 1e-6
    z = (mean[varies] - target[varies]) / (std[varies] / np.sqrt(np.broadcast_to(n, mean.shape)[varies]))
    return z, mean[~varies], target[~varies], int(tested.sum())


@pytest.mark.parametrize("name", ["reinforce", "advantage"])
def test_expected_credit_matches_monte_carlo_credit(setting, name):
    if name == "reinforce":
        estimator, params = Reinforce(), {}
    else:
        estimator, params = random_value_network(setting)
    z, constant_mean, constant_target, cells = credit_z_scores(estimator, params, setting)
    assert cells >= 8 and z.size >= 20
    assert np.abs(z).max() < Z_BOUND, f"max |z| = {np.abs(z).max():.2f}"
    np.testing.assert_allclose(constant_mean, constant_target, atol=1e-5)


def test_credit_check_rejects_the_wrong_expected_credit(setting):
    z, _, _, _ = credit_z_scores(Unscaled(), {}, setting)  # claims Q, delivers pi * Q
    assert np.abs(z).max() > Z_BOUND


def test_advantage_expected_credit_uses_the_value_network(setting):
    estimator, params = random_value_network(setting)
    mdp = setting["mdp"]
    with jax.enable_x64(True):
        probs = setting["probs64"]
        expected = np.asarray(estimator.expected_credit(params, mdp, probs))
        q = np.asarray(oracle.q_values(mdp, probs))
    values = np.asarray(estimator.values(params, jnp.asarray(mdp.observations)), np.float64)
    np.testing.assert_allclose(expected, q - values[None, :, None], rtol=1e-6, atol=1e-6)
    # The baseline leaves the exact expected gradient unchanged.
    with jax.enable_x64(True):
        logits = setting["logits"].astype(np.float64)
        with_baseline = oracle.estimator_gradient(mdp, logits, expected, epsilon=EPSILON)
    np.testing.assert_allclose(with_baseline, setting["true_gradient"], rtol=1e-6, atol=1e-7)


# --- return helpers -----------------------------------------------------------------------------

REWARDS = np.array([[1.0, 2.0, 3.0, 4.0, 5.0],
                    [0.5, -1.0, 2.0, 7.0, 9.0]], np.float32)
MASK = np.array([[1, 1, 1, 1, 1],
                 [1, 1, 1, 0, 0]], np.float32)
NEXT_VALUES = np.array([[10.0, 20.0, 30.0, 40.0, 50.0],
                        [-1.0, -2.0, -3.0, -4.0, -5.0]], np.float32)


def test_reward_to_go_on_hand_arrays():
    expected = np.array([[15.0, 14.0, 12.0, 9.0, 5.0],
                         [1.5, 1.0, 2.0, 0.0, 0.0]])
    np.testing.assert_allclose(returns.reward_to_go(REWARDS, MASK), expected)


def test_lambda_one_is_reward_to_go():
    np.testing.assert_allclose(returns.lambda_returns(REWARDS, NEXT_VALUES, MASK, 1.0),
                               returns.reward_to_go(REWARDS, MASK), rtol=1e-6)


def test_lambda_zero_is_one_step_td_target():
    # R_t + V(S_{t+1}); no bootstrap at the last step or where the next step is padding.
    expected = np.array([[11.0, 22.0, 33.0, 44.0, 5.0],
                         [-0.5, -3.0, 2.0, 0.0, 0.0]])
    np.testing.assert_allclose(returns.lambda_returns(REWARDS, NEXT_VALUES, MASK, 0.0), expected)


def test_intermediate_lambda_matches_recursion():
    td_lambda = 0.5
    expected = np.zeros_like(REWARDS)
    for b in range(2):
        following = 0.0
        for t in reversed(range(5)):
            if not MASK[b, t]:
                continue
            live_next = t + 1 < 5 and MASK[b, t + 1]
            bootstrap = NEXT_VALUES[b, t] if live_next else 0.0
            following = REWARDS[b, t] + (1 - td_lambda) * bootstrap + td_lambda * (following if live_next else 0.0)
            expected[b, t] = following
    assert expected[0, 0] == pytest.approx(1 + 0.5 * 10 + 0.5 * expected[0, 1])
    np.testing.assert_allclose(returns.lambda_returns(REWARDS, NEXT_VALUES, MASK, td_lambda), expected, rtol=1e-6)


def test_score_credit_is_zero_on_padding_and_off_action():
    probs = np.full((2, 5, 3), 1 / 3, np.float32)
    actions = np.array([[0, 1, 2, 0, 1], [2, 2, 1, 0, 0]], np.int32)
    credit = np.asarray(agents.reinforce.credit(REWARDS, actions, probs, MASK))
    assert credit.shape == (2, 5, 3)
    np.testing.assert_allclose(credit[1, 3:], 0.0)
    taken = np.take_along_axis(credit, actions[..., None], -1)[..., 0]
    np.testing.assert_allclose(taken, 3 * returns.reward_to_go(REWARDS, MASK), rtol=1e-6)
    assert np.count_nonzero(credit) == np.count_nonzero(taken)


# --- registry errors ----------------------------------------------------------------------------

def test_unknown_agent_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown agent 'nope'; known agents: .*advantage.*reinforce"):
        agents.make("nope", num_actions=4)


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(ValueError, match=r"agent 'reinforce' has no option\(s\) colour; shared options: "
                                         r"hidden_sizes, learning_rate.*; reinforce options: none"):
        agents.make("reinforce", num_actions=4, colour="red")
    with pytest.raises(ValueError, match=r"agent 'advantage' has no option\(s\) lambda; .*advantage options: "
                                         r"model_hidden_sizes, td_lambda"):
        agents.make("advantage", num_actions=4, **{"lambda": 0.9})
    with pytest.raises(ValueError, match=r"estimator 'advantage' has no option\(s\) learning_rate; it accepts: "
                                         r"model_hidden_sizes=\(256,\), td_lambda=1\.0"):
        agents.make_estimator("advantage", learning_rate=0.1)


@pytest.mark.parametrize("options, pattern", [
    (dict(learning_rate=-1e-3), r"learning_rate must be a positive number; got -0\.001"),
    (dict(learning_rate=0), r"learning_rate must be a positive number; got 0"),
    (dict(learning_rate="fast"), r"agent 'advantage': learning_rate must be a number; got 'fast' \(default 0\.001\)"),
    (dict(model_learning_rate=-1.0), r"model_learning_rate must be a positive number"),
    (dict(epsilon=1.5), r"epsilon must lie in \[0, 1\]; got 1\.5"),
    (dict(td_lambda=1.5), r"td_lambda must lie in \[0, 1\]; got 1\.5"),
])
def test_bad_agent_options(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        agents.make("advantage", num_actions=4, **options)


def test_make_builds_the_requested_agent():
    agent = agents.make("advantage", num_actions=4, learning_rate=3e-4, td_lambda=0.5)
    assert agent.name == "advantage" and agent.config.learning_rate == 3e-4
    assert isinstance(agent.estimator, Advantage) and agent.estimator.td_lambda == 0.5
    assert set(agents.names()) >= {"advantage", "reinforce"}
