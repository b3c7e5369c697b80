"""Linear key-to-door: sampled dynamics against its tabular form, hand-played episodes, errors."""

import dataclasses
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import envs
from cocoa.agents import tabular_policy
from cocoa.envs.key_to_door import (DOOR, KEY, LEFT_APPLE, OPEN_DOOR, PICK_KEY, PICK_LEFT, PICK_RIGHT,
                                    RIGHT_APPLE, LinearKeyToDoor)
from cocoa.rollout import rollout
from env_checks import check_frequencies

NAME = "LinearKeyToDoor-v0"


def _sample(env: LinearKeyToDoor, batch_size: int, seed: int, params=None):
    mdp = env.tabular_mdp(params)
    logits = np.random.default_rng(seed).normal(size=(mdp.num_states, mdp.num_actions)).astype(np.float32)
    policy_fn = tabular_policy(mdp, epsilon=0.1)

    @jax.jit
    def run(key):
        return rollout(env, policy_fn, jnp.asarray(logits), key, batch_size=batch_size, horizon=env.length,
                       env_params=params)

    trajectory = jax.device_get(run(jax.random.PRNGKey(seed)))
    return mdp, trajectory


def _other_params(env: LinearKeyToDoor):
    """Non-default params passed as a pytree: another layout, other apple and treasure rewards."""
    other = envs.make(NAME, length=env.length, layout_seed=env.layout_seed + 100, distractor_prob=0.6)
    return dataclasses.replace(other.default_params, distractor_rewards=jnp.asarray([0.3, 1.7], jnp.float32),
                               treasure_reward=jnp.float32(2.5))


@pytest.mark.parametrize("length, custom", [(9, False), (23, False), (9, True)])
def test_sampled_dynamics_match_tabular_mdp(length, custom):
    env = envs.make(NAME, length=length, layout_seed=length)
    params = _other_params(env) if custom else None
    batch = 12000
    mdp, trajectory = _sample(env, batch, seed=length, params=params)
    if custom:  # the table is built from the params it is given, not the environment's defaults
        np.testing.assert_allclose(mdp.reward_values, [0.0, 0.3, 1.7, 2.5], rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(mdp.observations)[0],
                                      np.asarray(env.tabular_mdp(params).observations)[0])
    num_states, num_actions, terminal_state = mdp.num_states, mdp.num_actions, 2 * length
    states = np.asarray(trajectory.state_index)
    actions = np.asarray(trajectory.actions)
    rewards = np.asarray(trajectory.rewards, np.float64)
    mask = np.asarray(trajectory.mask)

    # Every episode lasts exactly `length` steps; the last step ends it.
    assert mask.all()
    np.testing.assert_array_equal(trajectory.dones[:, -1], True)
    assert not trajectory.dones[:, :-1].any()
    assert states.min() >= 0 and states.max() < terminal_state

    # Initial state distribution.
    initial_counts = np.bincount(states[:, 0], minlength=num_states)
    np.testing.assert_array_equal(initial_counts, batch * np.asarray(mdp.initial))

    # Observations are the tabular ones of the recorded state.
    np.testing.assert_allclose(trajectory.observations, np.asarray(mdp.observations)[states], rtol=0, atol=1e-7)

    # Successor frequencies: the next step's state, or the terminal state after the last step.
    next_states = np.concatenate([states[:, 1:], np.full((batch, 1), terminal_state)], axis=1)
    successor_counts = np.zeros((num_states, num_actions, num_states))
    np.add.at(successor_counts, (states, actions, next_states), 1)
    transitions = mdp.dense_transitions()

    # Reward-value frequencies.
    reward_values = np.asarray(mdp.reward_values)
    slot = np.abs(rewards[..., None] - reward_values).argmin(-1)
    np.testing.assert_allclose(rewards, reward_values[slot], atol=1e-6)
    reward_counts = np.zeros((num_states, num_actions, len(reward_values)))
    np.add.at(reward_counts, (states, actions, slot), 1)

    visits = successor_counts.sum(-1)
    # Coverage: every live (s, a) is visited except state 1 (key held at cell 0: unreachable).
    reachable = np.ones((num_states, num_actions), bool)
    reachable[1] = False
    reachable[terminal_state] = False
    assert np.all(visits[reachable] > 0)
    assert np.all(visits[~reachable] == 0)

    rows = visits.reshape(-1) > 0
    check_frequencies("successors", successor_counts.reshape(-1, num_states)[rows],
                       transitions.reshape(-1, num_states)[rows])
    stochastic = check_frequencies("rewards", reward_counts.reshape(-1, len(reward_values))[rows],
                                    np.asarray(mdp.reward_probs).reshape(-1, len(reward_values))[rows])
    # Every apple cell has its matching pick tested for its two reward values (both flags).
    layout = (params or env.default_params).layout
    apples = int(np.isin(np.asarray(layout), [LEFT_APPLE, RIGHT_APPLE]).sum())
    assert apples > 0 and stochastic == 2 * 2 * apples

    # The same check rejects a table whose apples pay 0.1 w.p. 0.3 instead of 0.5.
    biased = np.asarray(mdp.reward_probs).copy()
    stochastic_rows = (biased > 0.25) & (biased < 0.75)
    first_apple = float((params or env.default_params).distractor_rewards[0])
    biased[stochastic_rows] = np.where(np.isclose(reward_values, first_apple), 0.3, 0.7)[
        np.nonzero(stochastic_rows)[2]]
    with pytest.raises(AssertionError, match="rewards: max"):
        check_frequencies("rewards", reward_counts.reshape(-1, len(reward_values))[rows],
                           biased.reshape(-1, len(reward_values))[rows])
    # ... and a successor table that sends every action to the other flag.
    swapped = transitions.copy()
    swapped[0] = transitions[0, ::-1]
    with pytest.raises(AssertionError, match="successors"):
        check_frequencies("successors", successor_counts.reshape(-1, num_states)[rows],
                           swapped.reshape(-1, num_states)[rows])


def _play(env: LinearKeyToDoor, actions, noise):
    """Steps the environment through a fixed action list with fixed noise in one jitted scan."""

    @jax.jit
    def run(actions, noise):
        observation, state = env.reset(jax.random.PRNGKey(0))

        def step(carry, inputs):
            state = carry
            action, uniform = inputs
            _, state, reward, done, info = env.step_from_noise(uniform[None], state, action, env.default_params)
            return state, (reward, done, info)

        _, (rewards, dones, info) = jax.lax.scan(step, state, (actions, noise))
        return observation, rewards, dones, info

    return jax.device_get(run(jnp.asarray(actions, jnp.int32), jnp.asarray(noise, jnp.float32)))


def _matching_actions(layout, take_key=True, open_door=True):
    actions = []
    for content in layout:
        if content == KEY:
            actions.append(PICK_KEY if take_key else PICK_LEFT)
        elif content == LEFT_APPLE:
            actions.append(PICK_LEFT)
        elif content == RIGHT_APPLE:
            actions.append(PICK_RIGHT)
        elif content == DOOR:
            actions.append(OPEN_DOOR if open_door else PICK_KEY)
        else:  # empty cell or treasure room: the action does nothing
            actions.append(PICK_KEY)
    return np.array(actions)


@pytest.mark.parametrize("length", [23, 46])
def test_hand_played_episode_collects_treasure_and_every_apple(length):
    env = envs.make(NAME, length=length, layout_seed=3)
    layout = np.asarray(env.default_params.layout)
    assert layout[0] == KEY and layout[-2] == DOOR
    apples = np.isin(layout, [LEFT_APPLE, RIGHT_APPLE])
    assert apples.sum() >= 5
    scale = 23.0 / length
    # Two extra steps past the end: a done state pays nothing and stays done.
    actions = np.concatenate([_matching_actions(layout), [PICK_KEY, OPEN_DOOR]])
    noise = np.where(np.arange(length + 2) % 3 == 0, 0.75, 0.25)  # high / low distractor
    _, rewards, dones, info = _play(env, actions, noise)

    expected = np.zeros(length + 2)
    expected[:length][apples] = np.where(noise[:length][apples] >= 0.5, 0.9, 0.1) * scale
    expected[length - 1] = 0.2 * scale
    np.testing.assert_allclose(rewards, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(dones, np.arange(length + 2) >= length - 1)
    assert info["treasure"][length - 1] and info["treasure"].sum() == 1

    mask = np.ones((1, length + 2), np.float32)
    metrics = env.episode_metrics(jax.tree.map(lambda x: x[None], info), mask)
    assert float(metrics["treasure_rate"][0]) == 1.0
    assert float(metrics["distractor_rate"][0]) == 1.0


def test_no_key_or_closed_door_means_no_treasure():
    env = envs.make(NAME, length=23, layout_seed=3)
    layout = np.asarray(env.default_params.layout)
    noise = np.full(23, 0.25)
    for actions in (_matching_actions(layout, take_key=False), _matching_actions(layout, open_door=False)):
        _, rewards, _, info = _play(env, actions, noise)
        assert rewards[-1] == 0.0
        assert not info["treasure"].any()
        metrics = env.episode_metrics(jax.tree.map(lambda x: x[None], info), np.ones((1, 23), np.float32))
        assert float(metrics["treasure_rate"][0]) == 0.0
        assert float(metrics["distractor_rate"][0]) == 1.0

    # Picking the wrong side of every apple earns nothing and a distractor rate of 0.
    wrong = _matching_actions(layout)
    wrong = np.where(wrong == PICK_LEFT, -1, wrong)
    wrong = np.where(wrong == PICK_RIGHT, PICK_LEFT, wrong)
    wrong = np.where(wrong == -1, PICK_RIGHT, wrong)
    _, rewards, _, info = _play(env, wrong, noise)
    np.testing.assert_allclose(rewards[:-1], 0.0)
    assert rewards[-1] == pytest.approx(0.2)
    metrics = env.episode_metrics(jax.tree.map(lambda x: x[None], info), np.ones((1, 23), np.float32))
    assert float(metrics["distractor_rate"][0]) == 0.0
    assert float(metrics["treasure_rate"][0]) == 1.0


@pytest.mark.parametrize("length, reward_scale, scale", [(23, None, 1.0), (46, None, 0.5), (103, None, 23 / 103),
                                                        (46, 2.0, 2.0)])
def test_reward_scaling(length, reward_scale, scale):
    env = envs.make(NAME, length=length, reward_scale=reward_scale)
    params = env.default_params
    np.testing.assert_allclose(params.distractor_rewards, np.array([0.1, 0.9]) * scale, rtol=1e-6)
    assert float(params.treasure_reward) == pytest.approx(0.2 * scale, rel=1e-6)
    mdp = env.tabular_mdp()
    # The table holds the rewards as step pays them (the float32 params, read as shortest decimals).
    paid = np.unique(np.concatenate([[0.0], np.asarray(params.distractor_rewards), [params.treasure_reward]]))
    np.testing.assert_array_equal(np.asarray(mdp.reward_values, np.float32), paid)
    np.testing.assert_allclose(mdp.reward_values, np.array([0.0, 0.1, 0.2, 0.9]) * scale, rtol=1e-6)


def test_bad_parameters_raise_naming_the_value():
    with pytest.raises(ValueError, match=r"length must be an integer >= 3 .*; got 2"):
        envs.make(NAME, length=2)
    with pytest.raises(ValueError, match=r"length must be an integer >= 3 .*; got 7\.5"):
        LinearKeyToDoor(length=7.5)
    with pytest.raises(ValueError, match=r"distractor_prob must lie in \[0, 1\]; got 1\.5"):
        envs.make(NAME, distractor_prob=1.5)
    with pytest.raises(ValueError, match=r"distractor_rewards must hold two values; got \(0\.1,\)"):
        envs.make(NAME, distractor_rewards=(0.1,))


def test_registry_errors_list_what_is_known():
    with pytest.raises(ValueError, match=r"unknown environment 'Nope'; known environments: .*LinearKeyToDoor-v0"):
        envs.make("Nope")
    with pytest.raises(ValueError, match=r"LinearKeyToDoor-v0 has no parameter\(s\) colour; it accepts: "
                                         r"length=23, distractor_prob=0\.8, layout_seed=0"):
        envs.make(NAME, colour="red")
    assert NAME in envs.names()
    assert envs.parameters(NAME)["length"] == 23
    env = envs.make(NAME, length=11)
    assert isinstance(env, LinearKeyToDoor) and env.length == 11 and env.max_episode_steps == 11


def test_layout_is_fixed_by_its_seed():
    first = np.asarray(envs.make(NAME, layout_seed=5).default_params.layout)
    again = np.asarray(envs.make(NAME, layout_seed=5).default_params.layout)
    other = np.asarray(envs.make(NAME, layout_seed=6).default_params.layout)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    empty = np.asarray(envs.make(NAME, distractor_prob=0.0).default_params.layout)
    assert not np.isin(empty, [LEFT_APPLE, RIGHT_APPLE]).any()
    full = np.asarray(envs.make(NAME, distractor_prob=1.0).default_params.layout)
    assert np.isin(full[1:-2], [LEFT_APPLE, RIGHT_APPLE]).all()


def test_tabular_mdp_of_length_103():
    length = 103
    env = envs.make(NAME, length=length)
    mdp = env.tabular_mdp()
    num_states = 2 * length + 1
    assert mdp.num_states == num_states and mdp.num_actions == 4 and mdp.num_successors == 1
    assert mdp.horizon == length
    assert mdp.observations.shape == (num_states, *env.observation_shape)
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), [2 * length])
    # Observations are distinct per state (the tabular policy relies on it).
    assert len(np.unique(np.asarray(mdp.observations), axis=0)) == num_states
    # Every live state moves one cell forward (or into the terminal state from the last cell).
    successors = np.asarray(mdp.successors)[:-1, :, 0]
    position = np.arange(num_states - 1) // 2
    next_position = np.where(successors == 2 * length, length, successors // 2)
    np.testing.assert_array_equal(next_position, np.broadcast_to(position[:, None] + 1, next_position.shape))
    # The key is picked only by PICK_KEY at cell 0, and only state 2L-1 (door opened) pays the treasure.
    np.testing.assert_array_equal(successors[0], [3, 2, 2, 2])
    expected_rewards = np.asarray(mdp.expected_rewards())
    np.testing.assert_allclose(expected_rewards[2 * length - 1], float(env.default_params.treasure_reward), rtol=1e-7)
    np.testing.assert_allclose(expected_rewards[2 * length - 2], 0.0)


@pytest.mark.parametrize("length", [7, 23, 43, 103])
@pytest.mark.parametrize("aliased", [0.1, 0.9])
def test_reward_aliasing_merges_the_treasure_with_an_apple_value(length, aliased):
    """The reward-aliasing variant: a treasure worth a distractor value is the same reward, at every length."""
    mdp = envs.make("LinearKeyToDoor-v0", length=length, treasure_reward=aliased).tabular_mdp()
    assert mdp.num_reward_values == 3


def test_door_opens_with_key_needs_no_open_action():
    env = envs.make("LinearKeyToDoor-v0", length=5, door_opens_with_key=True)
    _, state = env.reset(jax.random.PRNGKey(0))
    total = 0.0
    for action in (0, 1, 1, 1, 1):  # take the key, never open the door
        _, state, reward, done, info = env.step(jax.random.PRNGKey(1), state, action)
        total += float(reward)
    assert bool(info["treasure"]) and bool(done)
    closed = envs.make("LinearKeyToDoor-v0", length=5)
    _, state = closed.reset(jax.random.PRNGKey(0))
    for action in (0, 1, 1, 1, 1):
        _, state, reward, done, info = closed.step(jax.random.PRNGKey(1), state, action)
    assert not bool(info["treasure"])
    with pytest.raises(ValueError, match="door_opens_with_key must be True or False; got 'yes'"):
        envs.make("LinearKeyToDoor-v0", door_opens_with_key="yes")
