"""REINFORCE and Advantage beyond the conformance suite (test_conformance): the value network's
expected credit, the return helpers, score-form credit, and the agent registry's errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import agents, oracle
from cocoa.agents import Advantage, returns
from estimator_checks import EPSILON, lambda_returns_by_hand


def random_value_network(setting):
    estimator = Advantage(model_hidden_sizes=(32,))
    params = estimator.init_model(jax.random.PRNGKey(3), setting["env"].observation_shape, 4)
    values = np.asarray(estimator.values(params, jnp.asarray(setting["mdp"].observations)))
    assert np.abs(values).max() > 0.05  # a baseline far from zero, so it really changes the credit
    return estimator, params


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
    expected = lambda_returns_by_hand(REWARDS, NEXT_VALUES, MASK, td_lambda)
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
    (dict(learning_rate=-1e-3), r"learning_rate must be a finite positive number; got -0\.001"),
    (dict(learning_rate=0), r"learning_rate must be a finite positive number; got 0"),
    (dict(learning_rate=float("nan")), r"learning_rate must be a finite positive number; got nan"),
    (dict(learning_rate="fast"), r"agent 'advantage': learning_rate must be a number; got 'fast' \(default 0\.001\)"),
    (dict(model_learning_rate=-1.0), r"model_learning_rate must be a finite positive number"),
    (dict(model_learning_rate=float("inf")), r"model_learning_rate must be a finite positive number; got inf"),
    (dict(entropy_coef=float("nan")), r"entropy_coef must be a finite number >= 0; got nan"),
    (dict(max_grad_norm=float("nan")), r"max_grad_norm must be a finite positive number; got nan"),
    (dict(weight_decay=float("inf")), r"weight_decay must be a finite number >= 0; got inf"),
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
