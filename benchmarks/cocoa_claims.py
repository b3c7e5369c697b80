"""The COCOA paper's claims (Meulemans et al., NeurIPS 2023, arXiv 2306.16803) as rows of
``claim_table``: key-to-door from training runs, the tree from exact gradient variances.

Key-to-door claims read ``runs``: {(agent, length): evaluation rows} of linear key-to-door runs
(the rows of ``metrics.csv``: update, seed, treasure_rate, ...); the shadow-training claims one
shadow run's evaluation rows and its ``shadow.csv`` rows. The tree claims read the records of
``tree_records`` (``cocoa.gradients.analyse`` at each overlap, exact by enumeration).
"""

from __future__ import annotations

import numpy as np

from cocoa.benchmarks.claim_table import COCOA_PAPER, Missing, row
from cocoa.benchmarks.run_stats import mean_and_error, per_seed_at, reach_and_hold, training_means

KEY_TO_DOOR_DOCS = "docs/benchmarks/index.md"
TREE_DOCS = "docs/environments/tree.md"
TREE_AGENTS = ("reinforce", "advantage-gt", "hca-state-gt", "cocoa-reward-gt", "q-critic-gt")
TREE_OVERLAPS = tuple(range(7))  # 0 .. the branching factor 6
_METRIC = "treasure_rate"
# The commands that run the rows "not run" here, into the folders ``cocoa bench claims --out OUT`` reads.
_PAPER_SWEEP = "cocoa bench key-to-door-paper --out OUT/key-to-door (OUT: the claims report's folder)"
_SHADOW = "cocoa bench shadow-key-to-door --out OUT/shadow-key-to-door (OUT: the claims report's folder)"
SHADOW_DOCS = "docs/benchmarks/index.md"
# The paper's sweep's baselines, each claimed to fall off with the distance.
SWEEP_BASELINES = ("reinforce", "advantage", "q-critic", "trajcv", "hca-state")
SHADOW_AGENTS = ("reinforce", "advantage", "q-critic", "hca-state", "cocoa-reward")
_NAMES = {"reinforce": "REINFORCE", "advantage": "Advantage", "q-critic": "Q-critic", "trajcv": "TrajCV",
          "hca-state": "HCA-state", "cocoa-reward": "COCOA-reward", "cocoa-feature": "COCOA-feature"}


def key_to_door_index(runs) -> dict:
    """{(agent, length): rows} of the plain linear key-to-door runs among ``runs``, pairs of (RunSpec,
    evaluation rows): unlabelled (not an ablation variant) and with only the length set."""
    return {(spec.agent, spec.env_params["length"]): rows for spec, rows in runs
            if spec.env == "LinearKeyToDoor-v0" and not spec.label and set(spec.env_params) == {"length"}}


def tree_records(overlap: int, progress: bool = False) -> list[dict]:
    """The exact gradient quality of ``TREE_AGENTS`` (oracle models) on the tree with this overlap,
    at the shared initial policy (seed 0), every trajectory enumerated."""
    from cocoa.gradients import analyse

    return analyse("Tree-v0", TREE_AGENTS, env_params={"overlap": int(overlap)}, model_updates=0, seed=0,
                   progress=progress)


def _rows(runs, agent, length):
    if (agent, length) not in runs:
        raise Missing(f"no {agent} run at L = {length}")
    return runs[(agent, length)]


def _stat(values) -> str:
    mean, error = mean_and_error(values)
    return f"{mean:.2f} ± {error:.2f} ({len(values)} seeds)"


def key_to_door_rows(runs: dict) -> list[dict]:
    def early():
        values = per_seed_at(_rows(runs, "cocoa-reward", 23), _METRIC, 2000)
        return f"treasure rate at update 2,000: {_stat(values)}", mean_and_error(values)[0] >= 0.8

    def holds(agent):
        def measure():
            rows = _rows(runs, agent, 103)
            final = per_seed_at(rows, _METRIC)
            collapses = sum(collapsed for _, collapsed in reach_and_hold(rows, _METRIC).values())
            last = max(r["update"] for r in rows)
            return (f"final (update {last:,}) {_stat(final)}; {collapses} seed(s) collapsed",
                    mean_and_error(final)[0] >= 0.8 and collapses == 0)
        return measure

    def falls_off(agent):
        # The paper's figure plots, against L, the rate averaged over every evaluation of training; its
        # own code's Advantage ends above 0.9 at L = 103 in 4 of 6 seeds yet averages 0.22 there
        # (docs/benchmarks/index.md), so "falls off" is read on that metric: the average drops from L = 23.
        def measure():
            short, long_ = _rows(runs, agent, 23), _rows(runs, agent, 103)
            (mean_23, error_23), (mean_103, error_103) = _training_means_over_common_updates([short, long_])
            drop, error = mean_23 - mean_103, float(np.hypot(error_23, error_103))
            final = per_seed_at(long_, _METRIC)
            return (f"over training {mean_23:.2f} ± {error_23:.2f} at L = 23, "
                    f"{mean_103:.2f} ± {error_103:.2f} at L = 103 (drop {drop:.2f} ± {error:.2f}); final at L = 103 "
                    f"{_stat(final)}", drop > 2 * error)
        return measure

    def ahead():
        lengths = sorted(length for agent, length in runs if agent == "cocoa-reward"
                         and ("reinforce", length) in runs and ("advantage", length) in runs)
        if not lengths:
            raise Missing("no distance with COCOA-reward, REINFORCE and Advantage runs")
        parts, passed = [], True
        for length in lengths:
            text, above = _above_over_training(runs, "cocoa-reward", ("advantage", "reinforce"), length)
            parts.append(f"L = {length}: {text}")
            passed &= above
        return "; ".join(parts), passed

    def both_ahead_at_103():
        missing = [a for a in ("cocoa-reward", "cocoa-feature") + SWEEP_BASELINES if (a, 103) not in runs]
        if missing:
            raise Missing("no run at L = 103 of " + ", ".join(missing))
        parts = [_above_over_training(runs, agent, SWEEP_BASELINES, 103) for agent in ("cocoa-reward", "cocoa-feature")]
        return "; ".join(text for text, _ in parts), all(above for _, above in parts)

    setting = "linear key-to-door, the paper's settings, 8 seeds"
    long = f"{setting}, L = 103, 10,000 updates"
    against_length = "Sec. 4, performance against the credit-assignment distance"
    falls_off_rows = [
        row(f"{_NAMES[agent]} falls off as the distance grows{why}", COCOA_PAPER,
            against_length + " (its metric: the rate averaged over training)", f"{setting}, L = 23 and 103, "
            "10,000 updates", "drop from L = 23 to L = 103 > 2 standard errors", KEY_TO_DOOR_DOCS, falls_off(agent),
            _PAPER_SWEEP)
        for agent, why in (("reinforce", " (learns the apples, not the key)"), ("advantage", ""),
                           ("q-critic", ""), ("trajcv", ""), ("hca-state", ""))]
    return [
        row("Learned COCOA-reward learns to collect the treasure early at a short distance", COCOA_PAPER,
            "Sec. 4, key-to-door learning curves", f"{setting}, L = 23", "mean >= 0.8 at update 2,000",
            KEY_TO_DOOR_DOCS, early, _PAPER_SWEEP),
        *(row(f"{_NAMES[agent]} keeps collecting the treasure at a long distance", COCOA_PAPER, against_length,
              long, "final mean >= 0.8, no seed back below 0.5 after first reaching 0.9", KEY_TO_DOOR_DOCS,
              holds(agent), _PAPER_SWEEP) for agent in ("cocoa-reward", "cocoa-feature")),
        *falls_off_rows,
        row("COCOA-reward collects more treasure over training than REINFORCE and Advantage", COCOA_PAPER,
            against_length + " (its metric: the rate averaged over training)",
            f"{setting}, every distance run with all three", "gap to the best baseline > 2 standard errors",
            KEY_TO_DOOR_DOCS, ahead, _PAPER_SWEEP),
        row("COCOA-reward and COCOA-feature both collect more treasure over training than every baseline at a long "
            "distance", COCOA_PAPER, against_length + " (its metric: the rate averaged over training)",
            f"{long}; baselines: " + ", ".join(_NAMES[a] for a in SWEEP_BASELINES),
            "each one's gap to the best baseline > 2 standard errors", KEY_TO_DOOR_DOCS, both_ahead_at_103,
            _PAPER_SWEEP),
    ]


def _above_over_training(runs, agent, baselines, length) -> tuple[str, bool]:
    """(text, passed): ``agent``'s treasure rate averaged over training against the best of
    ``baselines`` at ``length``, passed when the gap exceeds two standard errors."""
    present = [a for a in (agent, *baselines) if (a, length) in runs]
    means = dict(zip(present, _training_means_over_common_updates([runs[(a, length)] for a in present])))
    best = max((a for a in baselines if a in means), key=lambda a: means[a][0])
    gap = means[agent][0] - means[best][0]
    error = (means[agent][1] ** 2 + means[best][1] ** 2) ** 0.5
    return (f"{_NAMES[agent]} {means[agent][0]:.2f} vs {best} {means[best][0]:.2f} (gap {gap:.2f} ± {error:.2f})",
            gap > 2 * error)


def _training_means_over_common_updates(runs: list[list[dict]]) -> list[tuple[float, float]]:
    """(mean, standard error) over seeds of each run's treasure rate averaged over its evaluations up to
    the last update every run reached, so that a shorter run is compared over the same stretch."""
    horizon = min(max(r["update"] for r in rows) for rows in runs)
    return [mean_and_error(training_means([r for r in rows if r["update"] <= horizon], _METRIC)) for rows in runs]


def shadow_index(runs) -> list[tuple[list[dict], list[dict]]]:
    """(evaluation rows, shadow rows) of every run among ``runs`` — triples of (RunSpec, evaluation
    rows, shadow rows) — that is shadow training on linear key-to-door at L = 103 measuring the key
    decision's term, the run with the most seeds first."""
    found = [(rows, shadow) for spec, rows, shadow in runs
             if spec.env == "LinearKeyToDoor-v0" and spec.env_params.get("length") == 103 and spec.shadows
             and spec.shadow_first_step_only and shadow]
    return sorted(found, key=lambda run: -len({r["seed"] for r in run[0]}))


def progress_binned(rows: list[dict], shadow: list[dict], agent: str, metric: str, bins: int = 10,
                    progress: str = _METRIC, minus: str | None = None) -> list[float]:
    """The COCOA paper's aggregate of a gradient-quality figure along training: each of ``agent``'s
    evaluations is placed by the ``progress`` metric (the treasure rate) of the policy it measured
    into one of ``bins`` equal-width bins over the values seen; one value per (bin, seed) that has
    evaluations, their mean. Non-finite values are left out, as the paper's figure scripts drop them.

    With ``minus``, the figure is ``agent``'s less ``minus``'s at the same evaluation (both measured
    on the same policy), so a comparison's standard error is that of the paired differences."""
    rate = {(r["update"], r["seed"]): r[progress] for r in rows}

    def values(name):
        found = {(r["update"], r["seed"]): r[metric] for r in shadow
                 if r["agent"] == name and (r["update"], r["seed"]) in rate and np.isfinite(r[metric])}
        if not found:
            raise Missing(f"no {name} shadow measurement")
        return found

    figures = values(agent)
    if minus is not None:
        other = values(minus)
        figures = {k: v - other[k] for k, v in figures.items() if k in other}
        if not figures:
            raise Missing(f"no evaluation that measured both {agent} and {minus}")
    points = [(rate[k], k[1], v) for k, v in figures.items()]
    rates = np.array([p[0] for p in points])
    edges = np.linspace(rates.min(), rates.max(), bins + 1)
    cell = np.clip(np.searchsorted(edges, rates, side="right") - 1, 0, bins - 1)
    cells = {}
    for (_, seed, value), b in zip(points, cell):
        cells.setdefault((int(b), seed), []).append(value)
    return [float(np.mean(values)) for values in cells.values()]


def _seeds(run) -> int:
    return len({r["seed"] for r in run[0]})


def shadow_rows(measured: list[tuple[list[dict], list[dict]]]) -> list[dict]:
    """Claims on shadow training at L = 103 from ``shadow_index``'s runs. A row compares estimators
    within the run with the most seeds that measured them all, paired by evaluation (the same
    policy); an estimator only another run measured is compared unpaired, seeds being independent."""
    def holding(*agents):
        """The first (most seeds) run that measured every one of ``agents``, or None."""
        return next((run for run in measured if all(any(r["agent"] == a for r in run[1]) for a in agents)), None)

    def figure(agent, metric, run=None):
        run = run or holding(agent)
        if run is None:
            raise Missing(f"no {agent} shadow measurement" if measured else "no shadow-training run at L = 103")
        return mean_and_error(progress_binned(*run, agent, metric))

    def gap(agent, other, metric, run=None):
        """((agent's figure less other's, its standard error), the run it was paired in or None):
        paired within ``run`` or else the run with most seeds that has both; unpaired without one."""
        both = run or holding(agent, other)
        if both is not None:
            return mean_and_error(progress_binned(*both, agent, metric, minus=other)), both
        (a, a_error), (b, b_error) = figure(agent, metric), figure(other, metric)
        return (a - b, (a_error ** 2 + b_error ** 2) ** 0.5), None

    def highest(agent, metric, unit_text):
        def measure():
            main = holding(agent)
            value = figure(agent, metric, main)
            others = [a for a in SHADOW_AGENTS if a != agent and holding(a) is not None]
            if not others:
                raise Missing(f"no shadow measurement besides {agent}")
            figures, infinite = {}, []
            for other in others:
                in_main = any(r["agent"] == other for r in main[1])
                try:
                    figures[other] = figure(other, metric, main if in_main else None)
                except Missing:  # present but never finite: an exactly unbiased estimator's bias is -inf dB
                    infinite.append(other)
            if not figures:
                raise Missing(f"no finite {metric} besides {agent}'s")
            runner_up = max(figures, key=lambda a: figures[a][0])
            (difference, error), paired_in = gap(agent, runner_up, metric,
                                                 main if any(r["agent"] == runner_up for r in main[1]) else None)
            listed = ", ".join([f"{a} {m:.1f}" for a, (m, _) in sorted(figures.items())]
                               + [f"{a} -inf" for a in infinite])
            how = ("" if paired_in is main else ", unpaired: another run" if paired_in is None
                   else f", paired in the {_seeds(paired_in)}-seed run")
            return (f"{agent} {value[0]:.1f} ± {value[1]:.1f} {unit_text} ({_seeds(main)} seeds); {listed} "
                    f"(gap to {runner_up} {difference:.1f} ± {error:.1f}{how})", difference > 2 * error)
        return measure

    def close_variance():
        run = holding("hca-state", "reinforce")
        if run is None:
            raise Missing("no run that measured both hca-state and reinforce" if measured
                          else "no shadow-training run at L = 103")
        hca, reinforce = figure("hca-state", "variance_db", run), figure("reinforce", "variance_db", run)
        (difference, error), _ = gap("hca-state", "reinforce", "variance_db", run)
        return (f"HCA-state {hca[0]:.1f} ± {hca[1]:.1f} dB, REINFORCE {reinforce[0]:.1f} ± {reinforce[1]:.1f} dB "
                f"(difference {difference:.1f} ± {error:.1f}; {_seeds(run)} seeds)", abs(difference) <= 3.0)

    where = "Sec. 4, gradient quality along training (the key decision's term; averaged over 10 bins of the treasure rate)"
    setting = "L = 103, policy driven by Q-critic with the exact Q, the others measured along the way"
    paired = "gap to the next, paired by evaluation where one run measured both, > 2 standard errors"
    return [
        row("Shadow training at a long distance: COCOA-reward has the highest SNR of the learned estimators",
            COCOA_PAPER, where, setting, paired, SHADOW_DOCS, highest("cocoa-reward", "snr_db", "dB"), _SHADOW),
        row("Shadow training at a long distance: the learned Q-critic has the largest bias", COCOA_PAPER, where,
            setting, paired, SHADOW_DOCS, highest("q-critic", "bias_db", "dB"), _SHADOW),
        row("Shadow training at a long distance: HCA-state's variance is close to REINFORCE's", COCOA_PAPER, where,
            setting, "|difference| <= 3 dB", SHADOW_DOCS, close_variance, _SHADOW),
    ]


def tree_rows(records: list[dict]) -> list[dict]:
    """Claims on the tree from ``tree_records`` of several overlaps (exact)."""
    by = {(r["env_params"]["overlap"], r["agent"]): r["variance_db"] for r in records}

    def equal_at_zero():
        if (0, "hca-state-gt") not in by or (0, "reinforce") not in by:
            raise Missing("no overlap-0 measurement")
        gap = by[(0, "hca-state-gt")] - by[(0, "reinforce")]
        return (f"HCA-state {by[(0, 'hca-state-gt')]:.2f} dB, REINFORCE {by[(0, 'reinforce')]:.2f} dB "
                f"(exact)", abs(gap) < 0.1)

    def lowest():
        overlaps = sorted({o for o, agent in by if agent == "cocoa-reward-gt"})
        if not overlaps:
            raise Missing("no tree measurement")
        others = ("reinforce", "advantage-gt", "hca-state-gt")
        margins = [min(by[(o, a)] for a in others) - by[(o, "cocoa-reward-gt")] for o in overlaps]
        q = [by[(o, "q-critic-gt")] - by[(o, "cocoa-reward-gt")] for o in overlaps if (o, "q-critic-gt") in by]
        text = (f"COCOA's margin below the lowest of REINFORCE, Advantage, HCA-state: "
                f"{min(margins):.2f} to {max(margins):.2f} dB over overlaps {overlaps[0]}..{overlaps[-1]} (exact)")
        if q:
            text += f"; Q-critic with the exact Q is {-max(q):.1f} to {-min(q):.1f} dB below COCOA"
        return text, min(margins) > 0

    setting = "tree depth 4, branching 6, the shared initial policy, oracle models, every trajectory enumerated"
    return [
        row("Without state overlap HCA-state's gradient variance equals REINFORCE's", COCOA_PAPER,
            "Sec. 4, tree: variance against state overlap", setting + ", overlap 0", "|difference| < 0.1 dB",
            TREE_DOCS, equal_at_zero, "cocoa bench claims"),
        row("COCOA-reward has a lower gradient variance than REINFORCE, Advantage and HCA-state at every overlap",
            COCOA_PAPER, "Sec. 4, tree: variance against state overlap", setting + ", overlaps 0..6",
            "COCOA below each, at every overlap", TREE_DOCS, lowest, "cocoa bench claims"),
    ]
