"""bsuite's umbrella and discounting chains: the rules that the conformance suite does not pin down."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import agents, envs, oracle
from cocoa.rollout import rollout
from cocoa.train import TrainConfig, train


def _first_action_policy(mdp, choose):
    """A tabular policy: at t = 0 the action ``choose(observation)``, later uniform."""
    observations = np.asarray(mdp.observations)
    probs = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    for state in np.flatnonzero(np.asarray(mdp.initial) > 0):
        probs[state] = np.eye(mdp.num_actions)[choose(observations[state])]
    return jnp.asarray(probs)


def test_only_the_umbrella_decision_counts():
    env = envs.make("UmbrellaChain-v0", length=10, distractors=2)
    mdp = env.tabular_mdp()
    assert mdp.num_states == 4 * 10 * 4 + 1 and mdp.num_successors == 4
    take_if_needed = _first_action_policy(mdp, lambda obs: int(obs[0]))
    never = _first_action_policy(mdp, lambda obs: 0)
    uniform = jnp.full((mdp.num_states, 2), 0.5)
    assert float(oracle.expected_return(mdp, take_if_needed)) == pytest.approx(1.0, abs=1e-5)
    assert float(oracle.expected_return(mdp, never)) == pytest.approx(0.0, abs=1e-5)
    assert float(oracle.expected_return(mdp, uniform)) == pytest.approx(0.0, abs=1e-5)
    # The noise: every step but the last pays +-1, so the return's variance is (length - 1) + 1.
    trajectory = jax.jit(lambda key: rollout(env, lambda p, o: jnp.full((o.shape[0], 2), 0.5), None, key,
                                             batch_size=4000, horizon=10))(jax.random.PRNGKey(0))
    returns = np.asarray(trajectory.rewards.sum(-1))
    assert set(np.unique(np.asarray(trajectory.rewards))) == {-1.0, 1.0}
    assert returns.var() == pytest.approx(10.0, rel=0.1)


def test_umbrella_chain_without_noise_pays_only_at_the_end():
    env = envs.make("UmbrellaChain-v0", length=5, noisy_rewards=False)
    trajectory = rollout(env, lambda p, o: jnp.full((o.shape[0], 2), 0.5), None, jax.random.PRNGKey(1),
                         batch_size=64, horizon=5)
    assert not np.asarray(trajectory.rewards)[:, :4].any()
    assert set(np.unique(np.asarray(trajectory.rewards)[:, 4])) <= {-1.0, 1.0}


def test_many_distractors_train_without_a_table_and_refuse_one():
    env = envs.make("UmbrellaChain-v0", length=20, distractors=20)  # bsuite's umbrella_length setting
    assert not env.is_tabular
    with pytest.raises(ValueError, match=r"20 distractor bits .* up to 4 length 4\^n <= 2,000,000"):
        env.tabular_mdp()
    with pytest.raises(ValueError, match="2,000,000 table entries"):
        agents.make_for_env("advantage-gt", env)
    result = train(env, agents.make_for_env("advantage", env), TrainConfig(updates=2, eval_interval=2,
                                                                           eval_episodes=4), progress=False)
    assert {"return", "correct_rate"} <= set(result.rows[-1]) and "exact_return" not in result.rows[-1]


def test_the_bonus_chain_pays_ten_percent_more_after_its_delay():
    env = envs.make("DiscountingChain-v0", bonus_chain=3)
    mdp = env.tabular_mdp()
    assert mdp.num_states == 2 + 5 * 99 and mdp.horizon == 100
    for chain, expected in enumerate([1.0, 1.0, 1.0, 1.1, 1.0]):
        policy = _first_action_policy(mdp, lambda obs, chain=chain: chain)
        assert float(oracle.expected_return(mdp, policy)) == pytest.approx(expected, abs=1e-5)
    # The reward arrives exactly delays[c] steps after the start (index delays[c] - 1).
    trajectory = rollout(env, lambda p, o: jnp.broadcast_to(jnp.eye(5)[4], (o.shape[0], 5)), None,
                         jax.random.PRNGKey(0), batch_size=2, horizon=100)
    assert np.flatnonzero(np.asarray(trajectory.rewards)[0]).tolist() == [99]
    assert env.episode_metrics(trajectory.info, trajectory.mask)["bonus_rate"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("name, params, message", [
    ("UmbrellaChain-v0", dict(length=0), "length must be an integer >= 1"),
    ("UmbrellaChain-v0", dict(length=-4), "length must be an integer >= 1"),
    ("UmbrellaChain-v0", dict(distractors=-1), "distractors must be an integer >= 0"),
    ("UmbrellaChain-v0", dict(noisy_rewards=1), "noisy_rewards must be True or False; got 1"),
    ("DiscountingChain-v0", dict(delays=(1, 200)), r"delays must lie in \[1, length=100\]"),
    ("DiscountingChain-v0", dict(delays=(0, 3)), r"delays must lie in \[1, length=100\]"),
    ("DiscountingChain-v0", dict(delays=(5,)), "delays must be at least two integers"),
    ("DiscountingChain-v0", dict(bonus_chain=5), r"bonus_chain must be an integer in \[0, 4\]"),
    ("DiscountingChain-v0", dict(length=-1), "length must be an integer >= 1"),
    ("DiscountingChain-v0", dict(bonus=float("nan")), "bonus must be a finite number"),
])
def test_bad_parameters_name_themselves(name, params, message):
    with pytest.raises(ValueError, match=message):
        envs.make(name, **params)
