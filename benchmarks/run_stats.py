"""Statistics of one run's evaluation rows (``{"update", "seed", metric, ...}``) over its seeds."""

from __future__ import annotations

import numpy as np


def mean_and_error(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(error)


def per_seed_at(rows: list[dict], metric: str, update: int | None = None) -> list[float]:
    """Per seed, ``metric`` at the last evaluation at or before ``update`` (the last one: None)."""
    updates = sorted({row["update"] for row in rows if update is None or row["update"] <= update})
    if not updates:
        raise ValueError(f"no evaluation at or before update {update}")
    return [row[metric] for row in sorted(rows, key=lambda r: r["seed"]) if row["update"] == updates[-1]]


def training_means(rows: list[dict], metric: str) -> list[float]:
    """Per seed, ``metric`` averaged over every evaluation of training (what the COCOA paper plots against L)."""
    seeds = sorted({row["seed"] for row in rows})
    return [float(np.mean([r[metric] for r in rows if r["seed"] == seed])) for seed in seeds]


def reach_and_hold(rows: list[dict], metric: str, reach: float = 0.9, floor: float = 0.5):
    """Per seed: the first update whose evaluation reaches ``reach`` (None if never) and whether a
    later evaluation falls back below ``floor`` (a collapse)."""
    per_seed = {}
    for row in sorted(rows, key=lambda r: r["update"]):
        per_seed.setdefault(row["seed"], []).append((row["update"], row[metric]))
    result = {}
    for seed, series in sorted(per_seed.items()):
        first = next((update for update, value in series if value >= reach), None)
        collapsed = first is not None and any(value < floor for update, value in series if update > first)
        result[seed] = (first, collapsed)
    return result
