"""The DP oracle against finite differences, numpy brute force, the policy-gradient theorem and
Monte-Carlo rollouts of the real environment."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from cocoa import envs, oracle
from cocoa.agents import tabular_policy
from cocoa.rollout import episode_returns, rollout
from cocoa.types import TabularMDP

FD_STEP = 1e-5
RTOL, ATOL = 1e-6, 1e-8


# --- random MDPs, built with numpy ------------------------------------------------------------

def dense_mdp(seed: int = 0, horizon: int = 5) -> TabularMDP:
    """S=6, A=3, every state a successor of every (s, a), rewards over K=3 values; state 5 terminal."""
    rng = np.random.default_rng(seed)
    num_states, num_actions, terminal_state = 6, 3, 5
    successors = np.broadcast_to(np.arange(num_states), (num_states, num_actions, num_states)).copy()
    successor_probs = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    successor_probs[terminal_state] = np.eye(num_states)[terminal_state]
    reward_values = np.array([0.0, 1.0, -0.5])
    reward_probs = rng.dirichlet(np.ones(3), size=(num_states, num_actions))
    reward_probs[terminal_state] = [1.0, 0.0, 0.0]
    initial = np.append(rng.dirichlet(np.ones(num_states - 1)), 0.0)
    return TabularMDP(successors=successors.astype(np.int32), successor_probs=successor_probs,
                      reward_values=reward_values, reward_probs=reward_probs, initial=initial,
                      observations=np.eye(num_states), terminal=np.arange(num_states) == terminal_state,
                      horizon=horizon)


def sparse_mdp(seed: int = 1, horizon: int = 7) -> TabularMDP:
    """S=50, A=4, N=3 successors per (s, a) with some duplicates; states 45..49 terminal."""
    rng = np.random.default_rng(seed)
    num_states, num_actions, num_successors = 50, 4, 3
    terminal = np.arange(num_states) >= 45
    successors = rng.integers(0, num_states, size=(num_states, num_actions, num_successors))
    duplicate = rng.random((num_states, num_actions)) < 0.3
    successors[..., 2] = np.where(duplicate, successors[..., 0], successors[..., 2])
    successors[terminal] = np.flatnonzero(terminal)[:, None, None]
    assert duplicate[~terminal].any()
    successor_probs = rng.dirichlet(np.ones(num_successors), size=(num_states, num_actions))
    reward_values = np.array([-1.0, 0.0, 2.0])
    reward_probs = rng.dirichlet(np.ones(3), size=(num_states, num_actions))
    reward_probs[terminal] = [0.0, 1.0, 0.0]
    initial = np.where(terminal, 0.0, rng.random(num_states))
    initial /= initial.sum()
    observations = rng.normal(size=(num_states, 5))
    return TabularMDP(successors=successors.astype(np.int32), successor_probs=successor_probs,
                      reward_values=reward_values, reward_probs=reward_probs, initial=initial,
                      observations=observations, terminal=terminal, horizon=horizon)


def random_logits(mdp: TabularMDP, seed: int, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).normal(size=(mdp.num_states, mdp.num_actions))


def softmax(logits, epsilon=0.0):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return (1 - epsilon) * z / z.sum(-1, keepdims=True) + epsilon / logits.shape[-1]


def numpy_values(mdp: TabularMDP, probs: np.ndarray):
    """Backward dense-matrix recursion in numpy: Q (H, S, A), V (H, S), J."""
    transitions = mdp.dense_transitions()
    rewards = np.asarray(mdp.reward_probs) @ np.asarray(mdp.reward_values)
    q = np.zeros((mdp.horizon, mdp.num_states, mdp.num_actions))
    v = np.zeros((mdp.horizon + 1, mdp.num_states))
    for t in reversed(range(mdp.horizon)):
        q[t] = rewards + transitions @ v[t + 1]
        v[t] = np.sum(probs * q[t], axis=-1)
    return q, v[:-1], float(np.asarray(mdp.initial) @ v[0])


def numpy_forward_return(mdp: TabularMDP, probs: np.ndarray):
    """Forward recursion: marginals d_t (H, S) and J = sum_t d_t . r_pi."""
    transitions = np.einsum("sa,sap->sp", probs, mdp.dense_transitions())
    reward_pi = np.sum(probs * (np.asarray(mdp.reward_probs) @ np.asarray(mdp.reward_values)), axis=-1)
    marginals = [np.asarray(mdp.initial, float)]
    for _ in range(mdp.horizon - 1):
        marginals.append(marginals[-1] @ transitions)
    marginals = np.stack(marginals)
    return marginals, float(np.sum(marginals @ reward_pi))


def central_differences(objective, theta: np.ndarray, step: float = FD_STEP) -> np.ndarray:
    """Central differences of a scalar objective of a flat vector, all perturbations in one vmap."""
    eye = np.eye(theta.size) * step
    values = np.asarray(jax.jit(jax.vmap(objective))(jnp.asarray(np.concatenate([theta + eye, theta - eye]))))
    return (values[:theta.size] - values[theta.size:]) / (2 * step)


# --- gradients --------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [dense_mdp, sparse_mdp], ids=["dense", "sparse"])
@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_tabular_policy_gradient_matches_finite_differences(build, epsilon):
    with jax.enable_x64(True):
        mdp = build()
        logits = random_logits(mdp, seed=3)
        gradient = np.asarray(oracle.policy_gradient(mdp, logits, epsilon=epsilon))
        assert gradient.dtype == np.float64 and gradient.shape == logits.shape

        def objective(flat):
            return oracle.expected_return(mdp, oracle.mixed_policy(flat.reshape(logits.shape), epsilon))

        numeric = central_differences(objective, logits.ravel()).reshape(logits.shape)
        assert np.abs(numeric).max() > 1e-3  # the check is not vacuous
        np.testing.assert_allclose(gradient, numeric, rtol=RTOL, atol=ATOL)


def test_epsilon_mixing_changes_the_gradient():
    with jax.enable_x64(True):
        mdp = dense_mdp()
        logits = random_logits(mdp, seed=3)
        plain = np.asarray(oracle.policy_gradient(mdp, logits))
        mixed = np.asarray(oracle.policy_gradient(mdp, logits, epsilon=0.3))
        assert np.abs(plain - mixed).max() > 1e-4


@pytest.mark.parametrize("build", [dense_mdp, sparse_mdp], ids=["dense", "sparse"])
def test_network_policy_gradient_matches_finite_differences(build):
    with jax.enable_x64(True):
        mdp = build()
        network = hk.without_apply_rng(hk.transform(
            lambda obs: hk.nets.MLP([8, mdp.num_actions], activation=jnp.tanh)(obs)))
        observations = jnp.asarray(mdp.observations, jnp.float64)
        params = network.init(jax.random.PRNGKey(0), observations)
        flat, unravel = ravel_pytree(params)
        assert flat.dtype == jnp.float64
        epsilon = 0.05

        gradient = oracle.policy_gradient(mdp, network.apply, params, epsilon=epsilon)
        assert jax.tree.structure(gradient) == jax.tree.structure(params)
        flat_gradient = np.asarray(ravel_pytree(gradient)[0])

        def objective(theta):
            probs = oracle.mixed_policy(network.apply(unravel(theta), observations), epsilon)
            return oracle.expected_return(mdp, probs)

        numeric = central_differences(objective, np.asarray(flat))
        assert np.abs(numeric).max() > 1e-3
        np.testing.assert_allclose(flat_gradient, numeric, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_estimator_gradient_with_q_values_is_the_policy_gradient(epsilon):
    with jax.enable_x64(True):
        for mdp in (dense_mdp(), sparse_mdp()):
            logits = random_logits(mdp, seed=5)
            probs = oracle.mixed_policy(jnp.asarray(logits), epsilon)
            q = oracle.q_values(mdp, probs)
            theorem = oracle.estimator_gradient(mdp, logits, q, epsilon=epsilon)
            exact = oracle.policy_gradient(mdp, logits, epsilon=epsilon)
            np.testing.assert_allclose(theorem, exact, rtol=1e-9, atol=1e-12)
            # A time-independent credit table (S, A) is broadcast over the horizon.
            np.testing.assert_allclose(oracle.estimator_gradient(mdp, logits, q[0], epsilon=epsilon),
                                       oracle.estimator_gradient(mdp, logits, jnp.broadcast_to(q[0], q.shape),
                                                                 epsilon=epsilon), rtol=1e-12)


def test_estimator_gradient_for_network_policy_is_the_policy_gradient():
    with jax.enable_x64(True):
        mdp = sparse_mdp()
        network = hk.without_apply_rng(hk.transform(
            lambda obs: hk.nets.MLP([6, mdp.num_actions], activation=jnp.tanh)(obs)))
        params = network.init(jax.random.PRNGKey(1), jnp.asarray(mdp.observations))
        probs = oracle.mixed_policy(network.apply(params, jnp.asarray(mdp.observations)), 0.1)
        theorem = oracle.estimator_gradient(mdp, network.apply, oracle.q_values(mdp, probs), params, epsilon=0.1)
        exact = oracle.policy_gradient(mdp, network.apply, params, epsilon=0.1)
        np.testing.assert_allclose(ravel_pytree(theorem)[0], ravel_pytree(exact)[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_first_step_only_is_the_t0_term(epsilon):
    with jax.enable_x64(True):
        mdp = sparse_mdp()
        logits = random_logits(mdp, seed=7)
        probs = softmax(logits, epsilon)
        q = np.asarray(oracle.q_values(mdp, probs))
        first = np.asarray(oracle.estimator_gradient(mdp, logits, q, epsilon=epsilon, first_step_only=True))
        # d/dz_s sum_a pi(a|s) Q_0(s, a) = (1 - eps) p_s * (Q_0(s) - p_s . Q_0(s)), weighted by d_0 = mu.
        p = softmax(logits)
        baseline = np.sum(p * q[0], axis=-1, keepdims=True)
        hand = np.asarray(mdp.initial)[:, None] * (1 - epsilon) * p * (q[0] - baseline)
        assert np.abs(hand).max() > 1e-3
        np.testing.assert_allclose(first, hand, rtol=1e-9, atol=1e-12)
        full = np.asarray(oracle.policy_gradient(mdp, logits, epsilon=epsilon))
        assert np.abs(full - first).max() > 1e-3  # later steps matter in this MDP


# --- values and occupancy ---------------------------------------------------------------------

@pytest.mark.parametrize("build", [dense_mdp, sparse_mdp], ids=["dense", "sparse"])
def test_values_and_occupancy_match_numpy_recursions(build):
    with jax.enable_x64(True):
        mdp = build()
        probs = softmax(random_logits(mdp, seed=11, scale=2.0), 0.05)
        q, v = (np.asarray(x) for x in oracle.q_and_state_values(mdp, probs))
        marginals = np.asarray(oracle.occupancy(mdp, probs))
        ret = float(oracle.expected_return(mdp, probs))

        q_np, v_np, j_np = numpy_values(mdp, probs)
        marginals_np, j_forward = numpy_forward_return(mdp, probs)
        assert q.shape == (mdp.horizon, mdp.num_states, mdp.num_actions)
        assert v.shape == marginals.shape == (mdp.horizon, mdp.num_states)
        np.testing.assert_allclose(q, q_np, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v, v_np, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(marginals, marginals_np, rtol=1e-12, atol=1e-12)
        assert ret == pytest.approx(j_np, rel=1e-12)
        assert ret == pytest.approx(j_forward, rel=1e-12)  # forward and backward views agree
        assert abs(ret) > 1e-2

        # Occupancy is a distribution at every step (terminal states absorb, nothing leaks).
        np.testing.assert_allclose(marginals.sum(axis=-1), 1.0, atol=1e-12)
        assert marginals.min() >= 0
        # V_t = sum_a pi Q_t, J = mu . V_0, and helpers agree with the combined call.
        np.testing.assert_allclose(v, np.sum(probs * q, axis=-1), atol=1e-12)
        assert ret == pytest.approx(float(np.asarray(mdp.initial) @ v[0]), rel=1e-12)
        np.testing.assert_allclose(oracle.q_values(mdp, probs), q, rtol=0, atol=0)
        np.testing.assert_allclose(oracle.state_values(mdp, probs), v, rtol=0, atol=0)
        # Terminal states have zero value; the last step's Q is the immediate reward.
        np.testing.assert_allclose(v[:, np.asarray(mdp.terminal)], 0.0, atol=1e-12)
        np.testing.assert_allclose(q[-1], mdp.expected_rewards(), atol=1e-12)


def test_terminal_mass_accumulates_in_occupancy():
    with jax.enable_x64(True):
        mdp = sparse_mdp()
        probs = np.full((mdp.num_states, mdp.num_actions), 0.25)
        terminal_mass = np.asarray(oracle.occupancy(mdp, probs))[:, np.asarray(mdp.terminal)].sum(-1)
        assert terminal_mass[0] == 0.0
        assert np.all(np.diff(terminal_mass) >= -1e-15)
        assert terminal_mass[-1] > 0.1


def test_float32_by_default():
    mdp = dense_mdp()
    probs = softmax(random_logits(mdp, seed=2))
    assert oracle.q_values(mdp, probs).dtype == jnp.float32
    assert oracle.policy_gradient(mdp, random_logits(mdp, seed=2)).dtype == jnp.float32


# --- Monte-Carlo rollouts of the real environment ---------------------------------------------

def _z_score(samples: np.ndarray, value: float) -> float:
    return float((samples.mean() - value) / (samples.std(ddof=1) / np.sqrt(samples.size)))


def test_expected_return_matches_key_to_door_rollouts():
    env = envs.make("LinearKeyToDoor-v0", length=9, layout_seed=4)
    mdp = env.tabular_mdp()
    epsilon = 0.05
    logits = random_logits(mdp, seed=13, scale=1.5).astype(np.float32)
    policy_fn = tabular_policy(mdp, epsilon)
    run = jax.jit(lambda key: episode_returns(
        rollout(env, policy_fn, jnp.asarray(logits), key, batch_size=20000, horizon=9)))
    returns = np.asarray(run(jax.random.PRNGKey(0)), np.float64)
    assert returns.std() > 0

    with jax.enable_x64(True):
        exact = float(oracle.expected_return(mdp, softmax(logits.astype(np.float64), epsilon)))
        other = float(oracle.expected_return(mdp, softmax(np.zeros_like(logits, np.float64), epsilon)))
    # Sample standard error ~ 0.013 here; |z| < 4 fails by chance w.p. 6e-5 (the other J is 28 SE away).
    assert abs(_z_score(returns, exact)) < 4
    # The same check rejects the return of a different (uniform) policy.
    assert abs(_z_score(returns, other)) > 4


# --- bad inputs -------------------------------------------------------------------------------

def test_bad_policy_inputs_raise_clear_errors():
    mdp = dense_mdp()
    uniform = np.full((6, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"policy_probs must have shape \(S, A\) = \(6, 3\); got \(6, 4\)"):
        oracle.q_values(mdp, np.full((6, 4), 0.25))
    with pytest.raises(ValueError, match=r"policy_probs must have shape \(S, A\) = \(6, 3\); got \(3,\)"):
        oracle.occupancy(mdp, np.full(3, 1 / 3))
    bad = uniform.copy()
    bad[2] = [0.5, 0.5, 0.5]
    for function in (oracle.occupancy, oracle.q_values, oracle.state_values, oracle.expected_return):
        with pytest.raises(ValueError, match=r"policy_probs must be non-negative and sum to one per state; "
                                             r"worst row sum is off by 0\.5"):
            function(mdp, bad)
    negative = uniform.copy()
    negative[0] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match=r"non-negative and sum to one"):
        oracle.expected_return(mdp, negative)
    not_a_number = uniform.copy()
    not_a_number[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-negative and sum to one"):
        oracle.expected_return(mdp, not_a_number)
    with pytest.raises(ValueError, match=r"logits must have shape \(S, A\) = \(6, 3\); got \(5, 3\)"):
        oracle.policy_gradient(mdp, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"epsilon must lie in \[0, 1\]; got 1\.5"):
        oracle.policy_gradient(mdp, np.zeros((6, 3)), epsilon=1.5)
    with pytest.raises(TypeError, match=r"expected a cocoa\.types\.TabularMDP; got dict"):
        oracle.policy_gradient({"not": "an mdp"}, np.zeros((6, 3)))


def test_params_and_network_mismatches_raise():
    mdp = dense_mdp()
    network = hk.without_apply_rng(hk.transform(lambda obs: hk.Linear(3)(obs)))
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 6)))
    with pytest.raises(ValueError, match=r"got `params` but the policy is a logits table"):
        oracle.policy_gradient(mdp, np.zeros((6, 3)), params)
    with pytest.raises(ValueError, match=r"network policy needs its `params`"):
        oracle.policy_gradient(mdp, network.apply)
    with pytest.raises(ValueError, match=r"network policy needs its `params`"):
        oracle.estimator_gradient(mdp, network.apply, np.zeros((6, 3)))
    with pytest.raises(ValueError, match=r"expected_credit must have shape \(S, A\) = \(6, 3\) or "
                                         r"\(H, S, A\) = \(5, 6, 3\); got \(4, 6, 3\)"):
        oracle.estimator_gradient(mdp, np.zeros((6, 3)), np.zeros((4, 6, 3)))


# --- scale ------------------------------------------------------------------------------------

def test_key_to_door_length_103_gradient_is_finite():
    env = envs.make("LinearKeyToDoor-v0", length=103)
    mdp = env.tabular_mdp()
    logits = random_logits(mdp, seed=17).astype(np.float32)
    gradient = np.asarray(oracle.policy_gradient(mdp, logits, epsilon=0.05))
    assert gradient.shape == (2 * 103 + 1, 4)
    assert np.all(np.isfinite(gradient))
    assert np.abs(gradient).max() > 0
    assert float(oracle.expected_return(mdp, softmax(logits, 0.05))) > 0
