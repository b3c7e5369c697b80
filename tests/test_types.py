"""TabularMDP: validation of every field, dense transitions, pytree behaviour under jit."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa.types import TabularMDP, Trajectory


def small_fields() -> dict:
    """A valid 3-state, 2-action MDP with two successor slots; state 2 is terminal.

    State 0, action 0 -> 1 (0.25) or 2 (0.75); action 1 -> 0 twice (0.5 + 0.5, a duplicate).
    State 1, action 0 -> 2 (1.0; second slot unused with probability 0); action 1 -> 0 or 1 (0.5 each).
    """
    successors = np.array([
        [[1, 2], [0, 0]],
        [[2, 0], [0, 1]],
        [[2, 2], [2, 2]],
    ], dtype=np.int32)
    successor_probs = np.array([
        [[0.25, 0.75], [0.5, 0.5]],
        [[1.0, 0.0], [0.5, 0.5]],
        [[1.0, 0.0], [0.5, 0.5]],
    ])
    reward_values = np.array([0.0, 1.0, -2.0])
    reward_probs = np.array([
        [[1.0, 0.0, 0.0], [0.2, 0.8, 0.0]],
        [[0.0, 0.5, 0.5], [0.0, 0.0, 1.0]],
        [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
    ])
    return dict(
        successors=successors,
        successor_probs=successor_probs,
        reward_values=reward_values,
        reward_probs=reward_probs,
        initial=np.array([0.6, 0.4, 0.0]),
        observations=np.eye(3, dtype=np.float32),
        terminal=np.array([False, False, True]),
        horizon=4,
    )


def with_changes(**changes) -> dict:
    fields = small_fields()
    fields.update(changes)
    return fields


def test_valid_mdp_builds_and_reports_sizes():
    mdp = TabularMDP(**small_fields())
    assert (mdp.num_states, mdp.num_actions, mdp.num_successors, mdp.num_reward_values) == (3, 2, 2, 3)
    np.testing.assert_allclose(mdp.expected_rewards(), [[0.0, 0.8], [-0.5, -2.0], [0.0, 0.0]])


def test_dense_transitions_of_hand_built_mdp():
    mdp = TabularMDP(**small_fields())
    expected = np.zeros((3, 2, 3))
    expected[0, 0] = [0.0, 0.25, 0.75]
    expected[0, 1] = [1.0, 0.0, 0.0]  # the duplicate successor 0 adds up
    expected[1, 0] = [0.0, 0.0, 1.0]
    expected[1, 1] = [0.5, 0.5, 0.0]
    expected[2, :] = [0.0, 0.0, 1.0]
    dense = mdp.dense_transitions()
    assert dense.shape == (3, 2, 3)
    np.testing.assert_allclose(dense, expected, atol=1e-12)


@pytest.mark.parametrize("changes, pattern", [
    (dict(successors=np.zeros((3, 2), np.int32)), r"successors.*shape \(S, A, N\)"),
    (dict(successors=np.zeros((3, 2, 2))), r"successors must be integers"),
    (dict(successor_probs=np.full((3, 2, 3), 1 / 3)), r"successor_probs must have shape \(3, 2, 2\)"),
    (dict(reward_values=np.zeros((3, 1))), r"reward_values must have shape \(K,\)"),
    (dict(reward_probs=np.full((3, 2, 2), 0.5)), r"reward_probs must have shape \(3, 2, 3\)"),
    (dict(initial=np.array([1.0, 0.0])), r"initial must have shape \(3,\)"),
    (dict(observations=np.eye(2)), r"observations must have shape \(S=3, \.\.\.\)"),
    (dict(observations=np.arange(3.0)), r"observations must have shape \(S=3, \.\.\.\)"),
    (dict(terminal=np.array([False, True])), r"terminal must have shape \(3,\)"),
], ids=["successors-rank", "successors-dtype", "successor_probs-shape", "reward_values-rank",
        "reward_probs-shape", "initial-shape", "observations-rows", "observations-rank", "terminal-shape"])
def test_wrong_shapes_are_rejected_naming_the_field(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        TabularMDP(**with_changes(**changes))


def test_negative_probabilities_are_rejected():
    fields = small_fields()
    probs = fields["successor_probs"].copy()
    probs[0, 0] = [1.5, -0.5]  # still sums to one
    with pytest.raises(ValueError, match=r"successor_probs must be finite and non-negative; min -0\.5"):
        TabularMDP(**with_changes(successor_probs=probs))
    rewards = fields["reward_probs"].copy()
    rewards[1, 1] = [-0.1, 0.1, 1.0]
    with pytest.raises(ValueError, match=r"reward_probs must be finite and non-negative"):
        TabularMDP(**with_changes(reward_probs=rewards))
    with pytest.raises(ValueError, match=r"initial must be finite and non-negative"):
        TabularMDP(**with_changes(initial=np.array([1.2, -0.2, 0.0])))


def test_nan_probabilities_are_rejected():
    probs = small_fields()["reward_probs"].copy()
    probs[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"reward_probs must be finite"):
        TabularMDP(**with_changes(reward_probs=probs))


@pytest.mark.parametrize("name, index", [
    ("successor_probs", (1, 1)),
    ("reward_probs", (0, 1)),
    ("initial", ()),
])
def test_rows_not_summing_to_one_name_field_and_index(name, index):
    fields = small_fields()
    probs = fields[name].copy()
    probs[index] = probs[index] * 0.5
    expected_sum = probs[index].sum()
    shown = "(" + ", ".join(str(i) for i in index) + ("," if len(index) == 1 else "") + ")"
    pattern = (rf"TabularMDP\.{name} must sum to one over its last axis; at index "
               rf"{re.escape(shown)} it sums to {expected_sum:.6g}")
    with pytest.raises(ValueError, match=pattern):
        TabularMDP(**with_changes(**{name: probs}))


def test_successor_out_of_range_is_rejected():
    successors = small_fields()["successors"].copy()
    successors[1, 0, 1] = 3  # its probability is 0, but the index is still invalid
    with pytest.raises(ValueError, match=r"successors must lie in \[0, 3\); got values in \[0, 3\]"):
        TabularMDP(**with_changes(successors=successors))
    successors[1, 0, 1] = -1
    with pytest.raises(ValueError, match=r"successors must lie in \[0, 3\); got values in \[-1, 2\]"):
        TabularMDP(**with_changes(successors=successors))


@pytest.mark.parametrize("horizon", [0, -3, 2.0])
def test_bad_horizon_is_rejected(horizon):
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1"):
        TabularMDP(**with_changes(horizon=horizon))


def test_non_absorbing_terminal_is_rejected():
    fields = small_fields()
    successors = fields["successors"].copy()
    successors[2, 1] = [2, 0]  # terminal state 2 leaks half its mass to state 0
    with pytest.raises(ValueError, match=r"terminal states must be absorbing"):
        TabularMDP(**with_changes(successors=successors))
    # Marking a live state terminal is equally wrong: state 0 moves elsewhere.
    with pytest.raises(ValueError, match=r"terminal states must be absorbing"):
        TabularMDP(**with_changes(terminal=np.array([True, False, True])))


def test_terminal_paying_reward_is_rejected():
    rewards = small_fields()["reward_probs"].copy()
    rewards[2, 0] = [0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match=r"terminal states must pay no reward; expected reward 0\.5"):
        TabularMDP(**with_changes(reward_probs=rewards))


def test_non_finite_reward_values_and_observations_are_rejected():
    with pytest.raises(ValueError, match=r"reward_values must be finite"):
        TabularMDP(**with_changes(reward_values=np.array([0.0, np.inf, 1.0])))
    observations = np.eye(3)
    observations[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"observations must be finite"):
        TabularMDP(**with_changes(observations=observations))


def test_valid_mdp_is_a_pytree_through_jit():
    mdp = TabularMDP(**small_fields())
    leaves, treedef = jax.tree_util.tree_flatten(mdp)
    assert len(leaves) == 7  # horizon is static metadata, not a leaf
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.horizon == 4

    @jax.jit
    def summary(m: TabularMDP):
        # Uses the static horizon as a Python int inside the trace.
        return jnp.sum(m.successor_probs) * m.horizon, m.expected_rewards(), m

    total, rewards, passed = summary(mdp)
    assert float(total) == pytest.approx(6.0 * 4)
    np.testing.assert_allclose(rewards, mdp.expected_rewards(), rtol=1e-6)
    assert isinstance(passed, TabularMDP) and passed.horizon == 4
    np.testing.assert_array_equal(passed.successors, mdp.successors)

    # A different horizon is a different static argument: the function retraces and sees it.
    longer = dataclasses.replace(mdp, horizon=7)
    assert float(summary(longer)[0]) == pytest.approx(6.0 * 7)


def test_trajectory_is_a_pytree_with_shape_properties():
    batch, length, actions = 2, 5, 3
    trajectory = Trajectory(
        observations=np.zeros((batch, length, 4), np.float32), actions=np.zeros((batch, length), np.int32),
        rewards=np.ones((batch, length), np.float32), dones=np.zeros((batch, length), bool),
        mask=np.ones((batch, length), np.float32), policy_probs=np.full((batch, length, actions), 1 / 3),
        state_index=np.zeros((batch, length), np.int32), info={"x": np.zeros((batch, length))})
    assert (trajectory.batch_size, trajectory.length, trajectory.num_actions) == (batch, length, actions)
    total = jax.jit(lambda t: jnp.sum(t.rewards * t.mask))(trajectory)
    assert float(total) == 10.0


def test_per_state_tables_need_a_state_table():
    import jax
    import numpy as np
    import pytest

    from cocoa import agents, envs
    from cocoa.rollout import rollout

    env = envs.make("LinearKeyToDoor-v0", length=5)
    agent = agents.make_for_env("reinforce", env)
    params = agent.init(jax.random.PRNGKey(0), env.observation_shape).policy_params
    per_step = rollout(env, agent.behaviour_probs, params, jax.random.PRNGKey(1), batch_size=2, horizon=5,
                       per_state=False)
    with pytest.raises(ValueError, match="carries no state table"):
        per_step.state_observations()
    with pytest.raises(ValueError, match="carries no state table"):
        per_step.per_state(per_step.policy_probs)
    per_state = rollout(env, agent.behaviour_probs, params, jax.random.PRNGKey(1), batch_size=2, horizon=5,
                        per_state=True)
    table = per_state.per_state(per_state.policy_probs, fill=1.0)
    assert table.shape == (env.tabular_mdp().num_states, env.num_actions)
    np.testing.assert_allclose(table[per_state.state_index], per_state.policy_probs)
