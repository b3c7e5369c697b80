"""cocoa.learner.Learner: an agent driven from a plain Gymnasium loop."""

import gymnasium
import jax
import numpy as np
import pytest

from cocoa import agents
from cocoa.learner import Learner
from cocoa.train import NonFiniteError


def _run(learner, env, updates, seed=0):
    """The docs' loop: step the env yourself, act / observe, update when a batch is ready."""
    returns = []
    observation, _ = env.reset(seed=seed)
    while learner.updates < updates:
        action = learner.act(observation)
        observation, reward, terminated, truncated, _ = env.step(action)
        learner.observe(reward, terminated or truncated)
        if terminated or truncated:
            observation, _ = env.reset()
        if learner.ready:
            returns.append(learner.update()["return"])
    return returns


def test_cartpole_from_a_plain_loop_learns():
    env = gymnasium.make("CartPole-v1")
    learner = Learner("advantage", env, batch_size=8, seed=0)
    returns = _run(learner, env, updates=60)
    assert np.mean(returns[-5:]) >= 4 * np.mean(returns[:5]), returns


def test_the_learner_runs_the_same_update_as_the_agent():
    """One update from the learner equals ``Agent.update`` on the same padded batch."""
    env = gymnasium.make("CartPole-v1")
    learner = Learner("reinforce", env, batch_size=2, horizon=500, seed=3)
    start = learner.state
    observation, _ = env.reset(seed=1)
    episodes = []
    while not learner.ready:
        action = learner.act(observation)
        observation, reward, terminated, truncated, _ = env.step(action)
        learner.observe(reward, terminated or truncated)
        if terminated or truncated:
            episodes.append(learner._episodes[-1])
            observation, _ = env.reset()
    trajectory = learner._trajectory(episodes)
    assert trajectory.actions.shape == (2, 500) and float(trajectory.mask.sum()) == sum(len(e["actions"]) for e in episodes)
    key = jax.random.split(learner._key)[1]
    expected, _ = learner._update(start, trajectory, key)  # the compiled Agent.update
    learner.update()
    for a, b in zip(jax.tree.leaves(learner.state.policy_params), jax.tree.leaves(expected.policy_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_discrete_observations_are_one_hot_and_actions_in_the_space():
    env = gymnasium.make("FrozenLake-v1", is_slippery=False)
    learner = Learner("q-critic", env, batch_size=1)
    assert learner.spaces.observation_shape == (16,)
    observation, _ = env.reset(seed=0)
    assert learner.act(observation) in range(4)
    assert learner.act(observation, explore=False) in range(4)  # evaluation records nothing


def test_misuse_is_reported():
    env = gymnasium.make("CartPole-v1")
    learner = Learner("reinforce", env, batch_size=1, horizon=3)
    observation, _ = env.reset(seed=0)
    with pytest.raises(RuntimeError, match="observe\\(\\) needs an act\\(\\) first"):
        learner.observe(1.0, False)
    learner.act(observation)
    with pytest.raises(RuntimeError, match="act\\(\\) was called twice"):
        learner.act(observation)
    with pytest.raises(ValueError, match="reward must be finite; got nan"):
        learner.observe(float("nan"), False)
    learner.observe(1.0, False)
    with pytest.raises(RuntimeError, match="update\\(\\) needs 1 finished episodes; 0 so far"):
        learner.update()
    for _ in range(2):
        learner.act(observation)
        learner.observe(1.0, False)
    with pytest.raises(ValueError, match="longer than the horizon 3"):
        learner.act(observation)
    with pytest.raises(TypeError, match="Discrete action space; got Box"):
        Learner("reinforce", gymnasium.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        Learner("reinforce", env, batch_size=0)
    with pytest.raises(ValueError, match="unknown agent 'nope'"):
        Learner("nope", env)
    with pytest.raises(ValueError, match="has 3 actions; CartPole-v1 has 2"):
        Learner(agents.make("reinforce", num_actions=3), env)


def test_a_reward_outside_the_declared_support_and_nan_updates_stop_with_errors():
    env = gymnasium.make("CartPole-v1")
    learner = Learner("cocoa-reward", env, batch_size=1, reward_values=(0.0, 2.0))
    observation, _ = env.reset(seed=0)
    learner.act(observation)
    learner.observe(1.0, True)
    with pytest.raises(ValueError, match="got reward 1, which is not in its declared reward_values"):
        learner.update()
    diverging = Learner("reinforce", env, batch_size=1, learning_rate=1e30)
    with pytest.raises(NonFiniteError, match="update 1 of reinforce produced NaN or inf"):
        for _ in range(3):
            diverging.act(observation)
            diverging.observe(1e30, True)
            diverging.update()


def test_cocoa_feature_fits_its_features_on_the_first_episodes_before_its_first_update():
    env = gymnasium.make("FrozenLake-v1", is_slippery=False)
    learner = Learner("cocoa-feature", env, batch_size=2, seed=0, fit_episodes=5, fit_steps=100, fit_batch_size=32)
    unfitted = learner.state.model_params["features"]
    observation, _ = env.reset(seed=0)
    finished = 0
    while not learner.ready:
        observation, reward, terminated, truncated, _ = env.step(learner.act(observation))
        learner.observe(reward, terminated or truncated)
        if terminated or truncated:
            finished += 1
            observation, _ = env.reset()
    assert finished == 7  # 5 episodes for the fit, then the batch of 2
    with pytest.raises(RuntimeError, match="needs 7 finished episodes"):
        Learner("cocoa-feature", env, batch_size=2, fit_episodes=5).update()
    learner.update()
    fitted = learner.state.model_params["features"]
    assert not np.allclose(fitted["gate"], unfitted["gate"]) and learner.updates == 1 and not learner._episodes
    _run(learner, env, updates=3)  # later updates need only a batch each, and leave the features as fitted
    np.testing.assert_array_equal(learner.state.model_params["features"]["gate"], fitted["gate"])
