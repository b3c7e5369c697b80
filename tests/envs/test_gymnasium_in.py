"""Gymnasium environments in: ``gymnasium:<id>`` by table (TabularEnv) or through the host loop."""

import csv
import json
import os
import subprocess
import sys

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import agents, envs, oracle
from cocoa.host_rollout import HostCollector
from cocoa.rollout import episode_returns, rollout
from cocoa.train import TrainConfig, _keys_of_seeds, make_train, train

FROZEN_LAKE = "gymnasium:FrozenLake-v1"


def test_a_p_table_gives_a_jitted_tabular_env_with_the_same_table():
    env = envs.make(FROZEN_LAKE, horizon=100, is_slippery=True)
    assert isinstance(env, envs.TabularEnv) and env.name == FROZEN_LAKE
    expected = envs.from_gymnasium("FrozenLake-v1", horizon=100, is_slippery=True)
    for a, b in zip(jax.tree.leaves(env.tabular_mdp()), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)
    assert env.max_episode_steps == 100 and env.observation_shape == (16,) and env.num_actions == 4
    # Gymnasium's make arguments reach the environment: a non-slippery lake is deterministic.
    assert envs.make(FROZEN_LAKE, is_slippery=False).tabular_mdp().successor_probs.max(-1).min() == 1.0


def test_as_environment_takes_a_tabular_mdp_a_gymnasium_env_and_names():
    mdp = envs.from_gymnasium("FrozenLake-v1", is_slippery=True)
    assert isinstance(envs.as_environment(mdp), envs.TabularEnv)
    built = gymnasium.make("FrozenLake-v1", is_slippery=False)
    assert envs.as_environment(built).tabular_mdp().successor_probs.max(-1).min() == 1.0
    assert isinstance(envs.as_environment(gymnasium.make("CartPole-v1")), envs.GymnasiumHostEnv)
    assert isinstance(envs.as_environment("Tree-v0"), envs.Tree)
    with pytest.raises(TypeError, match=r"expected an environment.*LinearKeyToDoor-v0.*gymnasium:<id>.*got list"):
        envs.as_environment([1, 2])


def test_bad_gymnasium_names_and_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"unknown Gymnasium environment 'NoSuchEnv-v0'"):
        envs.make("gymnasium:NoSuchEnv-v0")
    with pytest.raises(ValueError, match=r"gymnasium.make\('FrozenLake-v1', slippery=True\) failed"):
        envs.make(FROZEN_LAKE, slippery=True)
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1.*got -3"):
        envs.make("gymnasium:CartPole-v1", horizon=-3)
    with pytest.raises(ValueError, match=r"no max_episode_steps; pass horizon"):
        envs.make("gymnasium:CliffWalking-v1")
    with pytest.raises(TypeError, match=r"Discrete action space; got Box"):
        envs.make("gymnasium:Pendulum-v1")
    with pytest.raises(ValueError, match=r"unknown environment 'Nope'.*gymnasium:<id>"):
        envs.make("Nope")


def test_a_host_env_declares_its_spaces():
    env = envs.make("gymnasium:CartPole-v1")
    assert isinstance(env, envs.GymnasiumHostEnv) and not env.is_tabular
    assert env.observation_shape == (4,) and env.num_actions == 2 and env.max_episode_steps == 500
    low, high = env.observation_bounds()
    assert low[0] == pytest.approx(-4.8) and np.isinf(high[1])
    with pytest.raises(TypeError, match="no tabular form"):
        env.tabular_mdp()
    with pytest.raises(TypeError, match=r"runs on the host.*cocoa.train.train"):
        make_train(env, agents.make_for_env("reinforce", env), TrainConfig(updates=1))
    with pytest.raises(TypeError, match=r"without a table \(it does not jit\)"):
        envs.GymnasiumEnv(env)


def _mean_and_error(returns):
    returns = np.asarray(returns, np.float64).reshape(-1)
    return returns.mean(), returns.std(ddof=1) / np.sqrt(returns.size)


def test_the_host_loop_and_the_table_agree_on_frozen_lake():
    """One agent, 3,000 episodes through each path: the mean returns agree within sampling error, and
    the same comparison rejects the host loop against a different lake (the slippery one's table)."""
    agent = agents.make_for_env("reinforce", envs.make(FROZEN_LAKE, is_slippery=False), learning_rate=1e-2)
    table_env = envs.make(FROZEN_LAKE, is_slippery=False)
    # A policy that reaches the goal often enough for the means to tell lakes apart: 150 updates.
    state = train(table_env, agent, TrainConfig(updates=150, eval_interval=150, eval_episodes=8),
                  progress=False).final_state
    params = jax.tree.map(lambda x: x[0], state.policy_params)
    episodes = 3000

    host = envs.make(FROZEN_LAKE, is_slippery=False, use_table=False)
    assert isinstance(host, envs.GymnasiumHostEnv) and host.observation_shape == table_env.observation_shape
    collector = HostCollector(host, agent.behaviour_probs, seeds=1, episodes=episodes, seed=0)
    trajectory, _ = collector.collect(jax.tree.map(lambda x: x[None], params), jax.random.PRNGKey(1)[None])
    host_mean, host_error = _mean_and_error(episode_returns(trajectory))

    def table_returns(env):
        return episode_returns(jax.jit(lambda key: rollout(env, agent.behaviour_probs, params, key,
                                                           batch_size=episodes, horizon=100))(jax.random.PRNGKey(2)))

    table_mean, table_error = _mean_and_error(table_returns(table_env))
    z = (host_mean - table_mean) / np.hypot(host_error, table_error)
    assert 0.2 < host_mean < 0.95 and abs(z) < 4.0, (host_mean, table_mean, z)
    exact = float(oracle.expected_return(table_env.tabular_mdp(), agent.policy_table(params, table_env.tabular_mdp())))
    assert abs(host_mean - exact) < 4.0 * host_error
    slippery_mean, slippery_error = _mean_and_error(table_returns(envs.make(FROZEN_LAKE, is_slippery=True)))
    assert abs(host_mean - slippery_mean) / np.hypot(host_error, slippery_error) > 4.0


def test_frozen_lake_through_its_table_learns_within_the_default_budget(tmp_path):
    """``cocoa train --env gymnasium:FrozenLake-v1 --agent q-critic --seeds 4``: slippery 4x4, horizon
    100, the CLI's default budget (2,000 updates of 8 episodes) and its preset settings. The oracle's J
    of the learned (epsilon-free) policy, recorded by every evaluation on a tabular environment, goes
    from about 0.015 (uniform policy) to at least 0.5 (mean of 4 seeds; 8 in docs/environments/frozen_lake.md).
    Run as the command itself, in a process of its own: the tests' cheap-compile setting would make it
    three times slower."""
    mdp = envs.make(FROZEN_LAKE).tabular_mdp()
    uniform = float(oracle.expected_return(mdp, jnp.full((mdp.num_states, 4), 0.25)))
    assert 0.01 < uniform < 0.02
    environment = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    command = [sys.executable, "-m", "cocoa.cli", "train", "--env", FROZEN_LAKE, "--env-option", "is_slippery=true",
               "--env-option", "horizon=100", "--agent", "q-critic", "--seeds", "4", "--eval-interval", "1000",
               "--no-progress", "--out", str(tmp_path)]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert "settings tuned here" in finished.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    with open(tmp_path / "metrics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["update"] == "2000"]
    assert len(rows) == 4
    assert summary["final"]["exact_return"] == pytest.approx(np.mean([float(row["exact_return"]) for row in rows]))
    print(f"exact J per seed: {[round(float(row['exact_return']), 3) for row in rows]}")
    assert summary["final"]["exact_return"] >= 0.5, rows


def test_cartpole_through_the_host_loop_learns_with_advantage():
    """The mean return of the epsilon-free policy rises at least five-fold over the initial policy's."""
    env = envs.make("gymnasium:CartPole-v1")
    agent = agents.make_for_env("advantage", env)
    result = train(env, agent, TrainConfig(updates=60, eval_interval=60, eval_episodes=16), progress=False)
    first, last = (row["return"] for row in result.rows)
    assert last >= 5 * first, (first, last)
    assert result.env_steps > 60 * 8 * 9  # every update collected 8 whole episodes (at least 9 steps each)


def test_reward_support_is_declared_for_host_envs_and_checked_while_training():
    env = envs.make("gymnasium:CartPole-v1")
    with pytest.raises(ValueError, match=r"cocoa-reward needs the finite reward support.*reward_values=0,1"):
        agents.make_for_env("cocoa-reward", env)
    with pytest.raises(TypeError, match="no tabular form"):
        agents.make_for_env("cocoa-reward-gt", env)
    wrong = agents.make_for_env("cocoa-reward", env, reward_values=(0.0, 2.0))
    with pytest.raises(ValueError, match=r"got reward 1, which is not in its declared reward_values \[0.0, 2.0\]"):
        train(env, wrong, TrainConfig(updates=1, eval_episodes=2), progress=False)
    right = agents.make_for_env("cocoa-reward", env, reward_values=(0.0, 1.0))
    result = train(env, right, TrainConfig(updates=2, eval_interval=2, eval_episodes=2), progress=False)
    assert len(result.rows) == 2


def test_host_training_is_reproducible_and_refuses_shadows():
    env = envs.make("gymnasium:CartPole-v1")
    agent = agents.make_for_env("reinforce", env)
    config = TrainConfig(updates=3, eval_interval=3, eval_episodes=4, seeds=2)
    first, second = (train(env, agent, config, progress=False) for _ in range(2))
    assert first.rows == second.rows and first.rows[0]["return"] != first.rows[1]["return"]  # seeds differ
    with pytest.raises(ValueError, match="shadow training .* no tabular form"):
        train(env, agent, config, progress=False, shadows=[agents.make_for_env("advantage", env)])


def test_host_training_fits_cocoa_features_once_on_host_episodes():
    """COCOA-feature's one-off fit runs on episodes collected on the host, then the features stay frozen."""
    env = envs.make(FROZEN_LAKE, is_slippery=False, use_table=False)
    agent = agents.make_for_env("cocoa-feature", env, fit_episodes=16, fit_steps=200, fit_batch_size=64)
    runs = {updates: train(env, agent, TrainConfig(updates=updates, eval_interval=updates, eval_episodes=4, seeds=2),
                           progress=False).final_state.model_params for updates in (1, 4)}
    unfitted = jax.vmap(agent.init, in_axes=(0, None))(_keys_of_seeds(0, 2)[0], env.observation_shape)
    for name in ("gate", "readout"):  # fitted: moved from train()'s own initialisation; frozen: the same after 1 and 4 updates
        assert not np.allclose(runs[4]["features"][name], unfitted.model_params["features"][name])
        np.testing.assert_array_equal(runs[1]["features"][name], runs[4]["features"][name])
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(runs[1]["hindsight"]),
                                                      jax.tree.leaves(runs[4]["hindsight"])))  # which trained


@pytest.mark.parametrize("start, message", [
    (np.full(16, np.nan), "initial_state_distrib must be a distribution; it sums to nan"),
    (np.full(16, 0.5), "initial_state_distrib must be a distribution; it sums to 8"),
])
def test_a_start_distribution_that_is_not_one_is_refused(start, message):
    lake = gymnasium.make("FrozenLake-v1")
    lake.unwrapped.initial_state_distrib = start
    with pytest.raises(ValueError, match=message):
        envs.from_gymnasium(lake)
