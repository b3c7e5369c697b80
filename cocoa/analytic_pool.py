"""A pool of memory-1 meta agents on the analytic IPD, trained by exact gradient ascent.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Sec. 4.2, App. C): the oracle of the mixed pools that ``cocoa.shaping`` samples.
Against a naive learner each agent ascends its return along the learner's exact learning
trajectory (``envs.ipd.shaping_objective``, differentiated through the learner's steps); against
another agent of the pool, the partial gradient of the one-game return. docs/environments/ipd.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from cocoa.checks import check_integer, check_positive_number
from cocoa.envs import ipd
from cocoa.envs.ipd import NUM_OBSERVATIONS

# The analytic pool's starting policies: cooperation probabilities at start, CC, CD, DC, DD (own view).
ANALYTIC_STARTS = {"defect": (0.01,) * 5, "tit-for-tat": (0.99, 0.99, 0.01, 0.99, 0.01)}
ANALYTIC_NAIVE_INITS = ("uniform", "zero")
ANALYTIC_EVALUATION_KEY = jax.random.PRNGKey(1825)  # the fixed naive starts every analytic evaluation uses


def train_analytic_pool(*, population: int = 2, p_naive: float = 0.75, updates: int = 12000, seed: int = 0,
                        start: str = "defect", naive_init: str = "uniform", naive_batch: int = 16,
                        discount: float = 0.999, naive_steps: int = 20, naive_learning_rate: float = 10.0,
                        learning_rate: float = 0.005, log_every: int = 600, progress: bool = True) -> dict:
    """A pool of memory-1 meta agents on the analytic IPD, by exact gradient ascent (the COALA paper's
    Sec. 4.2 and App. C: the oracle of the mixed pools).

    Agent i ascends p_naive times its mean return along naive learners' exact learning trajectories
    (``envs.ipd.shaping_objective`` / naive_steps, differentiated through the learners' steps;
    ``naive_batch`` learners per update, each from a fresh random start) plus (1 - p_naive) times its
    mean return against the other agents, held fixed (the partial gradient). AdamW (optax defaults)
    with ``learning_rate``, as the paper.

    Args:
      start: the agents' first policy, a key of ``ANALYTIC_STARTS``: "defect" (cooperate with
        probability 0.01 everywhere, the paper's unconditional-defection start) or "tit-for-tat".
      naive_init: "uniform" (each naive learner's five cooperation probabilities drawn uniformly
        from (0, 1)) or "zero" (every learner at logits 0).
      discount: gamma of the infinitely repeated game, in [0, 1).
      naive_learning_rate: the naive learners' step on the (1 - gamma)-normalised return.

    Returns: ``logits`` (P, 5); ``meta_reward`` and ``naive_reward`` (per step, along the learning
    trajectories of 256 fixed naive starts drawn as in training, pool mean); ``meta_vs_meta_reward``
    (pool mean over ordered pairs i != j; NaN for a pool of one); ``update`` (N,) and the same three as curves (N,), every
    ``log_every`` updates (a progress bar unless ``progress`` is False).
    """
    if isinstance(p_naive, bool) or not isinstance(p_naive, (int, float)) or not 0 <= p_naive <= 1:
        raise ValueError(f"p_naive must be a probability in [0, 1]; got {p_naive!r}")
    check_integer("population", population, 2 if p_naive < 1 else 1, why=" (meta opponents need another agent)")
    check_integer("updates", updates, 1)
    check_integer("seed", seed, 0)
    check_integer("naive_batch", naive_batch, 1)
    check_integer("naive_steps", naive_steps, 1)
    check_integer("log_every", log_every, 1)
    if updates % log_every:
        raise ValueError(f"updates ({updates}) must be a whole number of log_every blocks ({log_every})")
    if not isinstance(start, str) or start not in ANALYTIC_STARTS:
        raise ValueError(f"unknown start {start!r}; known: {', '.join(ANALYTIC_STARTS)}")
    if not isinstance(naive_init, str) or naive_init not in ANALYTIC_NAIVE_INITS:
        raise ValueError(f"unknown naive_init {naive_init!r}; known: {', '.join(ANALYTIC_NAIVE_INITS)}")
    for name, value in (("naive_learning_rate", naive_learning_rate), ("learning_rate", learning_rate)):
        check_positive_number(name, value)
    ipd.analytic_returns(jnp.zeros(NUM_OBSERVATIONS), jnp.zeros(NUM_OBSERVATIONS), discount)  # checks discount
    others = 1.0 - jnp.eye(population)

    def naive_starts(key, count):
        if naive_init == "zero":
            return jnp.zeros((count, NUM_OBSERVATIONS))
        return jax.random.logistic(key, (count, NUM_OBSERVATIONS))  # the logits of uniform probabilities

    def shaping(meta, starts):
        return jnp.mean(jax.vmap(lambda naive: ipd.shaping_objective(
            meta, naive, discount, naive_steps, naive_learning_rate))(starts)) / naive_steps

    def versus_meta(pool, fixed):  # (P,): each agent's mean return against the others
        pairs = jax.vmap(lambda m: jax.vmap(lambda o: ipd.analytic_returns(m, o, discount)[0])(fixed))(pool)
        return jnp.sum(pairs * others, axis=1) / max(population - 1, 1)

    def objective(pool, fixed, starts):
        return jnp.sum(p_naive * jax.vmap(lambda m: shaping(m, starts))(pool)
                       + (1.0 - p_naive) * versus_meta(pool, fixed))

    evaluation_starts = naive_starts(ANALYTIC_EVALUATION_KEY, 256)

    def evaluate(pool):
        def along_learning(meta):
            trajectories = jax.vmap(lambda n: ipd.naive_learning(meta, n, discount, naive_steps,
                                                                 naive_learning_rate))(evaluation_starts)
            returns = jax.vmap(jax.vmap(lambda n: jnp.stack(ipd.analytic_returns(meta, n, discount))))(trajectories)
            return jnp.mean(returns, axis=(0, 1))

        versus_naive = jax.vmap(along_learning)(pool)  # (P, 2)
        alone = population == 1  # no pair of meta agents: no meta-vs-meta reward
        return {"meta_reward": jnp.mean(versus_naive[:, 0]), "naive_reward": jnp.mean(versus_naive[:, 1]),
                "meta_vs_meta_reward": jnp.nan if alone else jnp.mean(versus_meta(pool, pool))}

    optimizer = optax.adamw(learning_rate)

    def step(carry, key):
        pool, state = carry
        gradient = jax.grad(objective)(pool, jax.lax.stop_gradient(pool), naive_starts(key, naive_batch))
        updates_, state = optimizer.update(-gradient, state, pool)
        return (optax.apply_updates(pool, updates_), state), None

    @jax.jit
    def block(carry, keys):
        carry, _ = jax.lax.scan(step, carry, keys)
        return carry, evaluate(carry[0])

    probabilities = jnp.asarray(ANALYTIC_STARTS[start])
    pool = jnp.broadcast_to(jnp.log(probabilities) - jnp.log1p(-probabilities), (population, NUM_OBSERVATIONS))
    keys = jax.random.split(jax.random.PRNGKey(seed), updates).reshape(updates // log_every, log_every, 2)
    carry, history = (pool, optimizer.init(pool)), []
    with tqdm(total=updates, desc=f"analytic IPD pool p_naive={p_naive:g} from {start}", disable=not progress,
              unit="update") as bar:
        for block_keys in keys:
            carry, metrics = block(carry, block_keys)
            history.append(jax.device_get(metrics))
            bar.update(log_every)
    out = {"logits": np.asarray(carry[0]), "update": np.arange(log_every, updates + 1, log_every)}
    for name in history[0]:
        out[name + "_curve"] = np.array([h[name] for h in history])
        out[name] = float(out[name + "_curve"][-1])
    return out
