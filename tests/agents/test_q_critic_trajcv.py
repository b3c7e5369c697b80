"""Q-critic and TrajCV beyond the conformance suite (test_conformance): a random critic is rejected,
exact expected gradients, credit fixed by (t, S_t), the critic's targets and loss, option errors and
training smoke runs, on the shared key-to-door setting (tests/estimator_checks.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from estimator_checks import EPSILON, LENGTH, Z_BOUND, credit_z_scores, gradient_z_scores, lambda_returns_by_hand

from cocoa import agents, envs, oracle
from cocoa.agents import QCritic, TrajCV, q_critic, q_model, returns, tabular_policy, trajcv
from cocoa.rollout import rollout
from cocoa.train import TrainConfig, train


def random_q_network(setting, **options):
    """An untrained Q_hat (a fixed random MLP): far from Q^pi, varying over states and actions."""
    estimator = QCritic(model_hidden_sizes=(32,), **options)
    params = estimator.init_model(jax.random.PRNGKey(5), setting["env"].observation_shape, 4)
    q = np.asarray(estimator.q_values(params, jnp.asarray(setting["mdp"].observations)))
    assert q.shape == (setting["mdp"].num_states, 4)
    assert np.abs(q - q.mean(-1, keepdims=True)).max() > 0.05  # really differs across actions
    return params


def build(name, setting, **options):
    """(estimator, model_params): ``-gt`` variants get the oracle tables of the rollout policy."""
    if name.endswith("-gt"):
        estimator = agents.make_estimator(name, mdp=setting["mdp"], **options)
        with jax.enable_x64(True):
            params = estimator.exact_model(setting["probs64"])
        return estimator, params
    estimator = agents.make_estimator(name, model_hidden_sizes=(32,), **options)
    return estimator, random_q_network(setting)


# --- unbiasedness of the gradient estimate ------------------------------------------------------

@pytest.mark.parametrize("baseline", [True, False])
def test_q_critic_with_a_random_network_is_rejected(setting, baseline):
    estimator, params = build("q-critic", setting, baseline=baseline)
    z, _, _, _ = gradient_z_scores(estimator, params, setting)
    assert np.abs(z).max() > 4 * Z_BOUND, f"max |z| = {np.abs(z).max():.2f}"
    # ... and its exact expected gradient (from expected_credit) is indeed off.
    mdp = setting["mdp"]
    with jax.enable_x64(True):
        expected = estimator.expected_credit(params, mdp, setting["probs64"])
        gradient = np.asarray(oracle.estimator_gradient(mdp, setting["logits"].astype(np.float64), expected,
                                                        epsilon=EPSILON))
    true = setting["true_gradient"]
    assert np.linalg.norm(gradient - true) > 0.3 * np.linalg.norm(true)


def test_exact_expected_gradients(setting):
    """Via expected_credit: TrajCV (any Q_hat) and Q-critic-gt give the true gradient exactly."""
    mdp, logits = setting["mdp"], setting["logits"].astype(np.float64)
    for name, options in [("trajcv", {}), ("trajcv-gt", {}), ("q-critic-gt", dict(baseline=True)),
                          ("q-critic-gt", dict(baseline=False))]:
        estimator, params = build(name, setting, **options)
        with jax.enable_x64(True):
            expected = estimator.expected_credit(params, mdp, setting["probs64"])
            gradient = oracle.estimator_gradient(mdp, logits, expected, epsilon=EPSILON)
        np.testing.assert_allclose(gradient, setting["true_gradient"], rtol=1e-5, atol=1e-6, err_msg=name)


# --- expected credit against Monte-Carlo credit -------------------------------------------------

@pytest.mark.parametrize("name, options", [
    ("q-critic", dict(baseline=True)),
    ("q-critic", dict(baseline=False)),
    ("q-critic-gt", dict(baseline=True)),
    ("q-critic-gt", dict(baseline=False)),
])
def test_q_critic_expected_credit_matches_its_credit(setting, name, options):
    """The Q-critic's credit is a deterministic function of (t, S_t): each sampled row must equal
    expected_credit[t, S_t] (so every Monte-Carlo mean per (t, state) does too)."""
    estimator, params = build(name, setting, **options)
    trajectory, mdp = setting["trajectory"], setting["mdp"]
    credit = np.asarray(estimator.credit(params, trajectory), np.float64)
    with jax.enable_x64(True):
        expected = np.asarray(estimator.expected_credit(params, mdp, setting["probs64"]))
    assert expected.shape == (mdp.horizon, mdp.num_states, mdp.num_actions)
    states = np.asarray(trajectory.state_index)
    mask = np.asarray(trajectory.mask).astype(bool)
    assert mask.all()  # key-to-door episodes last exactly L steps
    steps = np.broadcast_to(np.arange(LENGTH), states.shape)
    np.testing.assert_allclose(credit, expected[steps, states], rtol=1e-5, atol=1e-5)
    if options["baseline"]:  # the advantage form has zero pi-mean in every visited state
        probs = np.asarray(setting["probs64"])[states]
        np.testing.assert_allclose(np.sum(probs * credit, -1), 0.0, atol=1e-5)
    # A random network is not Q^pi: the check is not trivially satisfied by the oracle.
    if not name.endswith("-gt"):
        with jax.enable_x64(True):
            q = np.asarray(oracle.q_values(mdp, setting["probs64"]))
        assert np.abs(expected - q).max() > 0.1


def test_credit_check_rejects_trajcv_claiming_its_critic(setting):
    """Control: TrajCV's Monte-Carlo credit with a random Q_hat does not average to Q_hat."""

    class ClaimsCritic(TrajCV):
        def expected_credit(self, model_params, mdp, policy_probs):
            q = self.table_q_values(model_params, mdp)
            return q_critic.expected_credit(mdp, policy_probs, q, baseline=False)

    estimator = ClaimsCritic(model_hidden_sizes=(32,))
    z, _, _, _ = credit_z_scores(estimator, random_q_network(setting), setting)
    assert np.abs(z).max() > Z_BOUND


# --- credit and targets on hand arrays ----------------------------------------------------------

REWARDS = np.array([[1.0, 0.0, 2.0, 3.0],
                    [0.5, 4.0, 1.0, 9.0]], np.float32)
MASK = np.array([[1, 1, 1, 1],
                 [1, 1, 0, 0]], np.float32)
ACTIONS = np.array([[0, 1, 1, 0],
                    [1, 0, 1, 1]], np.int32)
Q = np.array([[[1.0, 3.0], [2.0, -2.0], [0.0, 4.0], [5.0, 1.0]],
              [[-1.0, 1.0], [6.0, 2.0], [7.0, 7.0], [8.0, 8.0]]], np.float32)
PROBS = np.array([[[0.5, 0.5], [0.25, 0.75], [0.5, 0.5], [0.9, 0.1]],
                  [[0.2, 0.8], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]], np.float32)


def test_expected_and_greedy_targets_on_hand_arrays():
    v = np.sum(PROBS * Q, -1)  # [[2, -1, 2, 4.6], [0.6, 4, 7, 8]]
    m = Q.max(-1)              # [[3, 2, 4, 5], [1, 6, 7, 8]]
    # lambda = 0: R_t + U(S_{t+1}); no bootstrap at the last step or into padding.
    expected = np.array([[1 + v[0, 1], 0 + v[0, 2], 2 + v[0, 3], 3], [0.5 + v[1, 1], 4, 0, 0]])
    greedy = np.array([[1 + m[0, 1], 0 + m[0, 2], 2 + m[0, 3], 3], [0.5 + m[1, 1], 4, 0, 0]])
    np.testing.assert_allclose(q_model.q_lambda_targets(REWARDS, Q, PROBS, MASK, 0.0, "expected"), expected,
                               rtol=1e-6)
    np.testing.assert_allclose(q_model.q_lambda_targets(REWARDS, Q, PROBS, MASK, 0.0, "greedy"), greedy,
                               rtol=1e-6)
    assert expected[0, 0] == pytest.approx(0.0) and greedy[0, 0] == pytest.approx(3.0)
    # lambda = 1: the Monte-Carlo return, whatever the bootstrap.
    for target in q_model.TARGETS:
        np.testing.assert_allclose(q_model.q_lambda_targets(REWARDS, Q, PROBS, MASK, 1.0, target),
                                   returns.reward_to_go(REWARDS, MASK), rtol=1e-6)
    # Intermediate lambda: the recursion target_t = R_t + (1 - lambda) U_{t+1} + lambda target_{t+1}.
    td_lambda = 0.7
    for target, u in (("expected", v), ("greedy", m)):
        next_u = np.concatenate([u[:, 1:], np.zeros_like(u[:, :1])], axis=1)  # U(S_{t+1}) at step t
        manual = lambda_returns_by_hand(REWARDS, next_u, MASK, td_lambda)
        np.testing.assert_allclose(q_model.q_lambda_targets(REWARDS, Q, PROBS, MASK, td_lambda, target), manual,
                                   rtol=1e-6)


def test_q_loss_regresses_the_taken_action_only_and_stops_target_gradients():
    targets = q_model.q_lambda_targets(REWARDS, Q, PROBS, MASK, 0.5, "expected")
    taken = np.take_along_axis(Q, ACTIONS[..., None], -1)[..., 0]
    loss = q_model.q_loss(jnp.asarray(Q), ACTIONS, REWARDS, PROBS, MASK, 0.5, "expected")
    manual = 0.5 * np.sum((taken - targets) ** 2 * MASK) / MASK.sum()
    assert float(loss) == pytest.approx(float(manual), rel=1e-6)
    grad = np.asarray(jax.grad(q_model.q_loss)(jnp.asarray(Q), ACTIONS, REWARDS, PROBS, MASK, 0.5, "expected"))
    expected_grad = np.zeros_like(Q)
    np.put_along_axis(expected_grad, ACTIONS[..., None], ((taken - targets) * MASK / MASK.sum())[..., None], -1)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-7)


def test_q_critic_credit_on_hand_arrays():
    with_baseline = np.asarray(q_critic.credit(Q, PROBS, MASK, baseline=True))
    without = np.asarray(q_critic.credit(Q, PROBS, MASK, baseline=False))
    np.testing.assert_allclose(without, Q * MASK[..., None])
    np.testing.assert_allclose(with_baseline, (Q - np.sum(PROBS * Q, -1, keepdims=True)) * MASK[..., None],
                               rtol=1e-6)
    np.testing.assert_allclose(with_baseline[1, 2:], 0.0)


def test_trajcv_credit_matches_a_loop_over_steps():
    credit = np.asarray(trajcv.credit(REWARDS, ACTIONS, PROBS, Q, MASK))
    manual = np.zeros_like(Q)
    for b in range(2):
        for t in range(4):
            if not MASK[b, t]:
                continue
            a_t = ACTIONS[b, t]
            g = sum(REWARDS[b, k] for k in range(t, 4) if MASK[b, k])
            future = sum(Q[b, k, ACTIONS[b, k]] - np.dot(PROBS[b, k], Q[b, k]) for k in range(t + 1, 4) if MASK[b, k])
            manual[b, t] = Q[b, t]
            manual[b, t, a_t] += (g - Q[b, t, a_t] - future) / PROBS[b, t, a_t]
    np.testing.assert_allclose(credit, manual, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(credit[1, 2:], 0.0)


# --- the critic learns Q^pi (and the greedy target does not) ------------------------------------

def _train_critic(env, mdp, logits, td_lambda, target, steps=300, batch_size=256):
    estimator = QCritic(model_hidden_sizes=(64,), td_lambda=td_lambda, target=target)
    params = estimator.init_model(jax.random.PRNGKey(0), env.observation_shape, env.num_actions)
    optimizer = optax.adam(optax.linear_schedule(1e-2, 0.0, steps))
    policy_fn = tabular_policy(mdp, EPSILON)

    def step(carry, key):
        params, opt_state = carry
        trajectory = rollout(env, policy_fn, logits, key, batch_size=batch_size, horizon=env.length)
        loss, grads = jax.value_and_grad(estimator.model_loss)(params, trajectory)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    keys = jax.random.split(jax.random.PRNGKey(1), steps)
    (params, _), losses = jax.jit(lambda c, k: jax.lax.scan(step, c, k))((params, optimizer.init(params)), keys)
    assert np.all(np.isfinite(np.asarray(losses)))
    return np.asarray(estimator.q_values(params, jnp.asarray(mdp.observations)))


@pytest.fixture(scope="module")
def critic_setting():
    env = envs.make("LinearKeyToDoor-v0", length=5, layout_seed=1)
    mdp = env.tabular_mdp()
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(mdp.num_states, mdp.num_actions)), jnp.float32)
    probs = np.asarray(oracle.mixed_policy(logits, EPSILON))
    occupancy = np.asarray(oracle.occupancy(mdp, probs))  # (H, S)
    assert np.all((occupancy > 0).sum(0) <= 1)  # each state occurs at one step only: Q^pi is a function of s
    visits = occupancy.sum(0)
    q = np.einsum("ts,tsa->sa", occupancy, np.asarray(oracle.q_values(mdp, probs))) / np.maximum(visits, 1e-12)[:, None]
    frequent = visits[:, None] * probs > 0.02  # pairs seen about 5+ times per batch of 256
    assert frequent.sum() >= 20
    return dict(env=env, mdp=mdp, logits=logits, q=q, frequent=frequent)


def _relative_error(q_hat, critic_setting):
    frequent, q = critic_setting["frequent"], critic_setting["q"]
    return np.abs(q_hat - q)[frequent].max() / np.abs(q[frequent]).max()


@pytest.mark.parametrize("td_lambda", [1.0, 0.5])
def test_expected_targets_learn_q_pi(critic_setting, td_lambda):
    q_hat = _train_critic(critic_setting["env"], critic_setting["mdp"], critic_setting["logits"], td_lambda,
                          "expected")
    assert _relative_error(q_hat, critic_setting) < 0.06


def test_greedy_targets_learn_something_else(critic_setting):
    q_hat = _train_critic(critic_setting["env"], critic_setting["mdp"], critic_setting["logits"], 0.5, "greedy")
    assert _relative_error(q_hat, critic_setting) > 0.3
    # It overestimates the value of the (non-greedy) policy.
    frequent, q = critic_setting["frequent"], critic_setting["q"]
    assert np.mean(q_hat[frequent] - q[frequent]) > 0


# --- options and registry -----------------------------------------------------------------------

def test_bad_target_lists_the_allowed_values():
    with pytest.raises(ValueError, match=r"target must be one of 'expected', 'greedy'; got 'sarsa'"):
        agents.make("q-critic", num_actions=4, target="sarsa")
    with pytest.raises(ValueError, match=r"target must be one of 'expected', 'greedy'; got 'max'"):
        TrajCV(target="max")
    with pytest.raises(ValueError, match=r"target must be one of"):
        q_model.q_lambda_targets(REWARDS, Q, PROBS, MASK, 0.5, "Greedy")


@pytest.mark.parametrize("name, options, pattern", [
    ("q-critic", dict(td_lambda=1.5), r"td_lambda must lie in \[0, 1\]; got 1\.5"),
    ("trajcv", dict(td_lambda=-0.1), r"td_lambda must lie in \[0, 1\]; got -0\.1"),
    ("q-critic", dict(baseline="yes"), r"baseline must be True or False; got 'yes'"),
    ("trajcv", dict(baseline=True), r"agent 'trajcv' has no option\(s\) baseline; .*trajcv options: "
                                    r"model_hidden_sizes, td_lambda, target"),
])
def test_bad_options(name, options, pattern):
    with pytest.raises(ValueError, match=pattern):
        agents.make(name, num_actions=4, **options)


def test_ground_truth_variants_need_the_mdp():
    for name in ("q-critic-gt", "trajcv-gt"):
        with pytest.raises(ValueError, match=rf"'{name}' is a exact variant: pass the environment's "
                                             r"exact model, mdp=env.tabular_mdp\(\)"):
            agents.make(name, num_actions=4)
    mdp = envs.make("LinearKeyToDoor-v0", length=5).tabular_mdp()
    with pytest.raises(ValueError, match=r"'trajcv' learns its model and takes no mdp; use 'trajcv-gt'"):
        agents.make("trajcv", num_actions=4, mdp=mdp)


def test_registry_and_defaults():
    assert {"q-critic", "q-critic-gt", "trajcv", "trajcv-gt"} <= set(agents.names())
    assert agents.estimator_parameters("q-critic") == dict(model_hidden_sizes=(256,), td_lambda=0.9,
                                                           target="expected", baseline=True)
    assert agents.estimator_parameters("trajcv") == dict(model_hidden_sizes=(256,), td_lambda=0.9,
                                                         target="expected")
    agent = agents.make("q-critic", num_actions=4, baseline=False, target="greedy", td_lambda=0.3)
    assert isinstance(agent.estimator, QCritic) and agent.name == "q-critic"
    assert (agent.estimator.baseline, agent.estimator.target, agent.estimator.td_lambda) == (False, "greedy", 0.3)
    mdp = envs.make("LinearKeyToDoor-v0", length=5).tabular_mdp()
    agent = agents.make("trajcv-gt", num_actions=4, mdp=mdp)
    assert isinstance(agent.estimator, TrajCV) and agent.estimator.exact and agent.name == "trajcv-gt"


# --- training smoke runs ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["q-critic", "trajcv", "q-critic-gt", "trajcv-gt"])
def test_training_runs_without_nan(name):
    env = envs.make("LinearKeyToDoor-v0", length=7)
    agent = agents.make_for_env(name, env, hidden_sizes=(16,), model_hidden_sizes=(16,))
    result = train(env, agent, TrainConfig(updates=50, eval_interval=50, eval_episodes=16), progress=False)
    assert [row["update"] for row in result.rows] == [0, 50]
    assert all(np.isfinite(value) for row in result.rows for value in row.values())
    assert result.env_steps == 50 * 8 * 7
    leaves = jax.tree.leaves(result.final_state)
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.floating))


def test_make_for_env_wires_num_actions_and_mdp():
    env = envs.make("LinearKeyToDoor-v0", length=7)
    agent = agents.make_for_env("q-critic-gt", env)
    assert agent.estimator.mdp is not None and agent.num_actions == env.num_actions
    state = agent.init(jax.random.PRNGKey(0), env.observation_shape)
    assert state.model_params["q"].shape == (env.length, agent.estimator.mdp.num_states, env.num_actions)
