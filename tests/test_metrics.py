"""Gradient-quality metrics (docs/gradients.md) on hand-made arrays whose values are worked out by hand."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import metrics

# Two estimates of a 2-parameter gradient, g* = (1, 1).
#   mean ḡ = (2, 1); Σ w ‖g_i − ḡ‖² = ½(1 + 1) + ½(1 + 1) = 2; ‖g*‖² = 2
#   variance = 2 / 2 = 1 (= mean_{i,p} (g − ḡ)² / mean_p g*² = 1 / 1)
#   bias = ‖(1, 1) − (2, 1)‖² / 2 = 0.5
#   Σ w ‖g_i − g*‖² = ½(0 + 1) + ½(4 + 1) = 3, so SNR = 2 / 3
#   cosine = ḡ·g* / (‖ḡ‖‖g*‖) = 3 / √10
GRADIENTS = np.array([[1.0, 0.0], [3.0, 2.0]], np.float32)
TRUE = np.array([1.0, 1.0], np.float32)


def test_hand_computed_values():
    quality = metrics.gradient_quality(GRADIENTS, TRUE)
    assert float(quality["variance"]) == pytest.approx(1.0)
    assert float(quality["bias"]) == pytest.approx(0.5)
    assert float(quality["snr"]) == pytest.approx(2 / 3)
    assert float(quality["cosine"]) == pytest.approx(3 / np.sqrt(10))
    assert float(quality["mean_gap"]) == 0.0
    assert float(quality["variance_db"]) == pytest.approx(0.0, abs=1e-6)
    assert float(quality["bias_db"]) == pytest.approx(10 * np.log10(0.5))
    assert float(quality["bias_db"]) == pytest.approx(20 * np.log10(np.linalg.norm(TRUE - [2, 1]) / np.linalg.norm(TRUE)))
    assert float(quality["snr_db"]) == pytest.approx(10 * np.log10(2 / 3))
    # With exact weights and ḡ the weighted mean, 1 / SNR = variance + bias.
    assert 1 / float(quality["snr"]) == pytest.approx(float(quality["variance"] + quality["bias"]))
    # Un-normalised: ‖g*‖ = √2, ‖g* − ḡ‖² = 1, Σ w ‖g_i − ḡ‖² = 2, MSE = 3.
    assert float(quality["true_gradient_norm"]) == pytest.approx(np.sqrt(2))
    assert float(quality["squared_bias"]) == pytest.approx(1.0)
    assert float(quality["variance_unnormalised"]) == pytest.approx(2.0)
    assert float(quality["mean_squared_error"]) == pytest.approx(3.0)
    batched = metrics.gradient_quality(GRADIENTS, TRUE, batch_size=4)
    assert float(batched["variance_unnormalised"]) == pytest.approx(0.5)
    assert float(batched["mean_squared_error"]) == pytest.approx((3.0 + 3 * 1.0) / 4)


def test_given_expected_gradient():
    # Claim ḡ = g*: variance = ½(0 + 1) + ½(4 + 1) = 3, over ‖g*‖² = 2; zero bias; SNR does not use ḡ.
    quality = metrics.gradient_quality(GRADIENTS, TRUE, expected_gradient=TRUE)
    assert float(quality["variance"]) == pytest.approx(1.5)
    assert float(quality["bias"]) == 0.0 and float(quality["bias_db"]) == -np.inf
    assert float(quality["snr"]) == pytest.approx(2 / 3)
    assert float(quality["cosine"]) == pytest.approx(1.0)
    assert float(quality["mean_gap"]) == pytest.approx(0.5)  # ‖(2, 1) − (1, 1)‖² / 2


def test_batch_size_divides_variance_and_the_variance_part_of_the_mse():
    quality = metrics.gradient_quality(GRADIENTS, TRUE, batch_size=4)
    assert float(quality["variance"]) == pytest.approx(1.0 / 4)
    # MSE_4 = (3 + 3 · ‖ḡ − g*‖²) / 4 = (3 + 3) / 4 = 1.5 = variance part 2 / 4 + squared bias 1.
    assert float(quality["snr"]) == pytest.approx(2 / 1.5)
    assert float(quality["bias"]) == pytest.approx(0.5)  # the bias does not shrink with the batch
    np.testing.assert_allclose(float(metrics.variance(GRADIENTS, TRUE, batch_size=8)), 1.0 / 8, rtol=1e-6)


def test_weighted_equals_repeated_rows():
    rng = np.random.default_rng(0)
    unique = rng.normal(size=(3, 5)).astype(np.float32)
    counts = np.array([1, 2, 3])
    repeated = np.repeat(unique, counts, axis=0)
    weights = counts / counts.sum()
    true = rng.normal(size=5).astype(np.float32)
    for expected in (None, rng.normal(size=5).astype(np.float32)):
        for batch_size in (1, 3):
            weighted = metrics.gradient_quality(unique, true, expected, weights, batch_size)
            uniform = metrics.gradient_quality(repeated, true, expected, None, batch_size)
            for name in weighted:
                np.testing.assert_allclose(weighted[name], uniform[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_individual_functions_agree_with_gradient_quality():
    rng = np.random.default_rng(1)
    gradients, true, expected = rng.normal(size=(7, 4)), rng.normal(size=4), rng.normal(size=4)
    quality = metrics.gradient_quality(gradients, true, expected, batch_size=2)
    np.testing.assert_allclose(quality["variance"], metrics.variance(gradients, true, expected, batch_size=2))
    np.testing.assert_allclose(quality["snr"], metrics.snr(gradients, true, expected, batch_size=2))
    np.testing.assert_allclose(quality["bias"], metrics.bias(expected, true))
    np.testing.assert_allclose(quality["cosine"], metrics.cosine(expected, true))
    np.testing.assert_allclose(quality["snr_db"], metrics.decibels(quality["snr"]))


def test_jit_compatible():
    rng = np.random.default_rng(2)
    gradients = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    weights = jnp.asarray(rng.dirichlet(np.ones(6)), jnp.float32)
    true, expected = jnp.asarray([0.5, -1.0, 2.0]), jnp.asarray([0.4, -1.2, 2.1])
    jitted = jax.jit(metrics.gradient_quality, static_argnames="batch_size")(
        gradients, true, expected, weights, batch_size=3)
    eager = metrics.gradient_quality(gradients, true, expected, weights, batch_size=3)
    traced_batch = jax.jit(metrics.gradient_quality)(gradients, true, expected, weights, 3)
    for name in eager:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(traced_batch[name], eager[name], rtol=1e-5, err_msg=name)


def test_zero_true_gradient_is_an_error():
    with pytest.raises(ValueError, match=r"the true gradient g\* is zero"):
        metrics.gradient_quality(GRADIENTS, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"the true gradient g\* is zero"):
        metrics.bias(TRUE, np.zeros(2, np.float32))
    # Under jit the values cannot be inspected: the metrics come out NaN instead.
    jitted = jax.jit(metrics.gradient_quality)(GRADIENTS, jnp.zeros(2))
    assert np.isnan(float(jitted["variance"])) and np.isnan(float(jitted["bias"]))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"weights must be probabilities .* sum to 2"):
        metrics.gradient_quality(GRADIENTS, TRUE, weights=np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer; got 0"):
        metrics.gradient_quality(GRADIENTS, TRUE, batch_size=0)
    with pytest.raises(AssertionError):  # chex shape check: g* must have P entries
        metrics.gradient_quality(GRADIENTS, np.ones(3, np.float32))
    with pytest.raises(AssertionError):
        metrics.gradient_quality(GRADIENTS, TRUE, weights=np.ones(3) / 3)
    chex.assert_shape(metrics.weighted_mean(GRADIENTS), (2,))
