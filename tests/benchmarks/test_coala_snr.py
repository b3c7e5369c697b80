"""``cocoa.benchmarks.coala_snr``: the per-sample SNR estimate and the meta-gradient it reads."""

import jax
import numpy as np
import pytest

from cocoa.benchmarks import coala_snr
from cocoa.shaping import ShapingConfig


def test_the_snr_of_two_gradients_by_hand():
    g = np.array([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1); sample variances 2 and 2
    assert coala_snr.per_sample_snr(g) == pytest.approx((5.0 - 4.0 / 2) / 4.0)


def test_the_snr_estimate_is_centred_where_plain_squared_mean_is_not():
    # Zero-mean gradients: the true SNR is 0. The estimate's numerator is unbiased; the ratio keeps a
    # small Jensen bias, (1/N) (tr Cov E[1 / tr S] - 1) = (1/8) (35/33 - 1) = 0.0076 here (Gaussian
    # samples: the mean and S independent, tr S ~ chi2(35) / 7). Over many replications the mean is
    # within 4 standard errors of that, and ||mean||^2 / tr S (about 1/N = 0.125) is rejected.
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(2000, 8, 5))
    ours = np.array([coala_snr.per_sample_snr(g) for g in samples])
    plain = np.array([g.mean(0) @ g.mean(0) / g.var(0, ddof=1).sum() for g in samples])
    jensen = (35 / 33 - 1) / 8
    for estimate, centred in ((ours, True), (plain, False)):
        z = (estimate.mean() - jensen) / (estimate.std(ddof=1) / np.sqrt(len(estimate)))
        assert (abs(z) < 4) == centred, z


def test_a_known_snr_is_recovered():
    rng = np.random.default_rng(1)
    mean = np.array([1.0, 2.0, 0.0, 0.0])  # ||mu||^2 = 5, tr Cov = 4 * 0.25
    estimates = [coala_snr.per_sample_snr(mean + 0.5 * rng.normal(size=(64, 4))) for _ in range(400)]
    se = np.std(estimates, ddof=1) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - 5.0) < 4 * se + 0.2  # the ratio's own O(1/N) bias


def test_bad_gradients_are_refused():
    with pytest.raises(ValueError, match=r"at least 2 flattened gradients \(N, D\); got shape \(1, 3\)"):
        coala_snr.per_sample_snr(np.ones((1, 3)))


def test_the_meta_gradient_is_the_update_before_adam():
    from cocoa.shaping import init_params, make_meta_gradient

    config = ShapingConfig(episode_length=2, episodes=2, batch_size=2, meta_batch=2)
    params = init_params(config, jax.random.PRNGKey(0))
    gradient, metrics = jax.jit(make_meta_gradient(config))(params, jax.random.PRNGKey(1))
    assert jax.tree.structure(gradient) == jax.tree.structure(params) and "meta_reward" in metrics
    assert any(np.abs(np.asarray(x)).max() > 0 for x in jax.tree.leaves(gradient))
    assert coala_snr.rule_snr(config, samples=4) > -1.0  # a finite estimate from the real runner
