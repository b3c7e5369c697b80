"""The jitted training loop: learning, determinism across runs and seed counts, NaN detection, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import agents, envs
from cocoa.agents import Agent, AgentConfig, Estimator
from cocoa.train import NonFiniteError, TrainConfig, train

NAME = "LinearKeyToDoor-v0"


def test_advantage_learns_the_apples_on_key_to_door():
    env = envs.make(NAME, length=23)
    agent = agents.make("advantage", num_actions=env.num_actions)
    config = TrainConfig()
    assert (config.updates, config.batch_size) == (2000, 8)
    result = train(env, agent, config, progress=False)
    first = [row for row in result.rows if row["update"] == 0][0]
    final = result.final_means()
    assert first["distractor_rate"] < 0.6  # the untrained policy picks apples at chance
    assert final["distractor_rate"] > 0.9
    assert final["return"] > first["return"]
    assert result.env_steps == config.updates * config.batch_size * 23
    assert [row["update"] for row in result.rows] == list(range(0, 2001, 100))


def _short_run(seeds: int, **overrides):
    env = envs.make(NAME, length=11)
    agent = agents.make("advantage", num_actions=env.num_actions, hidden_sizes=(16,), model_hidden_sizes=(16,))
    config = TrainConfig(**{**dict(updates=200, eval_interval=100, seeds=seeds, seed=7, eval_episodes=32),
                            **overrides})
    return train(env, agent, config, progress=False)


def test_same_seed_gives_identical_rows_and_seed_rows_do_not_depend_on_seed_count():
    first = _short_run(seeds=1)
    again = _short_run(seeds=1)
    assert len(first.rows) == 3
    assert first.rows == again.rows
    # Training really changed something, so equality is not trivial.
    assert first.rows[0]["return"] != first.rows[-1]["return"]
    np.testing.assert_array_equal(jax.tree.leaves(first.final_state.policy_params)[0],
                                  jax.tree.leaves(again.final_state.policy_params)[0])

    both = _short_run(seeds=2)
    assert len(both.rows) == 6
    seed0 = [row for row in both.rows if row["seed"] == 0]
    seed1 = [row for row in both.rows if row["seed"] == 1]
    # The oracle's float32 dynamic programme may round differently when vmapped over more seeds.
    without_exact = lambda rows: [{k: v for k, v in row.items() if k != "exact_return"} for row in rows]
    assert without_exact(seed0) == without_exact(first.rows)
    np.testing.assert_allclose([row["exact_return"] for row in seed0], [row["exact_return"] for row in first.rows],
                               rtol=1e-5)
    assert seed1 != seed0  # the seeds are different runs


def test_uneven_eval_interval_evaluates_at_the_end():
    result = _short_run(seeds=1, updates=150)
    assert [row["update"] for row in result.rows] == [0, 100, 150]
    assert [row["episodes"] for row in result.rows] == [0, 800, 1200]


def test_huge_learning_rate_stops_with_non_finite_error():
    env = envs.make(NAME, length=11)
    agent = agents.make("reinforce", num_actions=env.num_actions, learning_rate=1e30, hidden_sizes=(16,))
    with pytest.raises(NonFiniteError, match=r"NaN or inf in '\w+' for seed \d between updates 0 and 20 "
                                             r"\(reinforce on LinearKeyToDoor-v0\)"):
        train(env, agent, TrainConfig(updates=60, eval_interval=20, seeds=2), progress=False)


class DelayedNaN(Estimator):
    """REINFORCE-like credit that turns NaN once a counter in its model passes zero.

    The counter starts at -1.5 and its loss -counter makes Adam (lr 0.01) raise it by about 0.01 per
    update, so the credit becomes NaN around update 150.
    """

    name = "delayed-nan"

    def init_model(self, key, observation_shape, num_actions):
        del key, observation_shape, num_actions
        return {"counter": jnp.float32(-1.5)}

    def model_loss(self, model_params, trajectory):
        del trajectory
        return -model_params["counter"]

    def credit(self, model_params, trajectory):
        one_hot = jax.nn.one_hot(trajectory.actions, trajectory.num_actions)
        credit = one_hot * trajectory.rewards[..., None]
        return jnp.where(model_params["counter"] > 0, jnp.nan, credit)

    def expected_credit(self, model_params, mdp, policy_probs):  # before the NaN: pi(a | s) r(s, a)
        del model_params
        return jnp.broadcast_to(policy_probs * mdp.expected_rewards(), (mdp.horizon, *policy_probs.shape))


def test_nan_credit_stops_training_naming_seed_and_updates():
    env = envs.make(NAME, length=11)
    agent = Agent(DelayedNaN(), env.num_actions, AgentConfig(hidden_sizes=(16,), model_learning_rate=0.01))
    seen = []
    with pytest.raises(NonFiniteError, match=r"for seed 0 between updates 100 and 200 \(delayed-nan on "
                                             r"LinearKeyToDoor-v0\)"):
        train(env, agent, TrainConfig(updates=400, eval_interval=100), progress=False,
              on_evaluation=seen.extend)
    # Evaluations before the failure were reported; none after it.
    assert [row["update"] for row in seen] == [0, 100]


@pytest.mark.parametrize("field, value", [
    ("updates", 0), ("batch_size", -1), ("seeds", 0), ("eval_interval", 0), ("eval_episodes", 2.5),
    ("updates", "many"), ("horizon", 0), ("horizon", 3.0),
])
def test_bad_train_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"{field} must be a positive integer.*; got {value!r}"):
        TrainConfig(**{field: value})


def test_train_rejects_wrong_argument_types():
    env = envs.make(NAME, length=5)
    agent = agents.make("reinforce", num_actions=4)
    with pytest.raises(TypeError, match=r"expected an environment: a name \(one of .*LinearKeyToDoor-v0.*got int"):
        train(42, agent, TrainConfig(updates=1), progress=False)
    with pytest.raises(TypeError, match=r"agent must be a cocoa\.agents\.Agent; got str"):
        train(env, "reinforce", TrainConfig(updates=1), progress=False)


def test_policy_per_state_is_exact():
    """Running the networks once per tabular state and gathering gives the per-step results."""
    from cocoa.rollout import rollout

    env = envs.make("LinearKeyToDoor-v0", length=7)
    for name in ("reinforce", "cocoa-reward", "cocoa-feature", "advantage"):
        agent = agents.make_for_env(name, env)
        state = agent.init(jax.random.PRNGKey(1), env.observation_shape)
        update = jax.jit(agent.update)
        key = jax.random.PRNGKey(2)
        per_step = rollout(env, agent.behaviour_probs, state.policy_params, key, batch_size=16, horizon=7,
                           per_state=False)
        per_state = rollout(env, agent.behaviour_probs, state.policy_params, key, batch_size=16, horizon=7,
                            per_state=True)
        assert per_step.num_states == 0 and per_state.num_states == env.tabular_mdp().num_states
        np.testing.assert_array_equal(per_step.actions, per_state.actions)
        np.testing.assert_allclose(per_step.policy_probs, per_state.policy_probs, rtol=1e-6, atol=1e-7)
        stepped, metrics = update(state, per_step)
        gathered, gathered_metrics = update(state, per_state)
        for a, b in zip(jax.tree.leaves(stepped), jax.tree.leaves(gathered)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(metrics["model_loss"], gathered_metrics["model_loss"], rtol=1e-5, err_msg=name)


def test_policy_per_state_training_matches_per_step():
    env = envs.make("LinearKeyToDoor-v0", length=7)
    agent = agents.make_for_env("cocoa-reward", env)
    base = dict(updates=60, eval_interval=30, seeds=2, eval_episodes=16)
    per_state = train(env, agent, TrainConfig(**base, policy_per_state=True), progress=False)
    per_step = train(env, agent, TrainConfig(**base, policy_per_state=False), progress=False)
    for a, b in zip(per_state.rows, per_step.rows):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key


def test_an_agent_for_another_action_count_fails_at_once_naming_both():
    env = envs.make("LinearKeyToDoor-v0", length=5)
    agent = agents.make("reinforce", num_actions=3)
    with pytest.raises(ValueError, match="built for 3 actions but LinearKeyToDoor-v0 has 4"):
        train(env, agent, TrainConfig(updates=1, eval_interval=1), progress=False)


@pytest.mark.parametrize("make, message", [
    (lambda: agents.make("q-critic", num_actions=4, td_lambda="x"), "td_lambda must be a number"),
    (lambda: agents.make("cocoa-reward", num_actions=4, reward_values=(0.0, 1.0), model_hidden_sizes="ab"),
     "model_hidden_sizes must be a sequence of numbers"),
    (lambda: agents.make("reinforce", num_actions=4, model_first=1), "model_first must be True or False"),
    (lambda: envs.make("LinearKeyToDoor-v0", distractor_rewards="ab"), "distractor_rewards must be a sequence"),
    (lambda: envs.make("LinearKeyToDoor-v0", distractor_prob="x"), "distractor_prob must be a number"),
    (lambda: envs.make("LinearKeyToDoor-v0", length=7.0), "length must be an integer"),
])
def test_python_api_type_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_make_train_is_the_core_that_train_drives():
    """The pure one-seed core and the driver (evaluating between segments) reach the same parameters."""
    from cocoa.train import make_train

    env = envs.make("LinearKeyToDoor-v0", length=5)
    agent = agents.make_for_env("advantage", env)
    config = TrainConfig(updates=30, batch_size=4, seeds=2, eval_interval=10, eval_episodes=4)
    driven = train(env, agent, config, progress=False).final_state
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(config.seed), i))(jnp.arange(config.seeds))
    (core, _), metrics = jax.jit(jax.vmap(make_train(env, agent, config)))(keys)
    for a, b in zip(jax.tree.leaves(driven.policy_params), jax.tree.leaves(core.policy_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert metrics["env_steps"].shape == (2, 30) and (np.asarray(metrics["env_steps"]) == 4 * 5).all()


def test_make_train_checks_its_input():
    from cocoa.train import make_train

    env = envs.make("LinearKeyToDoor-v0", length=5)
    with pytest.raises(ValueError, match="built for 3 actions but LinearKeyToDoor-v0 has 4"):
        make_train(env, agents.make("reinforce", num_actions=3), TrainConfig(updates=1))
    with pytest.raises(TypeError, match="config must be a cocoa.train.TrainConfig; got dict"):
        make_train(env, agents.make_for_env("reinforce", env), {"updates": 1})


def test_env_changes_switch_the_environment_for_training_and_evaluation():
    """Key-to-door's reward switch: from update 4 on the treasure pays -0.2; the evaluation at the change
    point and the shadow measurements from then on use the new MDP."""
    from cocoa import oracle

    before = envs.make(NAME, length=5, door_opens_with_key=True)
    after = envs.make(NAME, length=5, door_opens_with_key=True, treasure_reward=-0.2)
    agent = agents.make_for_env("reinforce", before)
    config = TrainConfig(updates=8, eval_interval=3, eval_episodes=4)
    seen = []
    result = train(before, agent, config, progress=False, env_changes={4: after},
                   shadows=[agents.make_for_env("advantage", before)],
                   on_shadows=lambda update, states, shadow_states, env: seen.append((update, env)))
    assert [row["update"] for row in result.rows] == [0, 3, 4, 6, 8]
    assert [env is after for _, env in seen] == [False, False, True, True, True]
    policy = jax.tree.map(lambda x: x[0], result.final_state.policy_params)
    mdp = after.tabular_mdp()
    expected = float(oracle.expected_return(mdp, agent.greedy_free_probs(policy, jnp.asarray(mdp.observations))))
    assert result.rows[-1]["exact_return"] == pytest.approx(expected, rel=1e-5)


def test_env_changes_are_checked():
    env = envs.make(NAME, length=5)
    agent = agents.make_for_env("reinforce", env)
    config = TrainConfig(updates=4)
    with pytest.raises(ValueError, match=r"env_changes: 9 must be an update in \[1, 3\]"):
        train(env, agent, config, progress=False, env_changes={9: env})
    with pytest.raises(TypeError, match=r"env_changes\[2\] must be a LinearKeyToDoor"):
        train(env, agent, config, progress=False, env_changes={2: envs.make("Tree-v0")})
    with pytest.raises(ValueError, match="must keep the shapes"):
        train(env, agent, config, progress=False, env_changes={2: envs.make(NAME, length=6)})
    exact = agents.make_for_env("advantage-gt", env)
    with pytest.raises(ValueError, match="'advantage-gt' takes its model from one exact MDP"):
        train(env, exact, config, progress=False, env_changes={2: envs.make(NAME, length=5, treasure_reward=-1.0)})
    narrow = agents.make_for_env("cocoa-reward", env)
    with pytest.raises(ValueError, match=r"from update 2 the rewards include \[-4.6"):
        train(env, narrow, config, progress=False, env_changes={2: envs.make(NAME, length=5, treasure_reward=-1.0)})
