"""Task interleaving: the rules the conformance suite does not pin down."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import envs, oracle
from cocoa.agents import tabular_policy
from cocoa.envs.task_interleaving import count_states
from cocoa.rollout import rollout


def _query_policy(env, mdp, correct: bool):
    """Pick the rewarding side in every query room (or the other one); answer rooms: uniform."""
    probs = np.full((mdp.num_states, 2), 0.5)
    for index, (_, _, arrangement) in enumerate(env._states):
        if arrangement < env.arrangements:
            side = arrangement % env.sides
            probs[index] = np.eye(2)[side if correct else 1 - side]
    return jnp.asarray(probs)


def test_state_counts_match_the_formula():
    assert envs.make("TaskInterleaving-v0").tabular_mdp().num_states == 1651 == count_states(5, 3, 8) + 1
    assert envs.make("TaskInterleaving-v0", random_sides=False).tabular_mdp().num_states == 991
    assert envs.make("TaskInterleaving-v0", contexts=3, max_open=3, objects=1).tabular_mdp().num_states == \
        count_states(3, 3, 2) + 1


def test_an_answer_pays_its_contexts_reward_exactly_when_the_query_was_right():
    env = envs.make("TaskInterleaving-v0")
    mdp = env.tabular_mdp()
    right, wrong = _query_policy(env, mdp, True), _query_policy(env, mdp, False)
    assert float(oracle.expected_return(mdp, wrong)) == pytest.approx(0.0, abs=1e-6)
    best = float(oracle.expected_return(mdp, right))
    uniform = float(oracle.expected_return(mdp, jnp.full((mdp.num_states, 2), 0.5)))
    # A uniform pick is right half the time, and what an answer pays depends on nothing else.
    assert best == pytest.approx(2.0 * uniform, rel=1e-5) and best > 1.0
    # Sampled: every answer after a right query pays rho_c, one of linspace(0.2, 1, 5).
    logits = jnp.log(jnp.maximum(right, 1e-9))
    trajectory = jax.jit(lambda key: rollout(env, tabular_policy(mdp), logits, key, batch_size=2000,
                                             horizon=100))(jax.random.PRNGKey(0))
    metrics = env.episode_metrics(trajectory.info, trajectory.mask)
    answered = np.asarray(trajectory.info["answer"]).sum(-1) > 0
    assert np.all(np.asarray(metrics["correct_query_rate"])[np.asarray(trajectory.info["query"]).sum(-1) > 0] == 1.0)
    assert np.all(np.asarray(metrics["rewarded_answer_rate"])[answered] == 1.0)
    paid = np.asarray(trajectory.rewards)[np.asarray(trajectory.info["answer"])]
    np.testing.assert_allclose(np.unique(paid), [0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    returns = np.asarray(trajectory.rewards.sum(-1))
    assert abs(returns.mean() - best) < 4 * returns.std() / np.sqrt(returns.size)


def test_at_most_max_open_contexts_are_open_and_episodes_end():
    env = envs.make("TaskInterleaving-v0", contexts=4, max_open=2, termination_prob=0.0, max_steps=30)
    trajectory = rollout(env, lambda p, o: jnp.full((o.shape[0], 2), 0.5), None, jax.random.PRNGKey(2),
                         batch_size=200, horizon=31)
    codes = env._states[np.asarray(trajectory.state_index)[np.asarray(trajectory.mask) > 0], 0]
    open_count = ((codes[:, None] // 3 ** np.arange(4)) % 3 != 0).sum(-1)
    assert open_count.max() == 2
    assert np.all(np.asarray(trajectory.mask).sum(-1) == 30)  # no termination draw: the cap ends them all


@pytest.mark.parametrize("params, message", [
    (dict(max_open=6), r"max_open must be an integer in \[1, 5\]"),
    (dict(contexts=0), "contexts must be an integer >= 1"),
    (dict(max_steps=-1), "max_steps must be an integer >= 1"),
    (dict(objects=0), "objects must be an integer >= 1"),
    (dict(termination_prob=1.5), r"termination_prob must be a probability in \[0, 1\]; got 1.5"),
    (dict(termination_prob=-0.1), r"termination_prob must be a probability in \[0, 1\]"),
    (dict(random_sides="yes"), "random_sides must be True or False"),
    (dict(contexts=9, max_open=9, objects=3), "states; at most 100,000 are supported"),
])
def test_bad_parameters_name_themselves(params, message):
    with pytest.raises(ValueError, match=message):
        envs.make("TaskInterleaving-v0", **params)


def test_exact_cocoa_reward_keeps_the_contexts_apart():
    """The paper's claim, exactly: with the oracle's coefficients a query's credit moves only for its own
    context's answer reward (off-diagonal |w - 1| is 0 up to float32 rounding: another context's reward
    does not depend on this choice), and the matrix is not trivially zero on the diagonal."""
    from cocoa import agents
    from cocoa.disentangling import context_credit_matrix

    env = envs.make("TaskInterleaving-v0", contexts=3, max_open=2, objects=1)
    agent = agents.make_for_env("cocoa-reward-gt", env)
    state = agent.init(jax.random.PRNGKey(0), env.observation_shape)
    matrix, count = context_credit_matrix(env, agent, state, episodes=500)
    off = ~np.eye(3, dtype=bool)
    assert count.min() > 20
    assert np.nanmax(matrix[off]) < 1e-4 and matrix.diagonal().min() > 0.1, matrix
    with pytest.raises(ValueError, match="no reward-valued contribution coefficients"):
        context_credit_matrix(env, agents.make_for_env("advantage", env), state)
