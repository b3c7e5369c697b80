"""The signal-to-noise ratio of each rule's meta-gradient at the meta agents' initial parameters.

Run with ``python -m cocoa.benchmarks.coala_snr [--samples N] [--batch B ...] [--env ENV]``; it
prints a table. For each rule, N independent meta-batches give N gradient estimates g_i of the
same pool; the per-sample SNR is ||E g||^2 / tr Cov(g), estimated as (||mean||^2 - tr S / N) / tr S
with S the sample covariance: the numerator is unbiased for ||E g||^2 (||mean||^2 alone is high by
tr Cov / N). Estimates below about 1/N are within
the estimator's own noise. This is what explains COALA's slow start on CleanUp-lite at CPU scale
(docs/estimators/coala.md).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from cocoa.agents.coala import RULES
from cocoa.shaping import CLEANUP, ENVS, META_BASELINES, ShapingConfig, init_params, make_meta_gradient


def per_sample_snr(gradients: np.ndarray) -> float:
    """(||mean||^2 - tr S / N) / tr S over N flattened gradients (N, D), N >= 2."""
    gradients = np.asarray(gradients, np.float64)
    if gradients.ndim != 2 or gradients.shape[0] < 2:
        raise ValueError(f"need at least 2 flattened gradients (N, D); got shape {gradients.shape}")
    mean = gradients.mean(axis=0)
    trace = gradients.var(axis=0, ddof=1).sum()
    return float((mean @ mean - trace / gradients.shape[0]) / trace)


def rule_snr(config: ShapingConfig, samples: int, seed: int = 0) -> float:
    """The per-sample SNR of ``config.rule``'s meta-gradient at the pool's initial parameters."""
    gradient_of = jax.jit(make_meta_gradient(config))
    params = init_params(config, jax.random.PRNGKey(seed))
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), samples)
    flat = [np.asarray(jnp.concatenate([x.ravel() for x in jax.tree.leaves(gradient_of(params, key)[0])]))
            for key in keys]
    return per_sample_snr(np.stack(flat))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=CLEANUP, choices=ENVS)
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 16], help="B, the naive learner's batch")
    parser.add_argument("--samples", type=int, default=64, help="gradient estimates per rule (N)")
    parser.add_argument("--meta-baseline", default="step-mean", choices=META_BASELINES,
                        help="the Monte-Carlo weights' baseline (ShapingConfig.meta_baseline)")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error(f"--samples must be at least 2; got {args.samples}")
    if min(args.batch) < 1:
        parser.error(f"every --batch must be a positive integer; got {args.batch}")
    sizes = dict(episode_length=64, episodes=4) if args.env == CLEANUP else {}
    cells = [(b, rule) for b in args.batch for rule in RULES]
    rows = []
    for b, rule in tqdm(cells, desc="meta-gradient SNR", unit="rule"):
        config = ShapingConfig(env=args.env, policy="gru", batch_size=b, meta_batch=4, rule=rule,
                               meta_learning_rate=0.003, meta_baseline=args.meta_baseline, **sizes)
        rows.append((b, rule, rule_snr(config, args.samples)))
    print(f"\n{args.env}, GRU meta agents at their initial parameters, meta-batch 4, baseline {args.meta_baseline}, "
          f"{args.samples} samples "
          f"(noise floor about {1 / args.samples:.3f})")
    print(f"{'B':>4}  {'rule':<14} {'per-sample SNR':>15}")
    for b, rule, snr in rows:
        print(f"{b:>4}  {rule:<14} {snr:>15.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
