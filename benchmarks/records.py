"""Writing and reading one training run's results: ``metrics.csv`` and ``summary.json``.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written result that a later resume would mistake for a finished one.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from cocoa.train import TrainResult

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
_LEADING_COLUMNS = ["update", "seed", "episodes", "return"]


def _atomic_write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def csv_text(rows: list[dict], leading_columns=_LEADING_COLUMNS) -> str:
    """CSV of ``rows``: the leading columns present, then every other key in sorted order."""
    keys = {k for row in rows for k in row}
    leading = [c for c in leading_columns if c in keys]
    columns = leading + sorted(keys - set(leading))
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(_format(row.get(c, "")) for c in columns))
    return "\n".join(lines) + "\n"


def write_csv(path: str | os.PathLike, rows: list[dict], leading_columns=_LEADING_COLUMNS):
    """Writes ``rows`` as CSV (atomically)."""
    _atomic_write(Path(path), csv_text(rows, leading_columns))


def _format(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def summary_dict(config: dict, result: TrainResult) -> dict:
    return {
        "config": config,
        "final": result.final_means(),
        "wall_seconds": result.train_seconds + result.compile_seconds,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "env_steps": result.env_steps,
        "env_steps_per_second": result.env_steps_per_second,
    }


def save_run(out_dir: str | os.PathLike, config: dict, result: TrainResult) -> dict:
    """Writes ``metrics.csv`` then ``summary.json`` (the marker of a finished run); returns the summary."""
    out_dir = Path(out_dir)
    summary = summary_dict(config, result)
    _atomic_write(out_dir / METRICS_FILE, csv_text(result.rows))
    _atomic_write(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def load_summary(run_dir: str | os.PathLike) -> dict | None:
    """The run's summary, or None if the run has not finished."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def load_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """Rows of a run's ``metrics.csv`` with numeric values."""
    with open(Path(run_dir) / METRICS_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: (int(v) if k in ("update", "seed", "episodes") else float(v)) for k, v in row.items() if v != ""}
            for row in rows]
