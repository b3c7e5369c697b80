"""Shared checks of sampled environment dynamics against a tabular form (not a test module)."""

import numpy as np

# Per-cell bound on |z| of empirical frequencies. A few hundred stochastic cells are checked in
# total; P(|z| > 5) ~ 6e-7 per cell under the null (normal approximation, n >= 30 per cell).
Z_BOUND = 5.0


def check_frequencies(name, counts, probs, min_visits=30):
    """Compares count table (cells, K) with probabilities (cells, K) row by row.

    Deterministic entries (p = 0 or 1) must match exactly; stochastic ones within Z_BOUND standard
    errors of a binomial. Rows visited fewer than ``min_visits`` times, and cells expecting fewer than
    5 counts (where the normal approximation of a binomial fails: 6 counts where 0.67 are expected
    is |z| = 6.5, yet happens once in about 14,000 such cells), only get the exact check.
    """
    visits = counts.sum(axis=-1, keepdims=True)
    expected = visits * probs
    impossible = (probs < 1e-9) & (counts > 0)
    assert not impossible.any(), f"{name}: outcomes of probability 0 observed at {np.argwhere(impossible)[:5]}"
    certain = probs > 1 - 1e-9
    assert np.all(counts[certain] == np.broadcast_to(visits, counts.shape)[certain]), f"{name}: certain outcomes missed"
    stochastic = ~certain & (probs > 1e-9) & (visits >= min_visits) & (expected >= 5)
    std = np.sqrt(visits * probs * (1 - probs))
    z = np.where(stochastic, (counts - expected) / np.where(stochastic, std, 1.0), 0.0)
    assert np.abs(z).max() < Z_BOUND, f"{name}: max |z| = {np.abs(z).max():.2f}"
    return int(stochastic.sum())
