"""Tree with state overlap: node counts, overlap structure, sampled dynamics against the tabular
form, the oracle against brute-force enumeration, parameter errors, Gymnasium."""

import itertools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cocoa  # noqa: F401  (registers the Gymnasium ids)
from cocoa import envs, oracle
from cocoa.agents import tabular_policy
from cocoa.envs import Tree
from cocoa.rollout import rollout

NAME = "Tree-v0"


def _action_sequences(branching, length):
    """(branching**length, length) every action sequence, in lexicographic order."""
    return np.array(list(itertools.product(range(branching), repeat=length)), dtype=np.int64)


def _walk(successors, sequences):
    """(N, T + 1) tabular states visited by each action sequence, from the root (state 0)."""
    states = np.zeros((len(sequences), sequences.shape[1] + 1), np.int64)
    for t in range(sequences.shape[1]):
        states[:, t + 1] = successors[states[:, t], sequences[:, t]]
    return states


# --- structure --------------------------------------------------------------------------------

@pytest.mark.parametrize("overlap, counts", [
    (0, (1, 6, 36, 216)),  # 6^i
    (1, (1, 6, 30, 150)),  # x5
    (2, (1, 6, 24, 96)),   # x4
    (3, (1, 6, 18, 54)),   # x3
    (4, (1, 6, 12, 24)),   # x2
    (5, (1, 6, 6, 6)),     # max(6 * 1, 6)
    (6, (1, 6, 6, 6)),     # max(0, 6)
])
def test_node_counts(overlap, counts):
    env = envs.make(NAME, overlap=overlap)
    assert env.node_counts == counts
    num_states = sum(counts) + 1
    assert env.num_states == num_states and env.observation_shape == (num_states,)
    mdp = env.tabular_mdp()
    assert mdp.num_states == num_states and mdp.num_actions == 6 and mdp.num_successors == 1
    assert mdp.horizon == 4 and env.max_episode_steps == 4
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), [num_states - 1])
    # Every level is entered exactly on its own index range, and every node of it is reachable.
    successors = np.asarray(mdp.successors)[..., 0]
    states = _walk(successors, _action_sequences(6, 4))
    offsets = np.cumsum((0,) + counts)
    for level in range(4):
        reached = np.unique(states[:, level])
        np.testing.assert_array_equal(reached, np.arange(offsets[level], offsets[level + 1]))
    np.testing.assert_array_equal(states[:, 4], num_states - 1)


def test_node_counts_other_branching():
    # b = 5, o = 2: n = 1, max(3, 5) = 5, 15, 45, 135.
    assert envs.make(NAME, depth=5, branching=5, overlap=2).node_counts == (1, 5, 15, 45, 135)
    # b = 3, o = 1: n = 1, max(2, 3) = 3, 6, 12 ; depth 1 is a single decision.
    assert envs.make(NAME, depth=4, branching=3, overlap=1).node_counts == (1, 3, 6, 12)
    assert envs.make(NAME, depth=1).node_counts == (1,)


def test_children_follow_the_formula_on_hand_computed_nodes():
    # o = 0, b = 6: child of the root under a is (a - 3) mod 6, tabular index 1 + that.
    successors = np.asarray(envs.make(NAME, overlap=0).tabular_mdp().successors)[..., 0]
    np.testing.assert_array_equal(successors[0], [4, 5, 6, 1, 2, 3])
    # o = 2 (stride 4, shift 2): root -> (a - 2) mod 6; node (1, 2) under a -> (8 + a - 2) mod 24 at
    # offset 7; node (1, 0) under a -> (a - 2) mod 24 (wraps to 22, 23).
    successors = np.asarray(envs.make(NAME, overlap=2).tabular_mdp().successors)[..., 0]
    np.testing.assert_array_equal(successors[0], [5, 6, 1, 2, 3, 4])
    np.testing.assert_array_equal(successors[1 + 2], 7 + np.array([6, 7, 8, 9, 10, 11]))
    np.testing.assert_array_equal(successors[1 + 0], 7 + np.array([22, 23, 0, 1, 2, 3]))
    # The last level (offset 31, 96 nodes) leads to the terminal state 127, which is absorbing.
    np.testing.assert_array_equal(successors[31:127], 127)
    np.testing.assert_array_equal(successors[127], 127)


@pytest.mark.parametrize("branching, depth", [(6, 4), (4, 5)])
def test_without_overlap_every_state_has_a_unique_action_history(branching, depth):
    mdp = envs.make(NAME, depth=depth, branching=branching, overlap=0).tabular_mdp()
    successors = np.asarray(mdp.successors)[..., 0]
    sequences = _action_sequences(branching, depth)
    states = _walk(successors, sequences)
    for level in range(1, depth):
        # Distinct histories (prefixes of length `level`) must reach distinct states.
        histories, first = np.unique(sequences[:, :level], axis=0, return_index=True)
        assert len(histories) == branching ** level
        reached = states[first, level]
        assert len(np.unique(reached)) == len(histories), f"two histories share a state at level {level}"
    # With overlap the same count of histories lands on fewer states: histories are not unique.
    overlapping = np.asarray(envs.make(NAME, depth=depth, branching=branching, overlap=1).tabular_mdp().successors)
    shared = _walk(overlapping[..., 0], sequences)
    assert len(np.unique(shared[:, depth - 1])) < branching ** (depth - 1)


@pytest.mark.parametrize("branching, depth, overlap", [(6, 4, o) for o in range(1, 7)] + [(5, 4, 2), (4, 5, 2), (4, 5, 3)])
def test_neighbouring_parents_share_overlap_children(branching, depth, overlap):
    env = envs.make(NAME, depth=depth, branching=branching, overlap=overlap)
    successors = np.asarray(env.tabular_mdp().successors)[..., 0]
    offsets = np.cumsum((0,) + env.node_counts)
    for level in range(1, depth - 1):  # levels with several parents and children that are states
        parents = np.arange(offsets[level], offsets[level + 1])
        num_children = env.node_counts[level + 1]
        # A level needs 2b - o nodes for neighbouring parents' b consecutive children (on a ring)
        # to overlap in exactly o; below that (o = b - 1, whose levels hold b nodes) they share all.
        expected = overlap if num_children >= 2 * branching - overlap else num_children
        for i, parent in enumerate(parents):
            children = set(successors[parent])
            assert len(children) == branching, "an action must not repeat a child"
            neighbour = set(successors[parents[(i + 1) % len(parents)]])
            assert len(children & neighbour) == expected, (level, i)
    if overlap < branching - 1:
        assert all(n >= 2 * branching - overlap for n in env.node_counts[2:])


# --- rewards ----------------------------------------------------------------------------------

def test_rewards_are_a_seeded_integer_table():
    env = envs.make(NAME)
    table = env.reward_table
    assert table.shape == (259, 6)
    assert set(np.unique(table)) == {-2, -1, 0, 1, 2}
    np.testing.assert_array_equal(np.asarray(env.default_params.rewards), table)
    np.testing.assert_array_equal(envs.make(NAME, reward_seed=0).reward_table, table)
    assert not np.array_equal(envs.make(NAME, reward_seed=1).reward_table, table)
    mdp = env.tabular_mdp()
    np.testing.assert_array_equal(mdp.reward_values, [-2, -1, 0, 1, 2])
    reward_probs = np.asarray(mdp.reward_probs)
    assert set(np.unique(reward_probs)) == {0.0, 1.0}
    np.testing.assert_array_equal(np.asarray(mdp.expected_rewards())[:-1], table)
    np.testing.assert_array_equal(np.asarray(mdp.expected_rewards())[-1], 0.0)


def test_reward_values_include_zero_when_the_table_lacks_it():
    # A 1-level tree with 2 actions has only two rewards; a seed whose two rewards are both nonzero.
    seed = next(s for s in range(100) if np.all(envs.make(NAME, depth=1, branching=2, reward_seed=s).reward_table != 0))
    env = envs.make(NAME, depth=1, branching=2, reward_seed=seed)
    mdp = env.tabular_mdp()
    np.testing.assert_array_equal(mdp.reward_values, np.unique(np.append(env.reward_table, 0)))
    assert 0.0 in np.asarray(mdp.reward_values)


# --- sampled dynamics against the tabular form -------------------------------------------------

@pytest.mark.parametrize("depth, branching, overlap", [(3, 6, 0), (4, 6, 4), (4, 4, 2), (4, 6, 6)])
def test_sampled_dynamics_match_tabular_mdp(depth, branching, overlap):
    env = envs.make(NAME, depth=depth, branching=branching, overlap=overlap, reward_seed=depth + overlap)
    mdp = env.tabular_mdp()
    batch = 4000
    logits = np.random.default_rng(overlap).normal(size=(mdp.num_states, mdp.num_actions)).astype(np.float32)
    policy_fn = tabular_policy(mdp, epsilon=0.3)

    @jax.jit
    def run(key):
        return rollout(env, policy_fn, jnp.asarray(logits), key, batch_size=batch, horizon=depth + 1)

    trajectory = jax.device_get(run(jax.random.PRNGKey(overlap)))
    states = np.asarray(trajectory.state_index)
    actions = np.asarray(trajectory.actions)
    rewards = np.asarray(trajectory.rewards, np.float64)
    terminal = mdp.num_states - 1

    # Exactly `depth` steps; the extra scanned step is padding.
    np.testing.assert_array_equal(trajectory.mask, np.broadcast_to(np.arange(depth + 1) < depth, (batch, depth + 1)))
    np.testing.assert_array_equal(trajectory.dones, np.broadcast_to(np.arange(depth + 1) == depth - 1, (batch, depth + 1)))
    np.testing.assert_array_equal(states[:, 0], 0)
    np.testing.assert_array_equal(states[:, depth], terminal)
    np.testing.assert_allclose(trajectory.observations, np.asarray(mdp.observations)[states], rtol=0, atol=0)

    # Deterministic dynamics: every recorded transition and reward is the table's.
    successors = np.asarray(mdp.successors)[..., 0]
    np.testing.assert_array_equal(states[:, 1:], successors[states[:, :-1], actions[:, :-1]])
    expected_rewards = np.asarray(mdp.expected_rewards(), np.float64)
    np.testing.assert_array_equal(rewards[:, :depth], expected_rewards[states[:, :depth], actions[:, :depth]])
    np.testing.assert_array_equal(rewards[:, depth], 0.0)
    # The sample covers every state and most state-actions, so the comparison is not vacuous.
    assert np.array_equal(np.unique(states), np.arange(mdp.num_states))
    pairs = np.unique(states[:, :depth] * branching + actions[:, :depth])
    assert len(pairs) >= 0.9 * (mdp.num_states - 1) * branching
    assert len(np.unique(rewards[:, :depth])) == 5


def test_hand_played_episode_and_absorbing_terminal_state():
    env = envs.make(NAME, overlap=2, reward_seed=7)
    params = env.default_params
    actions = np.array([0, 5, 3, 1, 0, 5])  # two extra steps after the episode ends

    @jax.jit
    def play(actions):
        observation, state = env.reset(jax.random.PRNGKey(0))

        def step(state, action):
            obs, next_state, reward, done, _ = env.step(jax.random.PRNGKey(1), state, action)
            return next_state, (obs, env.state_index(next_state, params), reward, done)

        return observation, jax.lax.scan(step, state, jnp.asarray(actions, jnp.int32))[1]

    first, (observations, indices, rewards, dones) = jax.device_get(play(actions))
    # By hand (b = 6, o = 2: stride 4, shift 2; offsets 0, 1, 7, 31; terminal 127):
    # root -a0-> (1, (0 - 2) mod 6 = 4) = 5 -a5-> (2, (16 + 5 - 2) mod 24 = 19) = 26
    #      -a3-> (3, (76 + 3 - 2) mod 96 = 77) = 108 -a1-> terminal 127.
    path = [0, 5, 26, 108]
    np.testing.assert_array_equal(indices, [5, 26, 108, 127, 127, 127])
    np.testing.assert_array_equal(first, np.eye(128)[0])
    np.testing.assert_array_equal(observations, np.eye(128)[[5, 26, 108, 127, 127, 127]])
    expected = [env.reward_table[s, a] for s, a in zip(path, actions[:4])] + [0, 0]
    np.testing.assert_array_equal(rewards, np.asarray(expected, np.float32))
    np.testing.assert_array_equal(dones, [False, False, False, True, True, True])


# --- the oracle against brute force -----------------------------------------------------------

@pytest.mark.parametrize("overlap, seed", [(0, 0), (2, 3), (5, 1), (6, 4)])
def test_uniform_expected_return_equals_brute_force(overlap, seed):
    depth, branching = 4, 6
    env = envs.make(NAME, depth=depth, branching=branching, overlap=overlap, reward_seed=seed)
    table = env.reward_table.astype(np.float64)
    # Enumerate all 6^4 action sequences with the formula typed in here (not the env's code).
    stride, shift = branching - overlap, (branching - overlap) // 2
    sizes = [1]
    for _ in range(depth):
        sizes.append(max(sizes[-1] * stride, branching))
    offsets = np.cumsum([0] + sizes[:-1])
    sequences = _action_sequences(branching, depth)
    position = np.zeros(len(sequences), np.int64)
    returns = np.zeros(len(sequences))
    for level in range(depth):
        action = sequences[:, level]
        returns += table[offsets[level] + position, action]
        position = (position * stride + action - shift) % sizes[level + 1]
    brute_force = returns.mean()

    mdp = env.tabular_mdp()
    with jax.enable_x64(True):
        uniform = jnp.full((mdp.num_states, branching), 1.0 / branching)
        exact = float(oracle.expected_return(mdp, uniform))
    assert exact == pytest.approx(brute_force, abs=1e-12)
    # Not vacuous: the policy-independent part (the root's mean reward) is not the whole return.
    assert abs(brute_force - table[0].mean()) > 1e-3


# --- parameters, registry, Gymnasium ----------------------------------------------------------

def test_bad_parameters_raise_naming_the_value():
    with pytest.raises(ValueError, match=r"depth must be an integer >= 1 .*; got 0"):
        envs.make(NAME, depth=0)
    with pytest.raises(ValueError, match=r"depth must be an integer >= 1 .*; got 2\.0"):
        Tree(depth=2.0)
    with pytest.raises(ValueError, match=r"branching must be an integer >= 2 .*; got 1"):
        envs.make(NAME, branching=1)
    with pytest.raises(ValueError, match=r"overlap must be an integer in \[0, 6\] .*; got 7"):
        envs.make(NAME, overlap=7)
    with pytest.raises(ValueError, match=r"overlap must be an integer in \[0, 3\] .*; got -1"):
        envs.make(NAME, branching=3, overlap=-1)
    with pytest.raises(ValueError, match=r"overlap must be an integer.*; got True"):
        envs.make(NAME, overlap=True)
    with pytest.raises(ValueError, match=r"reward_seed must be an integer >= 0 .*; got -3"):
        envs.make(NAME, reward_seed=-3)
    with pytest.raises(ValueError, match=r"depth=7, branching=6, overlap=0 gives 55988 states; at most 10000"):
        envs.make(NAME, depth=7)
    with pytest.raises(ValueError, match=r"Tree-v0 has no parameter\(s\) width; it accepts: "
                                         r"depth=4, branching=6, overlap=0, reward_seed=0"):
        envs.make(NAME, width=3)


def test_registry():
    assert NAME in envs.names()
    assert envs.parameters(NAME) == {"depth": 4, "branching": 6, "overlap": 0, "reward_seed": 0}
    env = envs.make(NAME, overlap=2)
    assert isinstance(env, Tree) and env.overlap == 2 and env.num_actions == 6 and env.is_tabular


def test_gymnasium_episode():  # check_env on every env: test_env_conformance
    env = gymnasium.make("cocoa/" + NAME, overlap=3)
    assert env.observation_space == gymnasium.spaces.Box(0.0, 1.0, (80,), np.float32)
    assert env.action_space == gymnasium.spaces.Discrete(6)
    functional = env.unwrapped.cocoa_env
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.eye(80)[0])
    total = 0.0
    for t, action in enumerate([1, 2, 3, 4]):
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        assert terminated == (t == 3) and not truncated
    np.testing.assert_array_equal(obs, np.eye(80)[79])
    assert info["episode_length"] == 4 and info["episode_return"] == pytest.approx(total)
    successors = np.asarray(functional.tabular_mdp().successors)[..., 0]
    state, expected = 0, 0.0
    for action in [1, 2, 3, 4]:
        expected += functional.reward_table[state, action]
        state = successors[state, action]
    assert total == pytest.approx(expected)
