"""Conformance of every registered environment (``envs.names()``), at its defaults and at its
``example_settings``, and of Gymnasium toy-text environments run from their tables (``gymnasium:<id>``),
with no per-environment test code:
- sampled dynamics against the exported ``tabular_mdp``: the initial state, successors and reward
  values of every visited (state, action), and observations (a wrong table is rejected);
- the same key gives the same episodes;
- Gymnasium's ``check_env`` on ``cocoa/<name>``, and dm_env's ``EnvironmentTestMixin`` on the adapter.
"""

import functools
import unittest
import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dm_env import test_utils
from gymnasium.utils.env_checker import check_env

import cocoa  # noqa: F401  (registers the Gymnasium ids)
from cocoa import envs
from cocoa.agents import tabular_policy
from cocoa.envs import DmEnvAdapter
from cocoa.rollout import rollout
from env_checks import check_frequencies

SETTINGS = [(name, label, settings) for name in envs.names()
            for label, settings in (("defaults", {}), ("example", envs.env_class(name).example_settings))]
SETTINGS += [("gymnasium:FrozenLake-v1", "slippery", {"is_slippery": True}),
             ("gymnasium:CliffWalking-v1", "horizon-40", {"horizon": 40})]
CASES = [pytest.param(name, settings, id=f"{name}-{label}") for name, label, settings in SETTINGS]
EPISODES = 6000


def _sampler(env, seed: int, episodes: int):
    """(mdp, compiled key -> episodes of a random tabular policy (epsilon 0.3), one step past the horizon)."""
    mdp = env.tabular_mdp()
    logits = np.random.default_rng(seed).normal(size=(mdp.num_states, mdp.num_actions)).astype(np.float32)
    run = jax.jit(lambda key: rollout(env, tabular_policy(mdp, epsilon=0.3), jnp.asarray(logits), key,
                                      batch_size=episodes, horizon=mdp.horizon + 1))
    return mdp, run


@functools.lru_cache(maxsize=None)
def _sample(name: str, settings: tuple, seed: int = 0):
    """``EPISODES`` episodes of ``_sampler``, shared by the tests that only read them."""
    env = envs.make(name, **dict(settings))
    mdp, run = _sampler(env, seed, EPISODES)
    return env, mdp, jax.device_get(run(jax.random.PRNGKey(seed)))


def _tables(mdp, trajectory):
    """Empirical (initial, successor, reward-value) counts of the real steps."""
    states, actions = np.asarray(trajectory.state_index), np.asarray(trajectory.actions)
    real = np.asarray(trajectory.mask).astype(bool)
    num_states, num_actions = mdp.num_states, mdp.num_actions
    initial = np.bincount(states[:, 0], minlength=num_states)[None]
    s, a, s_next = states[:, :-1][real[:, :-1]], actions[:, :-1][real[:, :-1]], states[:, 1:][real[:, :-1]]
    successors = np.zeros((num_states, num_actions, num_states))
    np.add.at(successors, (s, a, s_next), 1)
    values = np.asarray(mdp.reward_values)
    rewards = np.asarray(trajectory.rewards, np.float64)[:, :-1][real[:, :-1]]
    slot = np.abs(rewards[:, None] - values).argmin(-1)
    np.testing.assert_allclose(rewards, values[slot], atol=1e-6)  # every reward is in the support
    reward_counts = np.zeros((num_states, num_actions, len(values)))
    np.add.at(reward_counts, (s, a, slot), 1)
    return initial, successors, reward_counts


@pytest.mark.parametrize("name, settings", CASES)
def test_sampled_dynamics_match_the_tabular_mdp(name, settings):
    env, mdp, trajectory = _sample(name, tuple(sorted(settings.items())))
    assert not np.asarray(trajectory.mask)[:, -1].any()  # the extra step is past every episode's end
    states = np.asarray(trajectory.state_index)
    real = np.asarray(trajectory.mask).astype(bool)
    np.testing.assert_allclose(trajectory.observations[real], np.asarray(mdp.observations)[states[real]], atol=1e-6)
    initial, successors, rewards = _tables(mdp, trajectory)
    check_frequencies("initial", initial, np.asarray(mdp.initial)[None])
    rows = successors.sum(-1).reshape(-1) > 0
    assert rows.sum() >= 0.5 * (mdp.num_states - 1) * mdp.num_actions  # most live (s, a) are visited
    transitions = np.asarray(mdp.dense_transitions()).reshape(-1, mdp.num_states)
    check_frequencies("successors", successors.reshape(-1, mdp.num_states)[rows], transitions[rows])
    reward_probs = np.asarray(mdp.reward_probs).reshape(-1, mdp.num_reward_values)
    check_frequencies("rewards", rewards.reshape(-1, mdp.num_reward_values)[rows], reward_probs[rows])
    # The same check rejects a table that sends the most visited (state, action) elsewhere.
    busiest = np.argmax(successors.reshape(-1, mdp.num_states).sum(-1)[rows])
    wrong = np.roll(transitions[rows], 1, axis=-1)
    with pytest.raises(AssertionError, match="successors"):
        check_frequencies("successors", successors.reshape(-1, mdp.num_states)[rows][busiest:busiest + 1],
                          wrong[busiest:busiest + 1])


def test_the_default_table_is_built_once_and_other_params_get_their_own():
    env = envs.make("LinearKeyToDoor-v0", length=9)
    assert env.tabular_mdp() is env.tabular_mdp() is env.tabular_mdp(env.default_params)
    longer = envs.make("LinearKeyToDoor-v0", length=11)
    other = env.tabular_mdp(longer.default_params)  # same class, other params: built for them
    assert other.num_states == longer.tabular_mdp().num_states > env.tabular_mdp().num_states


@pytest.mark.parametrize("name, settings", CASES)
def test_the_same_key_gives_the_same_episodes(name, settings):
    _, run = _sampler(envs.make(name, **settings), 3, 64)
    first, second = (jax.device_get(run(jax.random.PRNGKey(3))) for _ in range(2))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, settings", CASES)
def test_gymnasium_check_env(name, settings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if name in envs.names():
            check_env(gymnasium.make("cocoa/" + name, **settings).unwrapped)
        else:  # not made through gymnasium.make, so it has no spec to re-make render modes from
            warnings.filterwarnings("ignore", message=".*not having a spec")
            check_env(envs.GymnasiumEnv(name, **settings))


def _dm_env_cases():
    """One unittest class per case, each running dm_env's own conformance tests on the adapter."""
    classes = {}
    for name, label, settings in SETTINGS:
        def make_object_under_test(self, name=name, settings=settings):
            return DmEnvAdapter(name, seed=0, **settings)

        title = f"TestDmEnv_{name.replace('-', '_').replace(':', '_')}_{label.replace('-', '_')}"
        classes[title] = type(title, (test_utils.EnvironmentTestMixin, unittest.TestCase),
                              {"make_object_under_test": make_object_under_test})
    return classes


globals().update(_dm_env_cases())


@pytest.mark.parametrize("name, settings", CASES)
def test_declared_bounds_actions_and_metrics_hold(name, settings):
    env, mdp, trajectory = _sample(name, tuple(sorted(settings.items())))
    low, high = env.observation_bounds()
    assert low.shape == high.shape == tuple(env.observation_shape) and low.dtype == high.dtype == np.float32
    observations = np.asarray(mdp.observations)
    assert (observations >= low).all() and (observations <= high).all()
    assert mdp.num_actions == env.num_actions
    metrics = env.episode_metrics(trajectory.info, trajectory.mask)
    assert tuple(metrics) == env.metric_names
    assert all(np.asarray(value).shape == (EPISODES,) for value in metrics.values())


@pytest.mark.parametrize("name, settings", CASES)
def test_ansi_rendering_draws_every_step_of_an_episode(name, settings):
    env = envs.GymnasiumEnv(name, render_mode="ansi", **settings)
    env.reset(seed=0)
    frames, terminated = [env.render()], False
    while not terminated:
        _, _, terminated, _, _ = env.step(env.action_space.sample())
        frames.append(env.render())
    assert all(isinstance(frame, str) and frame for frame in frames)
    assert len(set(frames)) > 1  # the drawing follows the state
