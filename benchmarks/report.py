"""The benchmark report: ``report.md`` with learning-curve plots, ``results.csv`` and ``results.json``."""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

import numpy as np

from cocoa import envs
from cocoa.benchmarks import cocoa_claims, records
from cocoa.benchmarks.claim_table import Missing, markdown
from cocoa.benchmarks.run_stats import mean_and_error, per_seed_at, reach_and_hold, training_means
from cocoa.benchmarks.suites import RunSpec, Suite

CURVES_FILE = "learning_curves.png"


def _metrics(runs) -> list[str]:
    """The metrics every run reports: its environments' declared ones (``metric_names``), then the return."""
    declared = [name for spec, _ in runs for name in envs.metric_names(spec.env)]
    return [m for m in dict.fromkeys([*declared, "return"]) if runs and all(m in rows[0] for _, rows in runs)]


def _words(metric: str) -> str:
    return metric.replace("_", " ")


def _label(spec: RunSpec) -> str:
    if spec.label:
        return spec.label
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.env_params.items()))
    return f"{spec.agent} ({params})" if params else spec.agent


def _reach_cells(rows: list[dict], metric: str) -> list[str]:
    stats = reach_and_hold(rows, metric)
    firsts = [first for first, _ in stats.values() if first is not None]
    median = f"{int(np.median(firsts)):,}" if firsts else "-"
    return [f"{len(firsts)}/{len(stats)}", median, str(sum(collapsed for _, collapsed in stats.values()))]


def _summary_sentences(runs, metric: str) -> list[str]:
    """In words, per environment setting: the runs ranked by their final ``metric``, with the seed spread."""
    groups: dict[str, list] = {}
    for spec, rows in runs:
        groups.setdefault(json.dumps(spec.env_params, sort_keys=True), []).append((spec, rows))
    lines = ["## In words", ""]
    for params, members in groups.items():
        ranked = []
        for spec, rows in members:
            last = max(row["update"] for row in rows)
            finals = [r[metric] for r in rows if r["update"] == last]
            mean, error = mean_and_error(finals)
            during, _ = mean_and_error(training_means(rows, metric))
            ranked.append((mean, during, error, spec.label or spec.agent, min(finals), max(finals), len(finals)))
        ranked.sort(reverse=True)
        parts = [f"{name} {mean:.2f} ± {error:.2f} (seeds {low:.2f}–{high:.2f}; {during:.2f} averaged over training)"
                 for mean, during, error, name, low, high, _ in ranked]
        best_during = max(ranked, key=lambda item: item[1])
        lines.append(f"- `{params}`: final {_words(metric)}, best first: " + "; ".join(parts) + ". "
                     f"Averaged over the whole of training, {best_during[3]} has the highest {_words(metric)} "
                     f"({best_during[1]:.2f}).")
    return lines + [""]


def _curves(rows: list[dict], metric: str):
    """Episodes (E,), mean (E,) and standard error (E,) over seeds of ``metric``."""
    episodes = sorted({row["episodes"] for row in rows})
    stats = [mean_and_error([r[metric] for r in rows if r["episodes"] == e]) for e in episodes]
    means, errors = (np.array(x) for x in zip(*stats))
    return np.array(episodes), means, errors


def credit_table(title: str, matrix: np.ndarray) -> str:
    """A context credit matrix as a markdown table under ``title``."""
    size = matrix.shape[0]
    lines = [title, "", "| query \\ answer | " + " | ".join(f"context {j}" for j in range(size)) + " |",
             "|---|" + "---|" * size]
    lines += [f"| context {i} | " + " | ".join(f"{value:.3f}" for value in row) + " |" for i, row in enumerate(matrix)]
    return "\n".join(lines)


def plot_learning_curves(runs: list[tuple[RunSpec, list[dict]]], metrics: list[str], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    for axis, metric in zip(axes[0], metrics):
        for index, (spec, rows) in enumerate(runs):
            episodes, means, errors = _curves(rows, metric)
            colour = colours(index % colours.N)
            axis.plot(episodes, means, label=_label(spec), color=colour)
            axis.fill_between(episodes, means - errors, means + errors, alpha=0.2, color=colour)
        axis.set_xlabel("training episodes")
        axis.set_title(metric.replace("_", " "))
        axis.grid(alpha=0.3)
    env_names = ", ".join(sorted({spec.env for spec, _ in runs}))
    seeds = "/".join(str(s) for s in sorted({spec.train.seeds for spec, _ in runs}))
    agents = ", ".join(dict.fromkeys(spec.label or spec.agent for spec, _ in runs))
    figure.suptitle(f"{env_names}: {agents}; mean over {seeds} seeds; band: one standard error", fontsize=9, wrap=True)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(runs), 5), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.04 + 0.05 * ((len(runs) + 4) // 5), 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _varied_parameter(runs) -> str | None:
    """The one numeric environment parameter that differs between runs of a single environment, if any."""
    if len({spec.env for spec, _ in runs}) != 1:
        return None
    keys = {k for spec, _ in runs for k in spec.env_params}
    varied = [k for k in sorted(keys) if len({json.dumps(spec.env_params.get(k)) for spec, _ in runs}) > 1]
    if len(varied) != 1 or not all(isinstance(spec.env_params.get(varied[0]), (int, float)) for spec, _ in runs):
        return None
    return varied[0]


def against_file(metric: str, parameter: str) -> str:
    return f"{metric}_vs_{parameter}.png"


def plot_final_against(runs: list[tuple[RunSpec, list[dict]]], path: Path, metric: str, parameter: str):
    """Final and training-averaged ``metric`` (mean ± standard error over seeds) against the environment
    parameter the suite varies, a line per run label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    final: dict[str, list] = {}
    during: dict[str, list] = {}
    for spec, rows in runs:
        last = max(row["update"] for row in rows)
        value = spec.env_params[parameter]
        final.setdefault(spec.label or spec.agent, []).append(
            (value, *mean_and_error([r[metric] for r in rows if r["update"] == last])))
        during.setdefault(spec.label or spec.agent, []).append((value, *mean_and_error(training_means(rows, metric))))
    seeds = "/".join(str(s) for s in sorted({spec.train.seeds for spec, _ in runs}))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, lines, what in ((axes[0], final, "final"), (axes[1], during, "mean over training of the")):
        for name, points in lines.items():
            lengths, means, errors = (np.array(x) for x in zip(*sorted(points)))
            axis.plot(lengths, means, marker="o", label=name)
            axis.fill_between(lengths, means - errors, means + errors, alpha=0.2)
        axis.set_xlabel(_words(parameter))
        axis.set_ylabel(f"{what} {_words(metric)}")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{runs[0][0].env}: {', '.join(final)}; {seeds} seeds per point; band: one standard error over "
                    "seeds", fontsize=9, wrap=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def shadow_table(rows: list[dict], shadow: list[dict], lead: str | None) -> list[str]:
    """The shadow estimators' gradient quality along one run: each one's SNR, bias and variance in dB
    aggregated over training (binned by ``lead``, the headline metric, as the COCOA paper's figures
    are; a plain mean over evaluations without one), and beside them the un-normalised figures at
    the first and last evaluation (mean over seeds), which the normalisation by ‖g*‖² hides."""
    first, last = min(r["update"] for r in shadow), max(r["update"] for r in shadow)
    how = (f"binned into 10 equal-width bins of the {_words(lead)} and averaged per bin and seed" if lead
           else "averaged over the evaluations and seeds")
    lines = [f"Each shadow's SNR, bias and variance in dB over training ({how}; mean ± standard error over those "
             f"cells; non-finite values left out), then ‖g*‖, the MSE, the variance and the squared bias "
             f"un-normalised at updates {first:,} and {last:,} (mean over seeds).", "",
             "| shadow | SNR dB | bias dB | variance dB | ‖g*‖ | MSE | variance | squared bias |", "|---|---|---|---|---|---|---|---|"]

    def aggregate(agent, metric):
        if lead:
            try:
                values = cocoa_claims.progress_binned(rows, shadow, agent, metric, progress=lead)
            except Missing:
                return "-inf" if metric == "bias_db" else "-"
        else:
            values = [r[metric] for r in shadow if r["agent"] == agent and np.isfinite(r[metric])]
            if not values:
                return "-"
        return "{:.1f} ± {:.1f}".format(*mean_and_error(values))

    def at_ends(agent, key):
        means = [np.mean([r[key] for r in shadow if r["agent"] == agent and r["update"] == u]) for u in (first, last)]
        return " -> ".join(f"{m:.3g}" for m in means)

    for agent in dict.fromkeys(r["agent"] for r in shadow):
        lines.append(f"| {agent} | " + " | ".join(
            [aggregate(agent, m) for m in ("snr_db", "bias_db", "variance_db")]
            + [at_ends(agent, k) for k in ("true_gradient_norm", "mean_squared_error", "variance_unnormalised",
                                           "squared_bias")]) + " |")
    return lines


def write_report(suite: Suite, out_dir: str | Path) -> Path:
    """Writes the report of every finished run of ``suite`` in ``out_dir``; returns report.md's path."""
    out_dir = Path(out_dir)
    runs, summaries, missing = [], [], []
    for spec in suite.runs:
        folder = out_dir / "runs" / spec.run_id
        summary = records.load_summary(folder)
        if summary is None:
            missing.append(spec)
            continue
        runs.append((spec, records.load_metrics(folder)))
        summaries.append({"run_id": spec.run_id, **summary})
    metrics = _metrics(runs)
    lead = metrics[0] if metrics and metrics[0] != "return" else None  # the environment's headline metric

    table_rows = []
    for (spec, rows), summary in zip(runs, summaries):
        last = max(row["update"] for row in rows)
        final = [row for row in rows if row["update"] == last]
        cells = [f"{m:.3f} ± {e:.3f}" for m, e in (mean_and_error([r[k] for r in final]) for k in metrics)]
        reach = ([*_reach_cells(rows, lead), "{:.3f} ± {:.3f}".format(*mean_and_error(training_means(rows, lead)))]
                 if lead else [])
        table_rows.append([spec.label or spec.agent, spec.env, json.dumps(spec.env_params), str(spec.train.seeds), str(last),
                           *cells, *reach, f"{summary['env_steps_per_second']:,.0f}", f"{summary['wall_seconds']:.1f}"])

    all_rows = [{"run_id": spec.run_id, "env": spec.env, "agent": spec.agent,
                 **{f"env_{k}": v for k, v in spec.env_params.items()}, **row} for spec, rows in runs for row in rows]
    records.atomic_write(out_dir / "results.json", json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    leading = ["run_id", "env", "agent", *(f"env_{k}" for spec, _ in runs for k in spec.env_params),
               "update", "seed", "episodes", "return"]
    records.atomic_write(out_dir / "results.csv", records.csv_text(all_rows, list(dict.fromkeys(leading))))
    if runs and metrics:
        plot_learning_curves(runs, metrics, out_dir / CURVES_FILE)
    parameter = _varied_parameter(runs) if lead else None
    if parameter:
        plot_final_against(runs, out_dir / against_file(lead, parameter), lead, parameter)

    reach_header = (["seeds reaching 0.9", "median first update >= 0.9", "collapses", f"{lead} during training"]
                    if lead else [])
    summary_text = _summary_sentences(runs, lead) if lead else []
    own = {}  # a suite mixing environments: each environment's own headline metric, in words and a column
    if not lead:
        sentences = []
        for env in dict.fromkeys(spec.env for spec, _ in runs):
            if envs.metric_names(env):
                own[env] = envs.metric_names(env)[0]
                members = [(spec, rows) for spec, rows in runs if spec.env == env]
                sentences += [line.replace("- `", f"- {env} `", 1)
                              for line in _summary_sentences(members, own[env]) if line.startswith("- ")]
        summary_text = ["## In words", "", *sentences, ""] if sentences else []
        for row, (spec, rows) in zip(table_rows, runs):
            final = per_seed_at(rows, own[spec.env]) if spec.env in own else None
            row.insert(-2, "{} {:.3f} ± {:.3f}".format(_words(own[spec.env]), *mean_and_error(final)) if final else "-")
    header = ["run", "env", "env params", "seeds", "updates", *metrics, *reach_header,
              *(["its own metric"] if own else []), "env-steps/s", "wall s"]
    text = [f"# cocoa benchmark report: `{suite.name}`", "", suite.description, "",
            f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} on {platform.node()} "
            f"({platform.machine()}, Python {platform.python_version()}).", "",
            *summary_text,
            "## Final performance", "",
            "Mean ± standard error over seeds at the last evaluation; evaluation uses the learned softmax "
            "policy without epsilon exploration. `env-steps/s` counts training steps over training time "
            "(compilation excluded)."
            + (f" A seed *reaches* 0.9 at its first evaluation with {_words(lead)} >= 0.9; a *collapse* is a "
               "later evaluation below 0.5; *during training* averages every evaluation of a seed (the quantity "
               "the COCOA paper plots against the distance)." if lead else ""), "",
            "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    text += ["| " + " | ".join(row) + " |" for row in table_rows]
    failed = {spec.run_id: records.load_failure(out_dir / "runs" / spec.run_id) for spec in missing}
    failed = {run_id: why for run_id, why in failed.items() if why}
    unfinished = [spec.run_id for spec in missing if spec.run_id not in failed]
    if failed:
        text += ["", f"**{len(failed)} run(s) failed** (the reason below; the traceback in "
                 "`runs/<run_id>/error.txt`; re-run the same command to retry them):", ""]
        text += [f"- `{run_id}`: {why}" for run_id, why in failed.items()]
    if unfinished:
        text += ["", f"**{len(unfinished)} run(s) not finished yet** (re-run the same command to resume): "
                 + ", ".join(unfinished)]
    if runs and metrics:
        text += ["", "## Learning curves", "", f"![learning curves]({CURVES_FILE})"]
    if parameter:
        text += ["", f"## Final {_words(lead)} against {_words(parameter)}", "",
                 f"![{_words(lead)} against {_words(parameter)}]({against_file(lead, parameter)})"]
    for spec, _ in runs:
        path = out_dir / "runs" / spec.run_id / records.CREDIT_MATRIX_FILE
        if path.is_file():
            matrices = json.loads(path.read_text())
            text += ["", f"## Context credit matrix: {_label(spec)} on {spec.env}", "",
                     "Mean |w - 1| from query steps of context i (rows) to rewarded answers of context j (columns), "
                     "seed 0's final policy: the learned model's coefficients, then the oracle's at that policy. "
                     "Disentangled credit is large on the diagonal and 0 off it.", "",
                     credit_table("learned:", np.asarray(matrices["learned"])), "",
                     credit_table("oracle:", np.asarray(matrices["exact"]))]
    shadows = [(spec, rows, records.load_shadow(out_dir / "runs" / spec.run_id)) for spec, rows in runs]
    for spec, rows, shadow_rows in shadows:
        if shadow_rows:
            text += ["", f"## Shadow estimators: {_label(spec)} on {spec.env}", "", *shadow_table(rows, shadow_rows, lead),
                     "", f"![shadow estimators' bias, variance and SNR along training](runs/{spec.run_id}/"
                     f"{records.SHADOW_PLOT_FILE})"]
    shadow = cocoa_claims.shadow_index(shadows)
    claim_rows = [r for r in cocoa_claims.key_to_door_rows(cocoa_claims.key_to_door_index(runs))
                  + cocoa_claims.shadow_rows(shadow)
                  if r["status"] != "not run"]  # the COCOA paper's claims this suite's runs touch
    if claim_rows:
        records.atomic_write(out_dir / "claims.json", json.dumps(claim_rows, indent=1))
        text += ["", "## Claims", "", "The COCOA paper's claims that these runs check (all of them: "
                 "`cocoa bench claims`):", "", *markdown(claim_rows, out_dir)]
    text += ["", "## Files", "",
             "- `results.csv`: every evaluation of every seed of every run.",
             "- `results.json`: each run's configuration, final means and timings.",
             "- `runs/<run_id>/`: each run's `metrics.csv` and `summary.json` (and, with shadow estimators, "
             "`shadow.csv` and `shadow.png`).", ""]
    report = out_dir / "report.md"
    records.atomic_write(report, "\n".join(text))
    return report
