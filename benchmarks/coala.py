"""``cocoa bench coala``, ``coala-sequence``, ``coala-hawk`` and ``coala-cleanup``: the COALA paper's claims, run with
the shaping runner (``cocoa.shaping``) and the analytic IPD, as ``DIR/results.json`` (one record per
run), ``DIR/report.md`` and two figures.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Sec. 5); docs/estimators/coala.md. ``coala``: the IPD with memory-1 meta agents (and
COALA's mixed pool again with tabular ones, logits per inner episode) at the paper's IPD sizes (T 10,
M 20, B 16), the meta-batch cut to fit a CPU, and the analytic IPD; ``coala-sequence``: the
same with GRU meta agents; ``coala-hawk``: the same with the paper's Hawk block; ``coala-cleanup``: CleanUp-lite with GRU meta agents and A2C network naive
learners, far below the paper's scale. Every finished run is saved at once (``DIR/runs/NAME.json``)
and kept on a rerun: an interrupted suite resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import warnings
from pathlib import Path

import numpy as np

from cocoa.benchmarks import backends
from cocoa.benchmarks.claim_table import COALA_PAPER, Missing, markdown, row
from cocoa.benchmarks.records import atomic_write, digest
from cocoa.analytic_pool import ANALYTIC_STARTS, train_analytic_pool
from cocoa.shaping import CLEANUP, COOPERATION, IPD, METRICS, ShapingConfig, train_shaping

NAME = "coala"
DESCRIPTION = ("The COALA paper's IPD claims: shaping naive learners and mixed pools under COALA, M-FOS and "
               "batch-unaware rules with memory-1 meta policies (COALA's mixed pool also with tabular ones, logits "
               "per inner episode; 2 seeds x 2,000 updates), and the analytic IPD (about 11 minutes here).")
RULES = ("coala", "m-fos", "batch-unaware")
ANALYTIC_UPDATES = 8000  # exact gradient steps of the analytic pool (AdamW 0.005, as the paper)
ANALYTIC_LOG_EVERY = 400


@dataclasses.dataclass(frozen=True)
class CoalaRun:
    """One run: ``setting`` "shaping" or "mixed", on the sampled IPD (``policy`` "memory-1", "tabular",
    "gru" or "hawk") or the analytic one, or on CleanUp-lite (``env``)."""

    setting: str
    rule: str
    env: str = IPD
    policy: str = "tabular"  # "memory-1", "gru" or "hawk" (cocoa.shaping.POLICIES), or "analytic memory-1"
    meta_learning_rate: float = 0.05
    gru_mlp: bool = False  # ShapingConfig.gru_mlp: the gated MLP sub-block after a GRU policy
    p_naive: float = 1.0
    population: int = 1
    meta_batch: int = 32
    normalize_advantages: bool = False
    meta_critic: bool = False  # network games only (ShapingConfig.meta_critic)
    meta_baseline: str | None = None  # ShapingConfig.meta_baseline: "step-mean" without the critic
    # PPO (ShapingConfig.meta_epochs, meta_minibatches; clip 0.2): (1, 1) is one plain Adam step per batch.
    meta_epochs: int = 1
    meta_minibatches: int = 1
    seeds: tuple = (0, 1)
    updates: int = 2000
    log_every: int = 100
    sizes: tuple = (10, 20, 16)  # T, M, B
    start: str = "defect"  # analytic runs only: the pool's first policy (cocoa.analytic_pool.ANALYTIC_STARTS)
    # Any other ShapingConfig settings, as (name, value) pairs: the paper-scale CleanUp-lite runs' naive
    # learners, reward scale, gradient clipping and chunking.
    shaping: tuple = ()

    def __post_init__(self):
        own = {field.name for field in dataclasses.fields(self)}
        known = {field.name for field in dataclasses.fields(ShapingConfig)} - own - {"episode_length", "episodes",
                                                                                      "batch_size"}
        for pair in self.shaping:
            if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0] in known):
                raise ValueError(f"shaping must hold (name, value) pairs of ShapingConfig settings that CoalaRun does "
                                 f"not set itself ({', '.join(sorted(known))}); got {pair!r}")
        if not self.policy.startswith("analytic"):
            self.shaping_config()  # a bad setting fails here, when the suite is defined, not when its run starts

    def shaping_config(self) -> ShapingConfig:
        """The sampled run's runner settings."""
        episode_length, episodes, batch = self.sizes
        return ShapingConfig(env=self.env, episode_length=episode_length, episodes=episodes, batch_size=batch,
                             rule=self.rule, population=self.population, p_naive=self.p_naive,
                             meta_batch=self.meta_batch, normalize_advantages=self.normalize_advantages,
                             policy=self.policy, meta_learning_rate=self.meta_learning_rate,
                             meta_critic=self.meta_critic, meta_baseline=self.meta_baseline,
                             meta_epochs=self.meta_epochs, meta_minibatches=self.meta_minibatches,
                             gru_mlp=self.gru_mlp, **dict(self.shaping))

    @property
    def name(self) -> str:
        prefix = "" if self.env == IPD else "cleanup-"
        suffix = "" if self.start == "defect" else f"-from-{self.start}"
        policy = self.policy.split()[0] + ("-mlp" if self.gru_mlp else "")
        return f"{prefix}{self.setting}-{policy}-{self.rule}-p{self.p_naive:g}{suffix}"


def default_runs(updates: int = 2000, seeds=(0, 1), sizes=(10, 20, 16), log_every: int = 100) -> list[CoalaRun]:
    """The suite: with memory-1 meta agents, shaping with each rule, mixed pools of 4 agents at p_naive
    0.75 with each rule and COALA without naive learners; COALA's mixed pool at 0.75 again with tabular
    agents (logits per inner episode), whose late episodes defect; on the analytic IPD (the exact
    learning-aware gradient), shaping from unconditional defection and pools of 2 (the paper's App.
    C.1) from unconditional defection at p_naive 0.25, 0.75 and 0, and from tit-for-tat at 0.75."""
    common = dict(updates=updates, seeds=tuple(seeds), sizes=tuple(sizes), log_every=log_every)
    # A pool of 4 with 8 co-players each costs what one agent with 32 does; per-type normalisation
    # as in the paper (it lifts COALA's meta-vs-meta reward from 0.32 to 0.48 after 2,000 updates).
    mixed = dict(population=4, meta_batch=8, normalize_advantages=True, **common)
    return ([CoalaRun("shaping", rule, policy="memory-1", **common) for rule in RULES]
            + [CoalaRun("mixed", rule, policy="memory-1", p_naive=0.75, **mixed) for rule in RULES]
            + [CoalaRun("mixed", "coala", policy="memory-1", p_naive=0.0, **mixed)]
            + [CoalaRun("mixed", "coala", policy="tabular", p_naive=0.75, **mixed)]
            + [CoalaRun("shaping", "coala", policy="analytic memory-1", seeds=(0,), population=1)]
            + [CoalaRun("mixed", "coala", policy="analytic memory-1", p_naive=p, seeds=seeds, population=2, start=start)
               for p, seeds, start in ((0.25, (0, 1), "defect"), (0.75, (0, 1), "defect"), (0.0, (0,), "defect"),
                                       (0.75, (0, 1), "tit-for-tat"))])


SEQUENCE_NAME = "coala-sequence"
SEQUENCE_DESCRIPTION = ("The COALA IPD claims with GRU meta policies (width 32, Adam lr 0.003, meta-batch 8): "
                        "shaping under each rule and mixed pools of 4 at p_naive 0.75, 1 seed x 1,000 updates "
                        "(about 12 minutes here).")


# The Hawk suite's meta optimiser is the paper's PPO: with one plain Adam step of 3e-3 per batch (the GRU's),
# the Hawk agent's shaping run climbed to 0.92 per step by update 500 and then fell to mutual defection
# (0.23) by update 900; with PPO it extorted for most of its 1,000 updates (docs/estimators/coala.md).
SEQUENCE_OPTIMISERS = {"gru": dict(meta_learning_rate=0.003),
                       "hawk": dict(meta_learning_rate=0.0003, meta_epochs=4, meta_minibatches=2)}
# How many co-players each agent plays per update, and for how long. The Hawk suite plays 32 per agent (a pool's
# 128 games per update are the paper's meta-batch if its 128 counts the pool's games): with 8 the COALA pool
# flattened at 0.57 and 0.29 meta-vs-meta (seeds 0 and 1, 1,000 updates) and the COALA shaping run of seed 1
# stopped extorting (0.598); with 32 the pools passed 0.8 within 300 updates and that shaping run extorted
# throughout (docs/estimators/coala.md). The GRU pool locks into defection at 8, 32 or 128 alike, so the GRU
# suite keeps the cheap size.
SEQUENCE_SIZES = {"gru": dict(meta_batch=8, updates=1000, log_every=100),
                  "hawk": dict(meta_batch=32, updates=300, log_every=50)}


def sequence_runs(policy: str = "gru", seeds=(0,)) -> list[CoalaRun]:
    """The shaping and mixed-pool runs of ``default_runs`` with a sequence meta policy, sized by
    ``SEQUENCE_SIZES[policy]`` and trained by ``SEQUENCE_OPTIMISERS[policy]``."""
    if policy not in SEQUENCE_OPTIMISERS:
        raise ValueError(f"policy must be a sequence policy, 'gru' or 'hawk'; got {policy!r}")
    return _shaping_and_pools(policy=policy, seeds=tuple(seeds), **SEQUENCE_SIZES[policy],
                              **SEQUENCE_OPTIMISERS[policy])


def _shaping_and_pools(**common) -> list[CoalaRun]:
    """Shaping under each rule, then mixed pools of 4 at p_naive 0.75 under each rule, all with ``common``."""
    return ([CoalaRun("shaping", rule, **common) for rule in RULES]
            + [CoalaRun("mixed", rule, p_naive=0.75, population=4, normalize_advantages=True, **common)
               for rule in RULES])


CLEANUP_NAME = "coala-cleanup"
CLEANUP_DESCRIPTION = ("The COALA CleanUp-lite claims at CPU scale: GRU meta agents with a learned critic against A2C "
                       "network naive learners (T 64, M 4, B 4, meta-batch 4), shaping under each rule and mixed pools "
                       "of 4 at p_naive 0.75, 1 seed x 500 updates (about 7 minutes here; the paper's scale is an "
                       "accelerator's).")


def cleanup_runs(updates: int = 500, seeds=(0,), sizes=(64, 4, 4), meta_batch: int = 4,
                 log_every: int = 50) -> list[CoalaRun]:
    """The shaping and mixed-pool runs on CleanUp-lite with GRU meta agents (with the paper's learned
    meta critic) and network naive learners."""
    return _shaping_and_pools(env=CLEANUP, policy="gru", meta_learning_rate=0.003, meta_batch=meta_batch,
                              meta_critic=True, updates=updates, seeds=tuple(seeds), sizes=tuple(sizes),
                              log_every=log_every)


CLEANUP_PAPER_NAME = "coala-cleanup-paper"
CLEANUP_PAPER_DESCRIPTION = (
    "The COALA CleanUp-lite claims at the paper's scale (its App. B.4): Hawk meta agents with a learned critic; "
    "shaping with PPO at T 64, M 100, B 32 and 512 co-players per update (10^8 steps) for 3,000 updates, mixed "
    "pools of 3 at p_naive 0.75 with naive learners copied from the pool and plain SGD at T 64, M 5, B 64 and "
    "512 co-players per agent for 30,000 updates; 5 seeds. An accelerator's job.")
# The paper's CleanUp-lite settings (Meulemans et al., ICLR 2025, App. B.4, Tables 5, 7 and 8), per setting. Both:
# Hawk blocks of width 32 with an MLP 32 wide and 2-head gates (App. B.3), rewards scaled by 0.1, advantages
# normalised, each agent's gradient clipped at norm 1, a learned critic (gamma = lambda = 1). The replay's
# gradient runs in 16 pieces of co-players, which only bounds its memory.
CLEANUP_PAPER = {
    "shaping": dict(sizes=(64, 100, 32), meta_batch=512, population=1, updates=3000, log_every=100,
                    meta_epochs=4, meta_minibatches=2,  # PPO, Adam; clip 0.2
                    learning_rates={"coala": 1e-3, "m-fos": 3e-3, "batch-unaware": 1e-3},
                    naive=(("naive_learning_rate", 0.005), ("naive_discount", 0.99), ("naive_inits", 10))),
    "mixed": dict(sizes=(64, 5, 64), meta_batch=512, population=3, p_naive=0.75, updates=30000, log_every=1000,
                  learning_rates={"coala": 0.1, "m-fos": 0.03, "batch-unaware": 0.03},  # A2C with plain SGD
                  naive=(("naive_optimizer", "sgd"), ("naive_learning_rate", 1.0), ("dynamic_naive", True)),
                  optimizer=(("meta_optimizer", "sgd"),)),
}


def cleanup_paper_runs(seeds=(0, 1, 2, 3, 4), meta_grad_chunks: int = 16) -> list[CoalaRun]:
    """The paper-scale CleanUp-lite runs (``CLEANUP_PAPER``): shaping under each rule, then mixed pools of 3
    at p_naive 0.75 under each rule."""
    runs = []
    for setting, paper in CLEANUP_PAPER.items():
        paper = dict(paper)
        learning_rates, naive, optimizer = paper.pop("learning_rates"), paper.pop("naive"), paper.pop("optimizer", ())
        shaping = (("hawk_mlp_width", 32), ("hawk_heads", 2), ("reward_scale", 0.1), ("meta_max_grad_norm", 1.0),
                   ("meta_grad_chunks", meta_grad_chunks), *optimizer, *naive)
        runs += [CoalaRun(setting, rule, env=CLEANUP, policy="hawk", meta_critic=True, normalize_advantages=True,
                          meta_learning_rate=learning_rates[rule], seeds=tuple(seeds), shaping=shaping, **paper)
                 for rule in RULES]
    return runs


HAWK_NAME = "coala-hawk"
HAWK_DESCRIPTION = ("The coala-sequence runs with the COALA paper's own meta policy, one residual Hawk block "
                    "(RG-LRU, width 32; De et al. 2024) in place of the GRU, and its meta optimiser, PPO (Adam 3e-4, "
                    "4 epochs of 2 minibatches, clip 0.2), 1 seed x 300 updates with 32 co-players per agent "
                    "(about 2 3/4 hours here: 11 minutes each shaping run and 43 each mixed pool).")

# Every COALA suite: name -> (its runs, its description).
SUITES = {NAME: (default_runs, DESCRIPTION), SEQUENCE_NAME: (sequence_runs, SEQUENCE_DESCRIPTION),
          HAWK_NAME: (functools.partial(sequence_runs, "hawk"), HAWK_DESCRIPTION),
          CLEANUP_NAME: (cleanup_runs, CLEANUP_DESCRIPTION),
          CLEANUP_PAPER_NAME: (cleanup_paper_runs, CLEANUP_PAPER_DESCRIPTION)}


def runs_of(suite: str) -> list[CoalaRun]:
    """The runs of the COALA suite named ``suite``."""
    if suite not in SUITES:
        raise ValueError(f"unknown COALA suite {suite!r}; known: {', '.join(SUITES)}")
    return SUITES[suite][0]()


def _clean(value):
    """JSON-safe: NaN and inf as null, numpy as Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _stat(values):
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def run_one(run: CoalaRun, progress: bool = True) -> dict:
    """Train ``run`` and return its record (results.json's row)."""
    record = {"name": run.name, "env": run.env, "setting": run.setting, "rule": run.rule, "policy": run.policy,
              "p_naive": run.p_naive, "population": run.population, "seeds": list(run.seeds)}
    if run.policy.startswith("analytic"):
        outs = [train_analytic_pool(population=run.population, p_naive=run.p_naive, seed=s, start=run.start,
                                    updates=ANALYTIC_UPDATES, log_every=ANALYTIC_LOG_EVERY, progress=progress)
                for s in run.seeds]
        for name in METRICS:
            record[name], record[name + "_se"] = _stat([o[name] for o in outs])
            record[name + "_curve"] = np.mean([o[name + "_curve"] for o in outs], axis=0)
        if run.p_naive == 1.0:
            record["meta_vs_meta_reward"] = record["meta_vs_meta_reward_se"] = float("nan")
            record["meta_vs_meta_reward_curve"] = None
        # Each seed's pool-mean probabilities of cooperating after start, CC, CD, DC, DD.
        record["cooperation_probabilities"] = [np.mean(1 / (1 + np.exp(-o["logits"])), axis=0) for o in outs]
        record.update(exact=True, start=run.start, updates=ANALYTIC_UPDATES, update=outs[0]["update"],
                      steps_per_update=None)
        return _clean(record)
    episode_length, episodes, batch = run.sizes
    config = run.shaping_config()
    out = train_shaping(config, seeds=run.seeds, updates=run.updates, log_every=run.log_every, progress=progress)
    with warnings.catch_warnings():  # the means of a kind of game never played are NaN: null in the record
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in METRICS:  # the last block of updates, per seed
            record[name], record[name + "_se"] = _stat(out[name][:, -1])
            record[name + "_curve"] = np.nanmean(out[name], axis=0)
        for name in COOPERATION:  # per inner episode, the last block
            record[name] = np.nanmean(out[name][:, -1], axis=0)
    record.update(exact=False, updates=run.updates, update=out["update"], meta_batch=run.meta_batch,
                  sizes=dict(T=episode_length, M=episodes, B=batch), normalize_advantages=run.normalize_advantages,
                  meta_critic=run.meta_critic, meta_baseline=config.meta_baseline,
                  meta_learning_rate=run.meta_learning_rate, meta_epochs=run.meta_epochs,
                  meta_minibatches=run.meta_minibatches, gru_mlp=run.gru_mlp,
                  steps_per_update=config.steps_per_update, **({"shaping": dict(run.shaping)} if run.shaping else {}))
    return _clean(record)


DOCS = "docs/estimators/coala.md"
CLEANUP_DOCS = "docs/environments/cleanup_lite.md"


def _command(suite: str) -> str:
    """How to run the optional COALA suite ``suite`` into the claims report's folder."""
    return f"cocoa bench {suite} --out OUT/{suite} (OUT: the claims report's folder)"


def _sizes(suite: str, setting: str) -> str:
    """The meta-batch, sizes and averaging window of the ``setting`` runs of the COALA suite ``suite``."""
    run = next(r for r in runs_of(suite) if r.setting == setting)
    T, M, B = run.sizes
    return f"meta-batch {run.meta_batch} per agent, T {T} M {M} B {B}, the last {run.log_every} updates"


def claims(records: list[dict], suite: str | None = None) -> list[dict]:
    """The paper's claims against the records (``claim_table`` rows: pass / fail / not run); only
    those the COALA suite named ``suite`` runs, if given (every claim of the paper by default)."""
    by = {(r.get("env", IPD), r["setting"], r["policy"], r["rule"], r["p_naive"], r.get("start", "defect")): r
          for r in records}

    def get(setting, rule, p, policy="tabular", env=IPD, start="defect"):
        if (env, setting, policy, rule, p, start) not in by:
            where = "" if start == "defect" else f" from {start}"
            raise Missing(f"no {env} {setting} {policy} {rule} run at p_naive {p:g}{where}")
        return by[(env, setting, policy, rule, p, start)]

    def shaping(policy):
        def measure():
            c, m, u = (get("shaping", r, 1.0, policy) for r in RULES)
            text = (f"COALA meta {_value(c, 'meta_reward')}, naive {_value(c, 'naive_reward')}; "
                    f"M-FOS meta {_value(m, 'meta_reward')}; batch-unaware meta {_value(u, 'meta_reward')}"
                    f" ({len(c['seeds'])} seed(s), {c['updates']:,} updates)")
            best_other = max(m["meta_reward"], u["meta_reward"])
            return text, c["meta_reward"] > 1 > c["naive_reward"] and c["meta_reward"] > best_other + 0.3
        return measure

    def mixed(policy):
        def measure():
            c, m, u = (get("mixed", r, 0.75, policy) for r in RULES)
            text = (f"meta-vs-meta: COALA {_value(c, 'meta_vs_meta_reward')}, M-FOS {_value(m, 'meta_vs_meta_reward')}, "
                    f"batch-unaware {_value(u, 'meta_vs_meta_reward')} ({len(c['seeds'])} seed(s), {c['updates']:,} updates)")
            others = max(m["meta_vs_meta_reward"], u["meta_vs_meta_reward"])
            return text, c["meta_vs_meta_reward"] > 0.8 and others < 0.3
        return measure

    def mixed_tabular():
        c = get("mixed", "coala", 0.75, "tabular")
        late = c.get("meta_vs_meta_cooperation") or []
        text = (f"meta-vs-meta {_value(c, 'meta_vs_meta_reward')}; cooperation per inner episode "
                f"{' '.join('–' if x is None else f'{x:.2f}' for x in late)} ({len(c['seeds'])} seed(s), "
                f"{c['updates']:,} updates)")
        return text, c["meta_vs_meta_reward"] > 0.8

    def no_naive():
        c = get("mixed", "coala", 0.0, "memory-1")
        return f"meta-vs-meta {_value(c, 'meta_vs_meta_reward')}", c["meta_vs_meta_reward"] < 0.3

    def analytic_shaping():
        c = get("shaping", "coala", 1.0, "analytic memory-1")
        return f"meta {c['meta_reward']:.3f}, naive {c['naive_reward']:.3f} (exact)", c["meta_reward"] > 1 > c["naive_reward"]

    def analytic_mixed():
        low, high, alone = (get("mixed", "coala", p, "analytic memory-1") for p in (0.25, 0.75, 0.0))
        text = (f"meta-vs-meta from unconditional defection: {_value(low, 'meta_vs_meta_reward')} at p_naive 0.25, "
                f"{_value(high, 'meta_vs_meta_reward')} at 0.75, {_value(alone, 'meta_vs_meta_reward')} without "
                f"naive learners (exact gradients, {len(low['seeds'])} seed(s), {low['updates']:,} updates)")
        return text, low["meta_vs_meta_reward"] > 0.8 and alone["meta_vs_meta_reward"] < 0.3

    def analytic_tit_for_tat():
        c = get("mixed", "coala", 0.75, "analytic memory-1", start="tit-for-tat")
        moved = max(float(np.max(np.abs(np.asarray(p) - ANALYTIC_STARTS["tit-for-tat"])))
                    for p in c["cooperation_probabilities"])
        text = (f"meta-vs-meta {_value(c, 'meta_vs_meta_reward')}; the policy moved up to {moved:.2f} in "
                f"probability from tit-for-tat (p(C) after start, CC, CD, DC, DD, seed 0: "
                f"{', '.join(f'{p:.2f}' for p in c['cooperation_probabilities'][0])})")
        return text, c["meta_vs_meta_reward"] > 0.8 and moved > 0.1

    def cleanup_shaping(policy):
        c, m, u = (get("shaping", r, 1.0, policy, CLEANUP) for r in RULES)
        text = (f"COALA meta {_value(c, 'meta_reward')}, naive {_value(c, 'naive_reward')}; "
                f"M-FOS meta {_value(m, 'meta_reward')}; batch-unaware meta {_value(u, 'meta_reward')}"
                f" ({len(c['seeds'])} seed(s), {c['updates']:,} updates of {c['steps_per_update']:,} steps)")
        return text, c["meta_reward"] > c["naive_reward"] and c["meta_reward"] > max(m["meta_reward"], u["meta_reward"])

    def cleanup_mixed(policy):
        c, m, u = (get("mixed", r, 0.75, policy, CLEANUP) for r in RULES)
        text = (f"meta-vs-meta: COALA {_value(c, 'meta_vs_meta_reward')}, M-FOS {_value(m, 'meta_vs_meta_reward')}, "
                f"batch-unaware {_value(u, 'meta_vs_meta_reward')}; time on the river in meta-vs-meta games, "
                f"last inner episode: COALA {_last(c)}, M-FOS {_last(m)}, batch-unaware {_last(u)} "
                f"({len(c['seeds'])} seed(s), {c['updates']:,} updates of {c['steps_per_update']:,} steps)")
        others = max(m["meta_vs_meta_reward"], u["meta_vs_meta_reward"])
        return text, c["meta_vs_meta_reward"] > 1.1 * others

    ipd = "Sec. 5, the iterated prisoner's dilemma"
    analytic = "Sec. 4.2, Fig. 3, the analytic iterated prisoner's dilemma"
    analytic_setting = ("exact gradients, gamma 0.999, naive learners from uniformly random memory-1 policies, "
                        "AdamW 0.005")
    sampled = "T 10 M 20 B 16, mean ± s.e. over seeds of the last 100 updates"
    memory_one = f"memory-1 meta agents (5 logits, the same in every inner episode), {sampled}"
    tabular = f"tabular meta agents (5 logits per inner episode), {sampled}"
    command = "cocoa bench coala --out results/coala"
    sequence = {  # suite -> (its policy, how it is described)
        SEQUENCE_NAME: ("gru", "GRU", "GRU meta agents (width 32)"),
        HAWK_NAME: ("hawk", "Hawk", "Hawk meta agents (one residual RG-LRU block, width 32; PPO)")}
    cleanup = ("CPU scale: GRU meta agents (width 32) with a learned critic against A2C network naive learners, "
               "T 64 M 4 B 4, meta-batch 4, the last 50 updates; the paper's runs are accelerator-scale, about 10^8 "
               "environment steps per update")
    cleanup_paper = ("the paper's scale (App. B.4): Hawk meta agents (width 32) with a learned critic against A2C "
                     "network naive learners; shaping T 64 M 100 B 32, mixed pools T 64 M 5 B 64, 512 co-players per "
                     "agent and update; the last 100 (shaping) and 1,000 (mixed) updates")
    table = [  # (the suite that runs the claim, its row)
        (NAME, row(
            "COALA extorts naive learners (meta above 1, naive below 1) where M-FOS and batch-unaware get far less",
            COALA_PAPER, ipd, f"shaping, {memory_one}", "COALA meta > 1 > naive, and > the others + 0.3", DOCS,
            shaping("memory-1"), command)),
        (NAME, row(
            "In a mixed pool (p_naive 0.75) COALA agents cooperate with each other; M-FOS and batch-unaware defect",
            COALA_PAPER, ipd, f"mixed pool of 4, {memory_one}", "COALA > 0.8, the others < 0.3", DOCS,
            mixed("memory-1"), command)),
        (NAME, row(
            "The same COALA pool with tabular meta agents, which can play each inner episode otherwise, cooperates",
            COALA_PAPER, ipd, f"mixed pool of 4, p_naive 0.75, {tabular}", "> 0.8", DOCS, mixed_tabular, command)),
        (NAME, row(
            "A pool without naive learners defects", COALA_PAPER, ipd, f"mixed pool of 4, p_naive 0, {memory_one}",
            "< 0.3", DOCS, no_naive, command)),
        (NAME, row(
            "Analytic IPD: exact shaping from all-defect escapes to extortion", COALA_PAPER, analytic,
            f"analytic IPD, memory-1 meta agent, {analytic_setting}", "meta > 1 > naive", DOCS, analytic_shaping,
            command)),
        (NAME, row(
            "Analytic IPD: cooperation emerges in a mixed pool, even from unconditional defection, but not in a "
            "pool of meta agents only", COALA_PAPER, f"{analytic}; App. C.1, Fig. 9",
            f"analytic IPD, memory-1 pools of 2, {analytic_setting}", "> 0.8 at p_naive 0.25, < 0.3 at 0", DOCS,
            analytic_mixed, command)),
        (NAME, row(
            "Analytic IPD: tit-for-tat is not an equilibrium of the mixed pool, yet the pool it moves to still "
            "cooperates", COALA_PAPER, "App. C.1, Fig. 10",
            f"analytic IPD, memory-1 pool of 2 from tit-for-tat, p_naive 0.75, {analytic_setting}",
            "meta-vs-meta > 0.8, a probability moved > 0.1", DOCS, analytic_tit_for_tat, command)),
        *[(suite, claim) for suite, (policy, label, agents) in sequence.items() for claim in (
            row(f"With sequence policies ({label}) COALA extorts naive learners where M-FOS and batch-unaware get "
                "far less", COALA_PAPER, ipd, f"shaping, {agents}, {_sizes(suite, 'shaping')}",
                "COALA meta > 1 > naive, and > the others + 0.3", DOCS, shaping(policy), _command(suite)),
            row(f"With sequence policies ({label}) mixed pools of COALA agents cooperate; M-FOS and batch-unaware "
                "defect", COALA_PAPER, ipd, f"mixed pool of 4, p_naive 0.75, {agents}, {_sizes(suite, 'mixed')}",
                "COALA > 0.8, the others < 0.3", DOCS, mixed(policy), _command(suite)))],
        *[(suite, claim) for suite, where, policy, pool, setting in (
            (CLEANUP_NAME, "On CleanUp-lite", "gru", 4, cleanup),
            (CLEANUP_PAPER_NAME, "On CleanUp-lite at the paper's scale,", "hawk", 3, cleanup_paper)) for claim in (
            row(f"{where} COALA shapes naive learners to its own advantage, more than M-FOS and batch-unaware",
                COALA_PAPER, "Sec. 5, CleanUp", f"shaping, {setting}", "COALA meta > naive, and > the others' meta",
                CLEANUP_DOCS, functools.partial(cleanup_shaping, policy), _command(suite)),
            row(f"{where} mixed pools of COALA agents cooperate; M-FOS and batch-unaware get less from each "
                "other", COALA_PAPER, "Sec. 5, CleanUp", f"mixed pool of {pool}, p_naive 0.75, {setting}",
                "COALA meta-vs-meta > 1.1 x the others'", CLEANUP_DOCS, functools.partial(cleanup_mixed, policy),
                _command(suite)))],
    ]
    return [r for name, r in table if suite is None or name == suite]


# Per env: the report's title, the figures' short name and what "cooperation" measures there.
ENV_LABELS = {IPD: ("the iterated prisoner's dilemma", "IPD", "P(cooperate)"),
              CLEANUP: ("CleanUp-lite", "CleanUp-lite", "fraction of steps on the river")}


def _env(records: list[dict]) -> str:
    envs = {r.get("env", IPD) for r in records}
    if len(envs) > 1:
        raise ValueError(f"a COALA report covers one env; these records mix {sorted(envs)}")
    return envs.pop() if envs else IPD


def _figures(records: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sampled = [r for r in records if not r["exact"]]
    several = len({r["policy"] for r in sampled}) > 1
    policies = "/".join(sorted({r["policy"] for r in sampled}))

    def name(r):  # the legend's name of a run: its rule, and its policy where the policies differ
        return f"{r['policy']} {r['rule']}" if several else r["rule"]

    seeds = sorted({len(r["seeds"]) for r in sampled})
    seeds = "/".join(map(str, seeds)) + (" seed" if seeds == [1] else " seeds") + ", mean"
    env = _env(records)
    _, short, cooperation = ENV_LABELS[env]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in sampled:
        if r["setting"] == "shaping":
            axes[0].plot(r["update"], r["meta_reward_curve"], label=f"{name(r)} meta")
            axes[0].plot(r["update"], r["naive_reward_curve"], "--", label=f"{name(r)} naive")
        elif r["p_naive"] > 0:
            axes[1].plot(r["update"], r["meta_vs_meta_reward_curve"], label=f"{name(r)} meta vs meta")
    for ax, title in zip(axes, ("Shaping naive learners", "Mixed pool, p_naive 0.75")):
        ax.set(xlabel="meta update", ylabel="reward per step", title=f"{short}, {policies} meta agents\n{title} ({seeds})")
        if env == IPD:  # mutual cooperation's reward
            ax.axhline(1.0, color="grey", lw=0.5)
        if ax.get_legend_handles_labels()[0]:  # a suite without mixed (or shaping) runs leaves a panel empty
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in sampled:
        if r["setting"] == "shaping":
            episodes = np.arange(1, len(r["meta_cooperation"]) + 1)
            axes[0].plot(episodes, r["meta_cooperation"], label=f"{name(r)} meta")
            axes[0].plot(episodes, r["naive_cooperation"], "--", label=f"{name(r)} naive")
        elif r["p_naive"] > 0 and r.get("meta_vs_meta_cooperation"):
            episodes = np.arange(1, len(r["meta_vs_meta_cooperation"]) + 1)
            axes[1].plot(episodes, np.asarray(r["meta_vs_meta_cooperation"], float), label=f"{name(r)} meta vs meta")
    for ax, title in zip(axes, ("shaping", "mixed pools, meta vs meta")):
        ax.set(xlabel="inner episode of the meta-trajectory", ylabel=cooperation, title=f"{short} {title} ({seeds})")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Cooperation within a meta-trajectory, the last block of updates")
    fig.tight_layout()
    fig.savefig(out / "cooperation.png", dpi=110)
    plt.close(fig)
    return ["curves.png", "cooperation.png"]


def _last(record, name="meta_vs_meta_cooperation"):
    values = record.get(name) or [None]
    return "–" if values[-1] is None else f"{values[-1]:.3f}"


def _value(record, name):
    value = record.get(name)
    if value is None:
        return "–"
    se = record.get(name + "_se")
    return f"{value:.3f}" + (f" ± {se:.3f}" if se is not None else "")


def write_report(records: list[dict], out: Path, failed: dict[str, str] | None = None,
                 suite: str | None = None) -> Path:
    rows = claims(records, suite)
    atomic_write(out / "results.json", json.dumps(records, indent=1))
    atomic_write(out / "claims.json", json.dumps(rows, indent=1))
    figures = _figures(records, out)
    env = _env(records)
    blocks = sorted({r["update"][-1] - r["update"][-2] if len(r.get("update") or []) > 1 else r["updates"]
                     for r in records if not r["exact"]})
    lines = [f"# COALA-PG on {ENV_LABELS[env][0]}", "",
             "Meulemans et al., ICLR 2025, arXiv 2410.18636. Rewards per step over each run's last block of updates "
             f"(the sampled runs: {'/'.join(map(str, blocks))} updates), mean ± standard error over seeds; analytic "
             f"rows are exact. See {DOCS}" + (f" and {CLEANUP_DOCS}." if env == CLEANUP else "."), "",
             "| setting | policy | rule | p_naive | seeds | meta vs naive | naive | meta vs meta |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        policy = r["policy"] + (f", from {r['start']}" if r.get("start") else "")
        lines.append(f"| {r['setting']} | {policy} | {r['rule']} | {r['p_naive']:g} | {len(r['seeds'])} | "
                     f"{_value(r, 'meta_reward')} | {_value(r, 'naive_reward')} | {_value(r, 'meta_vs_meta_reward')} |")
    lines += ["", "## Claims", "", *markdown(rows, out)]
    if failed:
        lines += ["", f"**{len(failed)} run(s) failed** (tracebacks in `runs/NAME.error.txt`; re-run to retry):", ""]
        lines += [f"- `{name}`: {why}" for name, why in failed.items()]
    lines += ["", *[f"![{name}]({name})" for name in figures], ""]
    atomic_write(out / "report.md", "\n".join(lines))
    return out / "report.md"


def _record_path(out_dir, run: CoalaRun) -> Path:
    config = dataclasses.asdict(run)
    if not run.shaping:  # a run without extra settings keeps the name it had before CoalaRun could hold them
        del config["shaping"]
    return Path(out_dir) / "runs" / f"{run.name}-{digest(config)}.json"


def _error_path(out_dir, run: CoalaRun) -> Path:
    return _record_path(out_dir, run).with_suffix(".error.txt")


def run_suite(out_dir, runs: list[CoalaRun] | None = None, *, progress: bool = True, backend=None,
              suite: str = NAME) -> Path:
    """Run every run not finished yet (``DIR/runs/NAME-DIGEST.json``, the digest of the run's
    configuration) on ``backend`` (this process by default), then write the report, with the claims
    of ``suite``. A failed run leaves ``DIR/runs/NAME-DIGEST.error.txt`` and the others go on."""
    out = Path(out_dir)
    runs = runs_of(suite) if runs is None else runs
    backend = backend or backends.LocalBackend()
    pending = [run for run in runs if not _record_path(out, run).exists()]
    with contextlib.closing(backend.map(run_one, pending, progress=progress)) as outcomes:
        for index, outcome in outcomes:
            run = pending[index]
            if isinstance(outcome, backends.RunFailure):
                atomic_write(_error_path(out, run), outcome.message + "\n\n" + outcome.details)
            else:
                atomic_write(_record_path(out, run), json.dumps(outcome))
                _error_path(out, run).unlink(missing_ok=True)
    return write_report(finished_records(out, runs), out, failures(out, runs), suite)


def finished_records(out_dir, runs: list[CoalaRun] | None = None) -> list[dict]:
    """The records of the runs (the suite's by default) that have finished, in the runs' order."""
    runs = default_runs() if runs is None else runs
    return [json.loads(_record_path(out_dir, run).read_text()) for run in runs if _record_path(out_dir, run).exists()]


def failures(out_dir, runs: list[CoalaRun] | None = None) -> dict[str, str]:
    """name -> why, for every run that failed and has not finished since."""
    runs = default_runs() if runs is None else runs
    return {run.name: _error_path(out_dir, run).read_text().splitlines()[0] for run in runs
            if not _record_path(out_dir, run).exists() and _error_path(out_dir, run).exists()}
