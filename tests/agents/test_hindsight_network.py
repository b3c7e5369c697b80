"""The hindsight network's switches (the COCOA paper code's network and its ablations) and the
agent's model-step switches (order, resampled model batch, AdamW)."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cocoa import agents, envs
from cocoa.agents.agent import resample
from cocoa.agents.hindsight import HindsightNetwork, policy_features
from cocoa.rollout import rollout

NUM_ACTIONS = 4
OBSERVATIONS = jax.random.normal(jax.random.PRNGKey(0), (5, 7))
OBJECTS = jnp.eye(3)
POLICIES = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(1), (5, NUM_ACTIONS)))


def coefficients(network, params, policies=POLICIES):
    log_w, log_p = network.log_coefficients(params, OBSERVATIONS[:, None], OBJECTS[None], policies[:, None])
    return np.exp(np.asarray(log_w)), np.exp(np.asarray(log_p))


@pytest.mark.parametrize("mode", ["gate", "input", "none"])
@pytest.mark.parametrize("relu_difference", [True, False])
def test_zero_init_gives_w_one_and_default_init_does_not(mode, relu_difference):
    options = dict(policy_features=mode, relu_difference=relu_difference)
    zero = HindsightNetwork(NUM_ACTIONS, (16,), model_init="zero", **options)
    w, p = coefficients(zero, zero.init(jax.random.PRNGKey(2), (7,), 3))
    np.testing.assert_allclose(w, 1.0, rtol=1e-6)
    np.testing.assert_allclose(p, np.broadcast_to(POLICIES[:, None], p.shape), rtol=1e-6)
    default = HindsightNetwork(NUM_ACTIONS, (16,), model_init="default", **options)
    w, p = coefficients(default, default.init(jax.random.PRNGKey(2), (7,), 3))
    assert np.abs(w - 1.0).max() > 0.05
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)  # p(. | s, u) is a distribution
    np.testing.assert_allclose((w * np.asarray(POLICIES)[:, None]).sum(-1), 1.0, rtol=1e-5)  # E_pi[w] = 1


@pytest.mark.parametrize("relu_difference", [True, False])
def test_zero_init_still_learns(relu_difference):
    """w = 1 at the start must not mean a dead model: the loss has a gradient in the output layer."""
    network = HindsightNetwork(NUM_ACTIONS, (16,), model_init="zero", relu_difference=relu_difference)
    params = network.init(jax.random.PRNGKey(2), (7,), 3)
    loss = lambda p: -jnp.sum(network.log_coefficients(p, OBSERVATIONS[:, None], OBJECTS[None],
                                                       POLICIES[:, None])[1][..., 0])
    grads = jax.grad(loss)(params)
    heads = np.asarray(grads["heads"]["w"]).reshape(16, -1, NUM_ACTIONS, 1 + 2 * NUM_ACTIONS)
    assert np.abs(heads[..., 0]).max() > 1e-3  # the base head b(z)
    assert np.abs(heads[..., 1:]).max() > 1e-3  # the gate G(z)


@pytest.mark.parametrize("mode, sees_policy", [("gate", True), ("input", True), ("none", False)])
def test_the_network_sees_the_policy_only_when_asked(mode, sees_policy):
    network = HindsightNetwork(NUM_ACTIONS, (16,), policy_features=mode)
    params = network.init(jax.random.PRNGKey(3), (7,), 3)
    other = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(4), (5, NUM_ACTIONS)))
    logits = lambda policies: network.network.apply(params, OBSERVATIONS[:, None], OBJECTS[None],
                                                    policy_features(policies[:, None]))
    changed = np.abs(np.asarray(logits(POLICIES) - logits(other))).max()
    assert (changed > 1e-3) == sees_policy


def test_gate_is_linear_in_the_policy_features():
    """h = b(z) + G(z) f: for fixed (s, u), h is affine in f."""
    network = HindsightNetwork(NUM_ACTIONS, (16,), policy_features="gate")
    params = network.init(jax.random.PRNGKey(5), (7,), 3)
    apply = lambda f: network.network.apply(params, OBSERVATIONS[:1], OBJECTS[:1], f)
    f1, f2 = jax.random.normal(jax.random.PRNGKey(6), (2, 1, 2 * NUM_ACTIONS))
    mid = apply(0.3 * f1 + 0.7 * f2)
    np.testing.assert_allclose(mid, 0.3 * apply(f1) + 0.7 * apply(f2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("relu_difference", [True, False])
def test_the_network_computes_base_plus_gate_times_policy_features(relu_difference):
    """h = g(b(z)) + g(G(z)) f with g the ReLU difference (or the identity), read off the parameters."""
    network = HindsightNetwork(NUM_ACTIONS, (16,), relu_difference=relu_difference)
    params = network.init(jax.random.PRNGKey(7), (7,), 3)
    p = jax.tree.map(np.asarray, params)
    z = np.maximum(np.asarray(OBSERVATIONS)[:, None] @ p["state"]["w"] + p["state"]["b"]
                   + np.asarray(OBJECTS)[None] @ p["object"]["w"], 0.0)  # (5, 3, 16)
    y = (z @ p["heads"]["w"] + p["heads"]["b"]).reshape(5, 3, -1, NUM_ACTIONS, 1 + 2 * NUM_ACTIONS)
    g = np.maximum(y[:, :, 0], 0.0) - np.maximum(y[:, :, 1], 0.0) if relu_difference else y[:, :, 0]
    f = np.asarray(policy_features(POLICIES))[:, None]  # (5, 1, 2A)
    expected = g[..., 0] + np.einsum("suaj,suj->sua", g[..., 1:], np.broadcast_to(f, (5, 3, 2 * NUM_ACTIONS)))
    actual = network.network.apply(params, OBSERVATIONS[:, None], OBJECTS[None], policy_features(POLICIES[:, None]))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_relu_difference_gives_w_exactly_one_where_both_halves_are_negative():
    network = HindsightNetwork(NUM_ACTIONS, (16,))
    params = network.init(jax.random.PRNGKey(8), (7,), 3)
    params["heads"] = {"w": np.zeros_like(params["heads"]["w"]), "b": -np.ones_like(params["heads"]["b"])}
    w, _ = coefficients(network, params)
    np.testing.assert_array_equal(w, 1.0)


def test_policy_features_stay_finite_for_deterministic_policies():
    features = policy_features(jnp.array([[1.0, 0.0, 0.0, 0.0]]))
    assert features.shape == (1, 8) and np.isfinite(np.asarray(features)).all()


@pytest.mark.parametrize("name", ["cocoa-reward", "hca-state", "hca-return", "cocoa-feature"])
@pytest.mark.parametrize("option, value, expected", [
    ("policy_features", "gated", "policy_features must be one of gate, input, none; got 'gated'"),
    ("relu_difference", "yes", "relu_difference must be True or False; got 'yes'"),
    ("model_init", "random", "model_init must be one of default, zero; got 'random'"),
])
def test_bad_network_options_name_the_value(name, option, value, expected):
    env = envs.make("LinearKeyToDoor-v0", length=5)
    with pytest.raises(ValueError, match=expected):
        agents.make_for_env(name, env, **{option: value})


@pytest.mark.parametrize("option, value, expected", [
    ("model_first", "no", "model_first must be True or False; got 'no'"),
    ("model_batch", "replay", "model_batch must be one of batch, resample; got 'replay'"),
    ("weight_decay", -1e-4, "weight_decay must be a finite number >= 0; got -0.0001"),
])
def test_bad_update_options_name_the_value(option, value, expected):
    with pytest.raises(ValueError, match=expected):
        agents.make("reinforce", num_actions=4, **{option: value})


@pytest.fixture(scope="module")
def batch():
    env = envs.make("LinearKeyToDoor-v0", length=6)
    agent = agents.make_for_env("cocoa-reward", env)
    state = agent.init(jax.random.PRNGKey(7), env.observation_shape)
    trajectory = rollout(env, agent.behaviour_probs, state.policy_params, jax.random.PRNGKey(8),
                         batch_size=8, horizon=6)
    return env, trajectory


def _credit_of_update(agent, state, trajectory, **kwargs):
    """The credit an update used, recovered from its surrogate: run with a recording estimator."""
    seen = {}
    original = agent.estimator.model_loss_and_credit

    def recording(params, batch):
        loss, credit = original(params, batch)
        seen.setdefault("calls", []).append((params, batch))
        return loss, credit

    agent.estimator.model_loss_and_credit = recording
    try:
        new_state, _ = agent.update(state, trajectory, **kwargs)
    finally:
        agent.estimator.model_loss_and_credit = original
    return new_state, seen["calls"]


@pytest.mark.parametrize("model_first", [False, True])
def test_model_first_computes_credit_with_the_stepped_model(batch, model_first):
    env, trajectory = batch
    agent = agents.make_for_env("cocoa-reward", env, model_first=model_first, model_batch="resample")
    state = agent.init(jax.random.PRNGKey(9), env.observation_shape)
    new_state, calls = _credit_of_update(agent, state, trajectory, key=jax.random.PRNGKey(10))
    # First call: the model's loss on the resampled batch; second: the credit of the collected batch.
    (loss_params, loss_batch), (credit_params, credit_batch) = calls
    expected_batch = resample(trajectory, jax.random.PRNGKey(10))
    for a, b in zip(jax.tree.leaves(loss_batch), jax.tree.leaves(expected_batch)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(credit_batch), jax.tree.leaves(trajectory)):
        np.testing.assert_array_equal(a, b)
    expected_params = new_state.model_params if model_first else state.model_params
    for a, b in zip(jax.tree.leaves(credit_params), jax.tree.leaves(expected_params)):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 0 for a, b in
               zip(jax.tree.leaves(new_state.model_params), jax.tree.leaves(state.model_params)))


def test_resample_draws_with_replacement_from_the_batch(batch):
    _, trajectory = batch
    drawn = resample(trajectory, jax.random.PRNGKey(11))
    rows = [np.flatnonzero((np.asarray(trajectory.actions) == row).all(-1)
                           & (np.asarray(trajectory.rewards) == reward_row).all(-1))
            for row, reward_row in zip(np.asarray(drawn.actions), np.asarray(drawn.rewards))]
    assert all(len(r) >= 1 for r in rows)  # every drawn trajectory is one of the batch
    chosen = jax.random.randint(jax.random.PRNGKey(11), (8,), 0, 8)
    assert len(set(np.asarray(chosen).tolist())) < 8  # with replacement: this key repeats a trajectory
    np.testing.assert_array_equal(drawn.actions, np.asarray(trajectory.actions)[np.asarray(chosen)])


def test_resample_needs_a_key(batch):
    env, trajectory = batch
    agent = agents.make_for_env("cocoa-reward", env, model_batch="resample")
    state = agent.init(jax.random.PRNGKey(12), env.observation_shape)
    with pytest.raises(ValueError, match="model_batch='resample' draws the model's batch at random: pass key="):
        agent.update(state, trajectory)


def test_weight_decay_is_adamw_for_policy_and_model(batch):
    env, trajectory = batch
    agent = agents.make_for_env("cocoa-reward", env, weight_decay=0.5, learning_rate=0.1, model_learning_rate=0.2)
    params = {"w": jnp.ones(3)}
    zero = {"w": jnp.zeros(3)}
    for optimizer, rate in ((agent.policy_optimizer, 0.1), (agent.model_optimizer, 0.2)):
        updates, _ = optimizer.update(zero, optimizer.init(params), params)
        np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], 1.0 - rate * 0.5, rtol=1e-6)
    plain = agents.make_for_env("cocoa-reward", env)
    updates, _ = plain.policy_optimizer.update(zero, plain.policy_optimizer.init(params), params)
    np.testing.assert_array_equal(updates["w"], 0.0)
