"""Drawing from categorical distributions with pre-drawn uniforms (inverse CDF).

Rollouts draw all their uniforms in bulk up front: per-step key splitting and
``jax.random.categorical`` cost about 10x more on a CPU (docs/performance.md).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def sample_inverse_cdf(probs: jax.Array, uniforms: jax.Array) -> jax.Array:
    """One index per row of ``probs`` (..., K) from uniforms (...) in [0, 1): the first k with CDF_k > u."""
    chex.assert_equal_shape_prefix([probs, uniforms], uniforms.ndim)
    cdf = jnp.cumsum(probs, axis=-1)
    index = jnp.sum(cdf <= uniforms[..., None], axis=-1)
    return jnp.minimum(index, probs.shape[-1] - 1).astype(jnp.int32)
