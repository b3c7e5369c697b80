"""Conformance of every registered estimator (``agents.names()``), with no per-estimator test code.

For each name:
- ``expected_credit`` against a long Monte-Carlo average of ``credit`` (z-scores per visited cell);
- if the estimator claims to be unbiased (``Estimator.unbiased``), the Monte-Carlo mean of its
  policy gradient against the oracle's exact gradient (z-scores per component);
- the same credit with and without ``jax.jit``, of shape (B, T, A), float32, zero on padding steps,
  and a finite scalar model loss.
Learned models are random (every leaf redrawn), so the checks do not pass by a model being exact;
``-gt`` variants use the oracle's tables. A deliberately biased control shows both statistical
checks can fail.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import agents, envs
from cocoa.agents import tabular_policy
from cocoa.rollout import rollout
from estimator_checks import (EPSILON, LENGTH, Z_BOUND, Unscaled, credit_z_scores, gradient_z_scores,
                              randomised)

NAMES = agents.names()
_CLAIMS_ENV = envs.make("LinearKeyToDoor-v0", length=5)
UNBIASED = [name for name in NAMES if agents.make_for_env(name, _CLAIMS_ENV).estimator.unbiased]


def build(name, setting):
    """(estimator, credit params, expectation params) for ``name`` on the setting's key-to-door."""
    parameters = agents.estimator_parameters(name)
    options = {"model_hidden_sizes": (32,)} if "model_hidden_sizes" in parameters else {}
    if "max_patterns" in parameters:  # random features give every cell its own pattern: room for all of them
        options["max_patterns"] = setting["mdp"].num_states * setting["mdp"].num_actions
    estimator = agents.make_for_env(name, setting["env"], **options).estimator
    if estimator.exact:  # credit from float32 tables, its expectation from float64 ones
        params = estimator.exact_model(jnp.asarray(setting["probs64"], jnp.float32))
        with jax.enable_x64(True):
            return estimator, params, estimator.exact_model(jnp.asarray(setting["probs64"]))
    params = estimator.init_model(jax.random.PRNGKey(5), setting["env"].observation_shape, setting["env"].num_actions)
    params = randomised(params, 5, scale=0.3)
    return estimator, params, params


@pytest.mark.parametrize("name", NAMES)
def test_expected_credit_matches_monte_carlo_credit(setting, name):
    estimator, params, expected_params = build(name, setting)
    z, constant_mean, constant_target, cells = credit_z_scores(estimator, params, setting, expected_params)
    assert cells >= 8 and z.size + constant_mean.size >= 20  # a credit fixed by (t, S_t) has no variance
    assert z.size == 0 or np.abs(z).max() < Z_BOUND, f"{name}: max |z| = {np.abs(z).max():.2f}"
    np.testing.assert_allclose(constant_mean, constant_target, atol=1e-4)


def test_the_credit_check_rejects_a_wrong_expected_credit(setting):
    z, _, _, _ = credit_z_scores(Unscaled(), {}, setting)  # claims Q, delivers pi * Q
    assert np.abs(z).max() > Z_BOUND


@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_estimators_match_the_oracle_gradient(setting, name):
    estimator, params, _ = build(name, setting)
    z, constant_mean, constant_target, varying = gradient_z_scores(estimator, params, setting)
    assert varying >= 25  # most components are random; the rest are checked exactly
    assert np.abs(z).max() < Z_BOUND, f"{name}: max |z| = {np.abs(z).max():.2f}"
    np.testing.assert_allclose(constant_mean, constant_target, atol=1e-5)


def test_the_gradient_check_rejects_a_biased_estimator(setting):
    z, _, _, _ = gradient_z_scores(Unscaled(), {}, setting)
    assert np.abs(z).max() > Z_BOUND


def test_the_claims_are_the_papers():
    """Unbiased: REINFORCE and any baseline or control variate, and the hindsight and Q models when
    exact; not: learned models, and HCA-return even with the exact classifier (docs/estimators/)."""
    assert set(UNBIASED) == {"reinforce", "advantage", "advantage-gt", "trajcv", "trajcv-gt", "q-critic-gt",
                             "cocoa-reward-gt", "hca-state-gt"}


@pytest.mark.parametrize("name", NAMES)
def test_credit_and_loss_agree_with_and_without_jit_and_respect_padding(setting, name):
    estimator, params, _ = build(name, setting)
    env, mdp = setting["env"], setting["mdp"]
    # Two steps past the episode's end: padding, which must carry no credit.
    trajectory = rollout(env, tabular_policy(mdp, EPSILON), jnp.asarray(setting["logits"]), jax.random.PRNGKey(7),
                         batch_size=16, horizon=LENGTH + 2)
    assert not np.asarray(trajectory.mask)[:, -2:].any()
    eager = estimator.credit(params, trajectory)
    jitted = jax.jit(estimator.credit)(params, trajectory)
    assert eager.shape == (16, LENGTH + 2, env.num_actions) and eager.dtype == jnp.float32
    np.testing.assert_allclose(jitted, eager, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(eager)[:, -2:], 0.0)
    assert np.isfinite(np.asarray(eager)).all()
    if not estimator.exact:
        loss = estimator.model_loss(params, trajectory)
        assert loss.shape == () and np.isfinite(float(loss))
        np.testing.assert_allclose(jax.jit(estimator.model_loss)(params, trajectory), loss, rtol=1e-4, atol=1e-6)
