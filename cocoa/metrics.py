"""Gradient-quality metrics of a policy-gradient estimator against the exact gradient g*.

docs/gradients.md (the COCOA paper's bias / variance / SNR figures, Meulemans et al. 2023, Sec. 5).
Inputs are flattened gradients:

* ``gradients`` g (N, P): one estimate g_i per trajectory (or per sample);
* ``weights`` w (N,): probability weights summing to one; default uniform 1/N (Monte-Carlo
  samples). Exact enumeration (``cocoa.enumeration``) passes each trajectory's probability, which
  makes every sum below an exact expectation;
* ``expected_gradient`` ḡ (P,): the estimator's exact expectation E[g] (``cocoa.oracle.
  estimator_gradient``); default the weighted mean Σ_i w_i g_i;
* ``true_gradient`` g* (P,): the exact policy gradient (``cocoa.oracle.policy_gradient``).

Definitions (docs/gradients.md), for a batch of ``batch_size`` = B trajectories per estimate:

* variance = Σ_i w_i mean_p (g_i − ḡ)² / mean_p (g*)² / B
* bias     = ‖g* − ḡ‖² / ‖g*‖²
* SNR      = ‖g*‖² / MSE_B, with MSE_1 = Σ_i w_i ‖g_i − g*‖² (includes bias and variance) and
  MSE_B = (MSE_1 + (B − 1) ‖ḡ − g*‖²) / B: the variance part divided by B, the bias part kept
  (exactly the mean squared error of a mean of B independent estimates when ḡ = E[g]);
* cosine   = ḡ·g* / (‖ḡ‖ ‖g*‖) (0 when ḡ = 0);
* in decibels: 10·log10 of variance, bias (= 20·log10 ‖g* − ḡ‖ / ‖g*‖) and SNR.

With exact weights and ḡ = Σ_i w_i g_i, 1 / SNR = variance + bias for B = 1.

Every function is pure and jittable. The metrics are relative to ‖g*‖², so g* = 0 is an error:
eagerly a ``ValueError``; under ``jax.jit`` (where values cannot be inspected) the results are NaN.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

_WEIGHT_TOLERANCE = 1e-3


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _check_true_gradient(true_gradient) -> jax.Array:
    """‖g*‖², raising if g* is (concretely) zero."""
    chex.assert_rank(true_gradient, 1)
    norm_squared = jnp.sum(jnp.square(true_gradient))
    if _is_concrete(norm_squared) and not float(norm_squared) > 0.0:
        raise ValueError("the true gradient g* is zero (or not finite), so the relative metrics "
                         "(bias, variance, SNR) are undefined; pick a policy with a non-zero gradient")
    return jnp.where(norm_squared > 0.0, norm_squared, jnp.nan)


def _check_batch_size(batch_size):
    if _is_concrete(batch_size) and not (float(batch_size) >= 1 and float(batch_size) == int(batch_size)):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")


def probability_weights(gradients, weights=None) -> jax.Array:
    """(N,) the weights w_i: ``weights`` checked to be a distribution, or uniform 1/N."""
    gradients = jnp.asarray(gradients)
    chex.assert_rank(gradients, 2)
    num = gradients.shape[0]
    if num < 1:
        raise ValueError("need at least one gradient estimate; got an empty (0, P) array")
    if weights is None:
        return jnp.full((num,), 1.0 / num, dtype=gradients.dtype)
    weights = jnp.asarray(weights)
    chex.assert_shape(weights, (num,))
    if _is_concrete(weights):
        total, smallest = float(jnp.sum(weights)), float(jnp.min(weights))
        if abs(total - 1.0) > _WEIGHT_TOLERANCE or smallest < 0.0:
            raise ValueError(f"weights must be probabilities (non-negative, summing to one); they sum to "
                             f"{total:.6g} with minimum {smallest:.3g}")
    return weights.astype(gradients.dtype)


def weighted_mean(gradients, weights=None) -> jax.Array:
    """(P,) Σ_i w_i g_i: the estimator's mean gradient (exact when ``weights`` are the probabilities)."""
    gradients = jnp.asarray(gradients)
    return probability_weights(gradients, weights) @ gradients


def _expected_gradient(gradients, weights, expected_gradient):
    if expected_gradient is None:
        return weighted_mean(gradients, weights)
    chex.assert_shape(expected_gradient, gradients.shape[1:])
    return jnp.asarray(expected_gradient, gradients.dtype)


def _mean_squared_distance(gradients, weights, center) -> jax.Array:
    """Σ_i w_i ‖g_i − center‖²."""
    return probability_weights(gradients, weights) @ jnp.sum(jnp.square(gradients - center), axis=-1)


def variance(gradients, true_gradient, expected_gradient=None, weights=None, batch_size: int = 1) -> jax.Array:
    """Relative variance Σ_i w_i mean_p (g_i − ḡ)² / mean_p (g*)² / B (docs/gradients.md).

    The per-coordinate means share the factor 1/P, so this is Σ_i w_i ‖g_i − ḡ‖² / ‖g*‖² / B.

    Args:
      gradients: (N, P) per-trajectory estimates g_i.
      true_gradient: (P,) the exact gradient g*.
      expected_gradient: (P,) ḡ; default the weighted mean of ``gradients``.
      weights: (N,) probabilities w_i; default uniform 1/N.
      batch_size: trajectories B per gradient estimate (divides the variance).
    """
    gradients, true_gradient = jnp.asarray(gradients), jnp.asarray(true_gradient)
    chex.assert_rank(gradients, 2)
    _check_batch_size(batch_size)
    true_norm_squared = _check_true_gradient(true_gradient)
    chex.assert_shape(true_gradient, gradients.shape[1:])
    mean = _expected_gradient(gradients, weights, expected_gradient)
    return _mean_squared_distance(gradients, weights, mean) / true_norm_squared / batch_size


def bias(expected_gradient, true_gradient) -> jax.Array:
    """Relative squared bias ‖g* − ḡ‖² / ‖g*‖² (docs/gradients.md)."""
    expected_gradient, true_gradient = jnp.asarray(expected_gradient), jnp.asarray(true_gradient)
    true_norm_squared = _check_true_gradient(true_gradient)
    chex.assert_equal_shape([expected_gradient, true_gradient])
    return jnp.sum(jnp.square(true_gradient - expected_gradient)) / true_norm_squared


def mean_squared_error(gradients, true_gradient, expected_gradient=None, weights=None,
                       batch_size: int = 1) -> jax.Array:
    """MSE_B: Σ_i w_i ‖g_i − g*‖² for B = 1; (MSE_1 + (B − 1) ‖ḡ − g*‖²) / B for a batch of B."""
    gradients, true_gradient = jnp.asarray(gradients), jnp.asarray(true_gradient)
    chex.assert_rank([gradients, true_gradient], [2, 1])
    chex.assert_shape(true_gradient, gradients.shape[1:])
    _check_batch_size(batch_size)
    single = _mean_squared_distance(gradients, weights, true_gradient)
    mean = _expected_gradient(gradients, weights, expected_gradient)
    squared_bias = jnp.sum(jnp.square(mean - true_gradient))
    return (single + (batch_size - 1) * squared_bias) / batch_size


def snr(gradients, true_gradient, expected_gradient=None, weights=None, batch_size: int = 1) -> jax.Array:
    """Signal-to-noise ratio ‖g*‖² / MSE_B (docs/gradients.md); an MSE, so it includes the bias.

    For B = 1 the denominator is Σ_i w_i ‖g_i − g*‖²; for a batch of B only its variance part is
    divided by B (see ``mean_squared_error``).
    """
    true_gradient = jnp.asarray(true_gradient)
    true_norm_squared = _check_true_gradient(true_gradient)
    return true_norm_squared / mean_squared_error(gradients, true_gradient, expected_gradient, weights, batch_size)


def cosine(expected_gradient, true_gradient) -> jax.Array:
    """cos(ḡ, g*) = ḡ·g* / (‖ḡ‖ ‖g*‖), clipped to [-1, 1] against rounding; 0 when ḡ = 0 (docs/gradients.md)."""
    expected_gradient, true_gradient = jnp.asarray(expected_gradient), jnp.asarray(true_gradient)
    true_norm_squared = _check_true_gradient(true_gradient)
    chex.assert_equal_shape([expected_gradient, true_gradient])
    norms = jnp.sqrt(jnp.sum(jnp.square(expected_gradient)) * true_norm_squared)
    similarity = jnp.dot(expected_gradient, true_gradient) / jnp.where(norms > 0.0, norms, 1.0)
    return jnp.where(norms > 0.0, jnp.clip(similarity, -1.0, 1.0), 0.0)


def decibels(ratio) -> jax.Array:
    """10·log10(ratio): for bias this equals 20·log10 ‖g* − ḡ‖ / ‖g*‖ (−inf for a ratio of 0)."""
    return 10.0 * jnp.log10(ratio)


def gradient_quality(gradients, true_gradient, expected_gradient=None, weights=None,
                     batch_size: int = 1) -> dict[str, jax.Array]:
    """All the metrics of docs/gradients.md at once: bias, variance, SNR, cosine and their dB versions.

    Args:
      gradients: (N, P) per-trajectory estimates g_i (flattened).
      true_gradient: (P,) the exact gradient g*.
      expected_gradient: (P,) the estimator's exact expectation ḡ; default Σ_i w_i g_i.
      weights: (N,) probabilities w_i (exact enumeration); default uniform 1/N (samples).
      batch_size: trajectories B per gradient estimate: divides the variance and the variance part
        of the SNR's mean squared error.

    Returns:
      dict of scalars: ``bias``, ``variance``, ``snr``, ``cosine``, ``bias_db``, ``variance_db``,
      ``snr_db``, ``mean_gap`` = ‖Σ_i w_i g_i − ḡ‖² / ‖g*‖², the distance between the
      estimates' mean and ḡ (0 up to rounding when ``weights`` are exact probabilities and ḡ the
      estimator's expectation; sampling error otherwise; exactly 0 when ḡ is not given), and the
      un-normalised ``true_gradient_norm`` ‖g*‖, ``squared_bias`` ‖g* − ḡ‖²,
      ``variance_unnormalised`` Σ_i w_i ‖g_i − ḡ‖² / B and ``mean_squared_error`` (MSE_B).
    """
    gradients, true_gradient = jnp.asarray(gradients), jnp.asarray(true_gradient)
    chex.assert_rank([gradients, true_gradient], [2, 1])
    chex.assert_shape(true_gradient, gradients.shape[1:])
    # Every check once, on the concrete values, then the metrics as one compiled program (eagerly,
    # each of their few dozen operations would dispatch, and compile, on its own).
    _check_true_gradient(true_gradient)
    _check_batch_size(batch_size)
    return _gradient_quality(gradients, true_gradient, expected_gradient, probability_weights(gradients, weights),
                             batch_size)


@jax.jit
def _gradient_quality(gradients, true_gradient, expected_gradient, weights, batch_size):
    true_norm_squared = _check_true_gradient(true_gradient)
    sample_mean = weighted_mean(gradients, weights)
    mean = sample_mean if expected_gradient is None else _expected_gradient(gradients, weights, expected_gradient)
    quality = {
        "bias": bias(mean, true_gradient),
        "variance": variance(gradients, true_gradient, mean, weights, batch_size),
        "snr": snr(gradients, true_gradient, mean, weights, batch_size),
        "cosine": cosine(mean, true_gradient),
        "mean_gap": jnp.sum(jnp.square(sample_mean - mean)) / true_norm_squared,
        # Un-normalised, beside the ratios: as the policy turns deterministic ||g*|| -> 0 and every
        # ratio over ||g*||^2 blows up (a model that learned nothing then scores a bias of 0 dB).
        "true_gradient_norm": jnp.sqrt(true_norm_squared),
        "squared_bias": jnp.sum(jnp.square(true_gradient - mean)),
        "variance_unnormalised": _mean_squared_distance(gradients, weights, mean) / batch_size,
        "mean_squared_error": mean_squared_error(gradients, true_gradient, mean, weights, batch_size),
    }
    for name in ("bias", "variance", "snr"):
        quality[name + "_db"] = decibels(quality[name])
    return quality
