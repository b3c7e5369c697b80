"""The Gymnasium / dm_env adapters and from_gymnasium (toy-text P tables -> TabularMDP)."""

import dm_env
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cocoa
from cocoa import oracle
from cocoa.envs import DmEnvAdapter, GymnasiumEnv, from_gymnasium, register_gymnasium_envs
from cocoa.envs.key_to_door import (DOOR, LEFT_APPLE, OPEN_DOOR, PICK_KEY, PICK_LEFT, PICK_RIGHT,
                                    RIGHT_APPLE)

KEY_TO_DOOR = "cocoa/LinearKeyToDoor-v0"
Z_BOUND = 4.0


def _perfect_actions(env):
    """Pick the key, pick every apple on its side, open the door."""
    layout = np.asarray(env.default_params.layout)
    actions = np.full(layout.shape, PICK_KEY)
    actions[layout == LEFT_APPLE] = PICK_LEFT
    actions[layout == RIGHT_APPLE] = PICK_RIGHT
    actions[layout == DOOR] = OPEN_DOOR
    return actions


def _functional_episode(env, actions):
    """Rewards and observations from stepping the pure functions directly."""
    step = jax.jit(env.step)
    key = jax.random.key(123)
    obs, state = env.reset(key)
    observations, rewards = [np.asarray(obs)], []
    for action in actions:
        obs, state, reward, done, _ = step(key, state, action)
        observations.append(np.asarray(obs))
        rewards.append(float(reward))
    assert bool(done)
    return np.stack(observations), np.asarray(rewards)


# --- Gymnasium adapter -----------------------------------------------------------------------

def test_registered_env_spaces():  # check_env on every env: test_env_conformance
    env = gymnasium.make(KEY_TO_DOOR, length=23)
    assert env.spec.max_episode_steps is None
    assert env.observation_space == gymnasium.spaces.Box(0.0, 1.0, (9,), np.float32)
    assert env.action_space == gymnasium.spaces.Discrete(4)


def test_episode_matches_functional_env_and_reports_treasure_and_apples():
    # Equal distractor rewards make every reward deterministic, so the comparison needs no shared key.
    env = gymnasium.make(KEY_TO_DOOR, length=12, distractor_rewards=(0.3, 0.3))
    functional = env.unwrapped.cocoa_env
    actions = _perfect_actions(functional)
    layout = np.asarray(functional.default_params.layout)
    num_apples = int(np.isin(layout, [LEFT_APPLE, RIGHT_APPLE]).sum())
    assert num_apples >= 3, "the layout should hold apples for the test to mean something"

    expected_obs, expected_rewards = _functional_episode(functional, actions)
    obs, info = env.reset(seed=5)
    observations, rewards = [obs], []
    for t, action in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(int(action))
        observations.append(obs)
        rewards.append(reward)
        assert terminated == (t == len(actions) - 1) and truncated is False
        assert isinstance(reward, float) and obs.dtype == np.float32
    np.testing.assert_array_equal(np.stack(observations), expected_obs)
    np.testing.assert_allclose(rewards, expected_rewards, rtol=1e-6)
    scale = 23.0 / 12
    assert rewards[-1] == pytest.approx(0.2 * scale)  # the treasure
    assert info["treasure_rate"] == 1.0
    assert info["distractor_rate"] == 1.0
    assert info["episode_totals"] == {"apple": num_apples, "apple_picked": num_apples, "treasure": 1}
    assert info["episode_length"] == 12
    assert info["episode_return"] == pytest.approx(sum(rewards))

    # Skip the key and leave every other apple: no treasure, a fraction of the apples.
    lazy = actions.copy()
    lazy[0] = PICK_LEFT
    apple_cells = np.flatnonzero(np.isin(layout, [LEFT_APPLE, RIGHT_APPLE]))
    lazy[apple_cells[::2]] = OPEN_DOOR  # no apple is picked with "open door"
    env.reset(seed=6)
    for action in lazy:
        *_, info = env.step(int(action))
    assert info["treasure_rate"] == 0.0
    assert info["distractor_rate"] == pytest.approx(len(apple_cells[1::2]) / num_apples)


def test_reset_seed_reproduces_stochastic_rewards():
    env = gymnasium.make(KEY_TO_DOOR, length=23)
    actions = _perfect_actions(env.unwrapped.cocoa_env)

    def episode(seed):
        env.reset(seed=seed)
        return [env.step(int(a))[1] for a in actions]

    first, again, other = episode(0), episode(0), [episode(seed) for seed in range(1, 4)]
    assert first == again
    assert any(rewards != first for rewards in other), "distractor rewards should vary with the seed"


def test_stepping_a_finished_episode_or_a_bad_action_raises():
    env = GymnasiumEnv("LinearKeyToDoor-v0", length=3)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 4\); got 4"):
        env.step(4)
    for _ in range(3):
        *_, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(RuntimeError, match="terminated; call reset"):
        env.step(0)
    env.reset()
    env.step(0)  # fine again after reset


def test_bad_construction_errors():
    with pytest.raises(ValueError, match="unknown environment 'Nope'.*LinearKeyToDoor-v0"):
        GymnasiumEnv("Nope")
    with pytest.raises(ValueError, match="no parameter.*colour"):
        gymnasium.make(KEY_TO_DOOR, colour="red")
    with pytest.raises(ValueError, match="render_mode must be None or 'ansi'; got 'human'"):
        GymnasiumEnv("LinearKeyToDoor-v0", render_mode="human")
    with pytest.raises(ValueError, match="already built"):
        GymnasiumEnv(cocoa.envs.make("LinearKeyToDoor-v0"), length=5)


def test_registration_is_idempotent_and_covers_every_env():
    ids = register_gymnasium_envs()
    assert ids == register_gymnasium_envs()
    assert ids == [f"cocoa/{name}" for name in cocoa.envs.names()]
    assert all(env_id in gymnasium.registry for env_id in ids)


def test_sync_vector_env_runs_and_autoresets():
    envs = gymnasium.make_vec(KEY_TO_DOOR, num_envs=3, vectorization_mode="sync", length=4)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 9) and obs.dtype == np.float32
    for t in range(4):
        obs, rewards, terminated, truncated, infos = envs.step(np.array([PICK_KEY, PICK_LEFT, OPEN_DOOR]))
        assert rewards.shape == (3,) and not truncated.any()
        assert terminated.all() == (t == 3)
    # Only the env that picked the key can open the door.
    np.testing.assert_array_equal(infos["treasure_rate"], [0.0, 0.0, 0.0])
    first, _ = envs.reset(seed=1)
    for action in ([PICK_KEY] * 3, [0] * 3, [OPEN_DOOR] * 3, [0] * 3):
        obs, rewards, terminated, _, infos = envs.step(np.array(action))
    assert terminated.all() and (infos["treasure_rate"] == 1.0).all()
    obs, *_ = envs.step(np.zeros(3, int))  # NEXT_STEP autoreset: this step only resets
    np.testing.assert_array_equal(obs, first)
    envs.close()


# --- dm_env adapter ----------------------------------------------------------------------------

def test_dm_env_episode_step_types_and_returns():
    env = DmEnvAdapter("LinearKeyToDoor-v0", seed=0, length=8, distractor_rewards=(0.3, 0.3))
    actions = _perfect_actions(env.cocoa_env)
    expected_obs, expected_rewards = _functional_episode(env.cocoa_env, actions)
    timestep = env.reset()
    assert timestep.step_type == dm_env.StepType.FIRST and timestep.reward is None
    timesteps = [timestep] + [env.step(int(a)) for a in actions]
    assert [ts.step_type for ts in timesteps] == (
        [dm_env.StepType.FIRST] + [dm_env.StepType.MID] * 7 + [dm_env.StepType.LAST])
    assert [float(ts.discount) for ts in timesteps[1:]] == [1.0] * 7 + [0.0]
    np.testing.assert_allclose([ts.reward for ts in timesteps[1:]], expected_rewards, rtol=1e-6)
    np.testing.assert_array_equal(np.stack([ts.observation for ts in timesteps]), expected_obs)
    for ts in timesteps[1:]:
        env.observation_spec().validate(ts.observation)
        env.reward_spec().validate(ts.reward)
        env.discount_spec().validate(ts.discount)
    assert env.info["treasure_rate"] == 1.0 and env.info["distractor_rate"] == 1.0
    assert env.info["episode_return"] == pytest.approx(expected_rewards.sum())
    assert env.action_spec().num_values == 4
    assert env.step(0).first()  # after LAST, step starts a new episode


# --- from_gymnasium ------------------------------------------------------------------------------

def _monte_carlo_returns(env, policy, num_episodes, seed):
    """Returns of ``num_episodes`` episodes of the real env under a (S, A) policy table."""
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(policy, axis=1)
    cumulative[:, -1] = 1.0
    returns = np.zeros(num_episodes)
    state, _ = env.reset(seed=seed)
    for episode in range(num_episodes):
        if episode:
            state, _ = env.reset()
        done = False
        while not done:
            action = int(np.searchsorted(cumulative[state], rng.random(), side="right"))
            state, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += reward
            done = terminated or truncated
    return returns


def _z_score(returns, value):
    return (returns.mean() - value) / (returns.std(ddof=1) / np.sqrt(returns.size))


def _expected_return(mdp, policy):
    with jax.enable_x64(True):
        return float(oracle.expected_return(mdp, jnp.asarray(policy, dtype=jnp.float64)))


# Value iteration's greedy actions on the slippery 4x4 lake (0 left, 1 down, 2 right, 3 up).
FROZEN_LAKE_BEST_ACTIONS = [0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0]


def test_frozen_lake_oracle_return_matches_the_real_env():
    mdp = from_gymnasium("FrozenLake-v1", horizon=100, is_slippery=True, map_name="4x4")
    # Gymnasium documents the optimum of FrozenLake-v1 as 0.74; this deterministic policy attains it.
    best = np.eye(4)[FROZEN_LAKE_BEST_ACTIONS + [0]]
    assert _expected_return(mdp, best) == pytest.approx(0.74, abs=0.005)

    # Non-uniform and stochastic: the best actions mixed with random per-state noise.
    rng = np.random.default_rng(0)
    policy = 0.6 * best + 0.4 * rng.dirichlet(np.ones(4), size=mdp.num_states)
    value = _expected_return(mdp, policy)

    real = gymnasium.make("FrozenLake-v1", is_slippery=True, map_name="4x4")  # TimeLimit: 100 steps
    returns = _monte_carlo_returns(real, policy, num_episodes=4000, seed=1)
    assert abs(_z_score(returns, value)) < Z_BOUND

    # The same comparison rejects a wrong value: the uniform policy's exact return.
    wrong = _expected_return(mdp, np.full_like(policy, 0.25))
    assert abs(_z_score(returns, wrong)) > Z_BOUND


def test_frozen_lake_table_structure_and_horizon():
    mdp = from_gymnasium("FrozenLake-v1", horizon=100, is_slippery=True)
    assert mdp.num_states == 17 and mdp.num_actions == 4 and mdp.num_successors == 3
    np.testing.assert_array_equal(mdp.reward_values, [0.0, 1.0])
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), [16])
    assert mdp.initial[0] == 1.0 and mdp.observations.shape == (17, 16)
    dense = mdp.dense_transitions()
    # Corner state 0, LEFT slips to UP / LEFT (both stay: merged) or DOWN.
    np.testing.assert_allclose(dense[0, 0, [0, 4]], [2 / 3, 1 / 3])
    # State 14, RIGHT reaches the goal w.p. 1/3 (reward 1, then the terminal state).
    assert dense[14, 2, 16] == pytest.approx(1 / 3)
    assert mdp.expected_rewards()[14, 2] == pytest.approx(1 / 3)
    # Falling into a hole (state 5) also terminates, with no reward.
    assert dense[4, 2, 16] == pytest.approx(1 / 3) and mdp.expected_rewards()[4, 2] == 0.0

    # Deterministic lake: the path down, down, right, right, down, right takes 6 steps to the goal.
    lake = from_gymnasium(gymnasium.make("FrozenLake-v1", is_slippery=False), horizon=6)
    path = {0: 1, 4: 1, 8: 2, 9: 2, 10: 1, 14: 2}
    policy = np.full((17, 4), 0.25)
    for state, action in path.items():
        policy[state] = np.eye(4)[action]
    assert _expected_return(lake, policy) == pytest.approx(1.0)
    short = from_gymnasium(gymnasium.make("FrozenLake-v1", is_slippery=False), horizon=5)
    assert _expected_return(short, policy) == pytest.approx(0.0)


@pytest.mark.parametrize("env_id, kwargs, num_successors, rewards", [
    ("CliffWalking-v1", {}, 1, [-100.0, -1.0, 0.0]),
    ("CliffWalkingSlippery-v1", {}, 3, [-100.0, -1.0, 0.0]),
    ("Taxi-v4", {}, 1, [-10.0, -1.0, 0.0, 20.0]),
])
def test_cliff_walking_and_taxi_build_valid_mdps(env_id, kwargs, num_successors, rewards):
    mdp = from_gymnasium(env_id, horizon=20, **kwargs)
    num_states = {"CliffWalking-v1": 48, "CliffWalkingSlippery-v1": 48, "Taxi-v4": 500}[env_id]
    assert mdp.num_states == num_states + 1 and mdp.num_successors == num_successors
    np.testing.assert_array_equal(mdp.reward_values, rewards)
    uniform = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    assert np.isfinite(_expected_return(mdp, uniform))


def test_terminating_outcomes_lead_to_the_terminal_state():
    cliff = from_gymnasium("CliffWalking-v1", horizon=20).dense_transitions()
    assert cliff[35, 2, 48] == 1.0  # down from (2, 11) into the goal (47) ends the episode
    assert cliff[36, 1, 36] == 1.0  # right from the start into the cliff: back to the start, not ended
    taxi_env = gymnasium.make("Taxi-v4").unwrapped
    taxi = from_gymnasium(taxi_env, horizon=20)
    carrying_home = taxi_env.encode(0, 0, 4, 0)  # at location R with the passenger, whose destination is R
    assert taxi.dense_transitions()[carrying_home, 5, 500] == 1.0
    assert taxi.expected_rewards()[carrying_home, 5] == 20.0


def test_cliff_walking_oracle_return_matches_the_real_env():
    # Mostly a safe path to the goal: up two rows from the start, right along row 1, down at the end;
    # the rest of the horizon after the goal must pay nothing (the episode is over).
    horizon = 40
    mdp = from_gymnasium("CliffWalking-v1", horizon=horizon)
    row, col = np.divmod(np.arange(48), 12)
    up, right, down = 0, 1, 2
    actions = np.select([row == 0, row == 1, row == 2],
                        [down, np.where(col == 11, down, right), np.where(col == 11, down, up)], up)
    policy = 0.9 * np.eye(4)[np.append(actions, 0)] + 0.1 / 4
    value = _expected_return(mdp, policy)
    real = gymnasium.make("CliffWalking-v1", max_episode_steps=horizon)
    returns = _monte_carlo_returns(real, policy, num_episodes=1000, seed=4)
    assert abs(_z_score(returns, value)) < Z_BOUND
    assert abs(_z_score(returns, value + 5.0)) > Z_BOUND


def test_rainy_taxi_oracle_return_matches_the_real_env():
    horizon = 30
    mdp = from_gymnasium("Taxi-v4", horizon=horizon, is_rainy=True)
    assert mdp.num_successors == 3
    rng = np.random.default_rng(2)
    policy = rng.dirichlet(np.ones(6), size=mdp.num_states)
    value = _expected_return(mdp, policy)
    real = gymnasium.make("Taxi-v4", is_rainy=True, max_episode_steps=horizon)
    returns = _monte_carlo_returns(real, policy, num_episodes=1500, seed=3)
    assert abs(_z_score(returns, value)) < Z_BOUND
    assert abs(_z_score(returns, value + 5.0)) > Z_BOUND  # a 5-point error is caught


def test_from_gymnasium_errors():
    with pytest.raises(TypeError, match="CartPole-v1 has no transition table `P`"):
        from_gymnasium("CartPole-v1", horizon=10)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1.*got 0"):
        from_gymnasium("FrozenLake-v1", horizon=0)
    with pytest.raises(ValueError, match="CliffWalking-v1 has no max_episode_steps; pass horizon"):
        from_gymnasium("CliffWalking-v1")
    with pytest.raises(ValueError, match="fickle_passenger"):
        from_gymnasium("Taxi-v4", horizon=10, fickle_passenger=True)
    with pytest.raises(ValueError, match="only be given with a Gymnasium id"):
        from_gymnasium(gymnasium.make("FrozenLake-v1"), horizon=10, is_slippery=False)
    with pytest.raises(TypeError, match="expected a gymnasium.Env"):
        from_gymnasium(object(), horizon=10)
    assert from_gymnasium("FrozenLake-v1").horizon == 100  # default: max_episode_steps


def test_from_gymnasium_rejects_a_malformed_table():
    env = gymnasium.make("FrozenLake-v1", is_slippery=False).unwrapped
    env.P[3][1] = [(0.5, 2, 0.0, False)]
    with pytest.raises(ValueError, match=r"P\[3\]\[1\] probabilities sum to 0.5; expected 1"):
        from_gymnasium(env, horizon=10)
    env.P[3][1] = [(1.0, 99, 0.0, False)]
    with pytest.raises(ValueError, match=r"next states must be integers in \[0, 16\)"):
        from_gymnasium(env, horizon=10)
    del env.P[3]
    with pytest.raises(ValueError, match="every state"):
        from_gymnasium(env, horizon=10)
