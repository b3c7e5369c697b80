"""The gradient-quality report: markdown tables, dB bar charts, JSON records, and shadow curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

REPORT_FILE = "report.md"
PLOT_FILE = "gradients.png"
RECORDS_FILE = "gradients.json"
# Bars below this are drawn at it, hatched: float32 rounding alone gives relative errors ~1e-12.
PLOT_FLOOR_DB = -60.0
_COLUMNS = [("bias", "bias", "{:.3g}"), ("variance", "variance", "{:.3g}"), ("snr", "SNR", "{:.3g}"),
            ("cosine", "cosine", "{:.4f}"), ("bias_db", "bias dB", "{:.1f}"),
            ("variance_db", "variance dB", "{:.1f}"), ("snr_db", "SNR dB", "{:.1f}")]
_PLOTTED = [("bias_db", "bias"), ("variance_db", "variance"), ("snr_db", "SNR")]


def _group_key(record: dict) -> tuple:
    return (record["env"], json.dumps(record["env_params"], sort_keys=True), record["policy"],
            record["first_step_only"], record.get("batch_size", 1))


def _group_title(record: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(record["env_params"].items()))
    title = f"{record['env']}" + (f" ({params})" if params else "") + f", policy {record['policy']}"
    if record["first_step_only"]:
        title += ", first step only"
    if record.get("batch_size", 1) != 1:
        title += f", batch {record['batch_size']}"
    return title


def _groups(records: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(_group_key(record), []).append(record)
    return list(groups.values())


def _cell(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "−∞" if value < 0 else "∞"
    return pattern.format(value)


def markdown_tables(records: list[dict]) -> str:
    """One markdown table per (env, env params, policy): agent, the metrics (also in dB), samples, exact?."""
    header = ["agent", *(title for _, title, _ in _COLUMNS), "samples", "exact?"]
    lines = []
    for group in _groups(records):
        first = group[0]
        lines += [f"## {_group_title(first)}", "",
                  f"J = {first['expected_return']:.4g}, ‖g*‖ = {first['true_gradient_norm']:.4g}; seed "
                  f"{first['seed']}; models trained {first['model_updates']} updates at this policy.", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for record in group:
            cells = [_cell(record[key], pattern) for key, _, pattern in _COLUMNS]
            exact = "yes (enumerated)" if record["exact_variance"] else "no (sampled)"
            lines.append("| " + " | ".join([record["agent"], *cells, str(record["samples"]), exact]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(records: list[dict], path: str | Path):
    """Grouped bar chart of bias, variance and SNR in dB per agent (one panel per env and policy).

    Values below ``PLOT_FLOOR_DB`` (an unbiased estimator's bias is ~-130 dB of float rounding, or
    -inf) are drawn at the floor, hatched.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups = _groups(records)
    figure, axes = plt.subplots(len(groups), 1, figsize=(max(6.0, 1.2 * max(map(len, groups)) + 2), 4.5 * len(groups)),
                                squeeze=False)
    width = 0.8 / len(_PLOTTED)
    for axis, group in zip(axes[:, 0], groups):
        positions = np.arange(len(group))
        for index, (key, _) in enumerate(_PLOTTED):
            values = np.array([record[key] if record[key] is not None else np.nan for record in group], float)
            floored = values < PLOT_FLOOR_DB  # includes -inf (exactly zero)
            values[floored] = PLOT_FLOOR_DB
            bars = axis.bar(positions + (index - (len(_PLOTTED) - 1) / 2) * width, values, width,
                            color=f"C{index}")
            for bar, below in zip(bars, floored):
                if below:
                    bar.set_hatch("//")
        axis.axhline(0.0, color="black", linewidth=0.6)
        axis.set_xticks(positions, [record["agent"] for record in group], rotation=20, ha="right")
        axis.set_ylabel("dB")
        axis.set_title(_group_title(group[0]) + f"\nhatched: below {PLOT_FLOOR_DB:.0f} dB (zero up to rounding)",
                       fontsize=9)
        axis.grid(axis="y", alpha=0.3)
        handles = [Patch(color=f"C{index}", label=label) for index, (_, label) in enumerate(_PLOTTED)]
        axis.legend(handles=handles, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(records: list[dict], out_dir: str | Path, *, command: str | None = None) -> Path:
    """Writes ``report.md``, ``gradients.png`` and ``gradients.json`` into ``out_dir``; returns report.md.

    In the JSON, non-finite numbers (−∞ dB for an exactly zero bias) are written as null.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = [{k: _json_value(v) for k, v in record.items()} for record in records]
    (out_dir / RECORDS_FILE).write_text(json.dumps(clean, indent=2) + "\n")
    plot(records, out_dir / PLOT_FILE)
    text = ["# cocoa gradient quality", ""]
    if command:
        text += [f"Made with `{command}`.", ""]
    text += ["Against the exact gradient g* of the oracle (docs/gradients.md): bias = ‖g* − ḡ‖² / ‖g*‖² with ḡ "
             "the estimator's exact expected gradient; variance = E‖g − ḡ‖² / ‖g*‖²; SNR = ‖g*‖² / E‖g − g*‖²; "
             "cosine(ḡ, g*). dB = 10·log10. `exact?`: every trajectory enumerated with its probability "
             "(no sampling error), or sampled.", "",
             markdown_tables(records), f"![gradient quality]({PLOT_FILE})", "",
             f"Records: `{RECORDS_FILE}`.", ""]
    report = out_dir / REPORT_FILE
    report.write_text("\n".join(text))
    return report


def plot_shadow_curves(records: list[dict], path: str | Path):
    """Bias, variance and SNR (dB, mean over seeds) of each shadow estimator against the update."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["agent"] for r in records))
    figure, axes = plt.subplots(1, len(_PLOTTED), figsize=(5 * len(_PLOTTED), 3.8), squeeze=False)
    for axis, (key, title) in zip(axes[0], _PLOTTED):
        for name in names:
            updates = sorted({r["update"] for r in records if r["agent"] == name})
            means = [np.mean([np.clip(r[key], -150, None) for r in records
                              if r["agent"] == name and r["update"] == u]) for u in updates]
            axis.plot(updates, means, marker="o", markersize=3, label=name)
        axis.set_xlabel("update")
        axis.set_title(f"{title} (dB)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
