"""The benchmark report: ``report.md`` with learning-curve plots, ``results.csv`` and ``results.json``."""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

import numpy as np

from cocoa.benchmarks import records
from cocoa.benchmarks.suites import RunSpec, Suite

CURVES_FILE = "learning_curves.png"
# Metrics plotted and tabulated when the runs report them, in this order.
_METRICS = ("treasure_rate", "distractor_rate", "return")


def _label(spec: RunSpec) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.env_params.items()))
    return f"{spec.agent} ({params})" if params else spec.agent


def _mean_and_error(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(error)


def _curves(rows: list[dict], metric: str):
    """Episodes (E,), mean (E,) and standard error (E,) over seeds of ``metric``."""
    episodes = sorted({row["episodes"] for row in rows})
    stats = [_mean_and_error([r[metric] for r in rows if r["episodes"] == e]) for e in episodes]
    means, errors = (np.array(x) for x in zip(*stats))
    return np.array(episodes), means, errors


def plot_learning_curves(runs: list[tuple[RunSpec, list[dict]]], metrics: list[str], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for spec, rows in runs:
            episodes, means, errors = _curves(rows, metric)
            axis.plot(episodes, means, label=_label(spec))
            axis.fill_between(episodes, means - errors, means + errors, alpha=0.25)
        axis.set_xlabel("training episodes")
        axis.set_title(metric.replace("_", " "))
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle("mean over seeds; band: one standard error", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


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
    metrics = [m for m in _METRICS if runs and all(m in rows[0] for _, rows in runs)]

    table_rows = []
    for (spec, rows), summary in zip(runs, summaries):
        last = max(row["update"] for row in rows)
        final = [row for row in rows if row["update"] == last]
        cells = [f"{m:.3f} ± {e:.3f}" for m, e in (_mean_and_error([r[k] for r in final]) for k in metrics)]
        table_rows.append([spec.agent, spec.env, json.dumps(spec.env_params), str(spec.train.seeds), str(last),
                           *cells, f"{summary['env_steps_per_second']:,.0f}", f"{summary['wall_seconds']:.1f}"])

    all_rows = [{"run_id": spec.run_id, "env": spec.env, "agent": spec.agent,
                 **{f"env_{k}": v for k, v in spec.env_params.items()}, **row} for spec, rows in runs for row in rows]
    (out_dir / "results.json").write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    leading = ["run_id", "env", "agent", *(f"env_{k}" for spec, _ in runs for k in spec.env_params),
               "update", "seed", "episodes", "return"]
    (out_dir / "results.csv").write_text(records.csv_text(all_rows, list(dict.fromkeys(leading))))
    if runs and metrics:
        plot_learning_curves(runs, metrics, out_dir / CURVES_FILE)

    header = ["agent", "env", "env params", "seeds", "updates", *metrics, "env-steps/s", "wall s"]
    text = [f"# cocoa benchmark report: `{suite.name}`", "", suite.description, "",
            f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} on {platform.node()} "
            f"({platform.machine()}, Python {platform.python_version()}).", "",
            "## Final performance", "",
            "Mean ± standard error over seeds at the last evaluation; evaluation uses the learned softmax "
            "policy without epsilon exploration. `env-steps/s` counts training steps over training time "
            "(compilation excluded).", "",
            "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    text += ["| " + " | ".join(row) + " |" for row in table_rows]
    if missing:
        text += ["", f"**{len(missing)} run(s) not finished yet** (re-run the same command to resume): "
                 + ", ".join(spec.run_id for spec in missing)]
    if runs and metrics:
        text += ["", "## Learning curves", "", f"![learning curves]({CURVES_FILE})"]
    text += ["", "## Files", "",
             "- `results.csv`: every evaluation of every seed of every run.",
             "- `results.json`: each run's configuration, final means and timings.",
             "- `runs/<run_id>/`: each run's `metrics.csv` and `summary.json`.", ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(text))
    return report
