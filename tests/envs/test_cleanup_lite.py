"""CleanUp-lite (cocoa.envs.cleanup_lite), rule by rule, from constructed states."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa.envs.cleanup_lite import DOWN, LEFT, NOOP, RIGHT, UP, ZAP, CleanUpLite, CleanUpState

ENV = CleanUpLite()
KEYS = jax.random.split(jax.random.PRNGKey(0), 1500)


def _state(positions, dirt=(0, 0, 0, 0, 0), apples=(0, 0, 0, 0, 0), frozen=(0, 0), time=0):
    return CleanUpState(positions=jnp.asarray(positions, jnp.int32), dirt=jnp.asarray(dirt, bool),
                        apples=jnp.asarray(apples, bool), frozen=jnp.asarray(frozen, jnp.int32),
                        time=jnp.int32(time), done=jnp.bool_(False))


def _steps(state, actions, params=None, keys=KEYS):
    step = jax.jit(jax.vmap(lambda k: ENV.step(k, state, jnp.asarray(actions), params)))
    return step(keys)


def test_reset_places_two_players_three_dirt_cells_and_no_apples():
    observations, states = jax.vmap(ENV.reset)(KEYS[:500])
    assert observations.shape == (500, 2, 4 * 5 * 4 + 2)
    np.testing.assert_array_equal(np.asarray(states.dirt).sum(1), 3)
    assert not np.asarray(states.apples).any()
    cells = np.asarray(states.positions[:, 0, 0] * 4 + states.positions[:, 0, 1])
    assert len(np.unique(cells)) == 20  # random positions over the whole grid


def test_dirt_spawns_on_a_free_river_cell_with_its_probability():
    state = _state([[0, 1], [0, 2]], dirt=(1, 0, 1, 0, 0))
    _, states, _, _ = _steps(state, [NOOP, NOOP])
    dirt = np.asarray(states.dirt)
    assert dirt[:, [0, 2]].all()  # old dirt stays
    spawned = dirt.sum(1) - 2
    assert set(spawned) <= {0, 1}
    assert abs(spawned.mean() - 0.35) < 4 * np.sqrt(0.35 * 0.65 / len(KEYS))
    where = dirt[spawned == 1][:, [1, 3, 4]].mean(0)  # uniform over the three free cells
    np.testing.assert_allclose(where, 1 / 3, atol=0.08)


@pytest.mark.parametrize("dirt_cells", [0, 1, 2, 3, 4])
def test_an_apple_spawns_with_probability_one_minus_dirt_over_three(dirt_cells):
    params = dataclasses.replace(ENV.default_params, dirt_probability=jnp.float32(0.0))  # no new dirt
    dirt = tuple(int(i < dirt_cells) for i in range(5))
    state = _state([[0, 1], [0, 1]], dirt=dirt)
    _, states, _, _ = _steps(state, [NOOP, NOOP], params)
    rate = np.asarray(states.apples).any(1).mean()
    expected = 1 - min(1, dirt_cells / 3)
    assert abs(rate - expected) < 4 * np.sqrt(max(expected * (1 - expected), 1e-4) / len(KEYS)) + 1e-9


def test_harvesting_pays_one_and_removes_the_apple_and_cleaning_removes_dirt():
    state = _state([[2, 3], [4, 0]], dirt=(0, 0, 0, 0, 1), apples=(0, 0, 1, 0, 0))
    _, states, rewards, _ = _steps(state, [NOOP, NOOP], keys=KEYS[:200])
    np.testing.assert_array_equal(rewards[:, 0], 1.0)
    np.testing.assert_array_equal(rewards[:, 1], 0.0)
    assert not np.asarray(states.apples)[:, 2].any() and not np.asarray(states.dirt)[:, 4].any()
    # Two players on one apple share it.
    _, _, rewards, _ = _steps(_state([[2, 3], [2, 3]], apples=(0, 0, 1, 0, 0)), [NOOP, NOOP], keys=KEYS[:10])
    np.testing.assert_array_equal(rewards, 0.5)


def test_a_frozen_player_neither_harvests_nor_moves_and_thaws_after_the_freeze():
    state = _state([[2, 3], [0, 0]], apples=(0, 0, 1, 0, 0), frozen=(2, 0))
    _, states, rewards, _ = _steps(state, [UP, NOOP], keys=KEYS[:10])
    np.testing.assert_array_equal(rewards[:, 0], 0.0)
    np.testing.assert_array_equal(states.positions[:, 0], [[2, 3]] * 10)
    np.testing.assert_array_equal(states.frozen[:, 0], 1)


def test_a_zap_freezes_the_target_for_five_steps_within_range_with_probability_point_nine():
    near = _state([[1, 1], [2, 2]])  # Manhattan distance 2
    _, states, _, _ = _steps(near, [ZAP, DOWN])
    hit = np.asarray(states.frozen[:, 1]) == 4  # frozen 5, this step counted
    assert abs(hit.mean() - 0.9) < 4 * np.sqrt(0.09 / len(KEYS))
    positions = np.asarray(states.positions[:, 1])
    np.testing.assert_array_equal(positions[hit], [[2, 2]] * hit.sum())  # the zapped move is void
    np.testing.assert_array_equal(positions[~hit], [[3, 2]] * (~hit).sum())
    far = _state([[0, 0], [2, 2]])  # distance 4
    _, states, _, _ = _steps(far, [ZAP, NOOP], keys=KEYS[:200])
    assert not np.asarray(states.frozen).any()
    # Five steps of void actions, then it moves again; no re-zap while frozen.
    env_step = jax.jit(ENV.step)
    state = _state([[1, 1], [2, 2]], frozen=(0, 5 - 1))
    for t in range(4):
        _, state, _, _ = env_step(KEYS[t], state, jnp.asarray([ZAP, RIGHT]))
        assert int(state.frozen[1]) == 3 - t
    np.testing.assert_array_equal(state.positions[1], [2, 2])
    _, state, _, _ = env_step(KEYS[9], state, jnp.asarray([NOOP, LEFT]))
    np.testing.assert_array_equal(state.positions[1], [2, 1])


def test_moves_stop_at_the_edge_and_the_episode_ends_after_its_length():
    _, states, _, _ = _steps(_state([[0, 0], [4, 3]]), [UP, RIGHT], keys=KEYS[:5])
    np.testing.assert_array_equal(states.positions[:, 0], [[0, 0]] * 5)
    np.testing.assert_array_equal(states.positions[:, 1], [[4, 3]] * 5)
    _, states, _, done = _steps(_state([[0, 0], [4, 3]], time=63), [DOWN, LEFT], keys=KEYS[:5])
    assert np.asarray(done).all()
    observations, after, rewards, _ = jax.vmap(lambda k, s: ENV.step(k, s, jnp.asarray([DOWN, LEFT])))(KEYS[:5], states)
    np.testing.assert_array_equal(after.positions, states.positions)  # a finished episode stands still
    np.testing.assert_array_equal(rewards, 0.0)


def test_each_player_sees_itself_first():
    state = _state([[0, 1], [3, 2]], dirt=(1, 0, 0, 0, 0), frozen=(0, 5))
    observations = ENV._observe(state, ENV.default_params)
    planes = np.asarray(observations[:, :80]).reshape(2, 4, 5, 4)
    assert planes[0, 2, 0, 1] == 1 and planes[0, 3, 3, 2] == 1
    assert planes[1, 2, 3, 2] == 1 and planes[1, 3, 0, 1] == 1
    np.testing.assert_array_equal(observations[:, 80:], [[0.0, 1.0], [1.0, 0.0]])
    assert planes[:, 0, 0, 0].all()


def test_bad_settings_name_themselves():
    with pytest.raises(ValueError, match="dirt_probability must be a probability in \\[0, 1\\]; got 1.5"):
        CleanUpLite(dirt_probability=1.5)
    with pytest.raises(ValueError, match="initial_dirt must be an integer in \\[0, 5\\]"):
        CleanUpLite(initial_dirt=9)
