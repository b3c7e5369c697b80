"""Writing and reading one training run's results: ``metrics.csv`` and ``summary.json``, or
``error.txt`` when it failed.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written result that a later resume would mistake for a finished one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

from cocoa.train import TrainResult

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
ERROR_FILE = "error.txt"
CREDIT_MATRIX_FILE = "credit_matrix.json"  # task interleaving: {"learned", "exact"} context credit matrices
SHADOW_FILE = "shadow.csv"  # a run with shadow estimators: their gradient quality at each evaluation
SHADOW_PLOT_FILE = "shadow.png"  # and its plot along training
_LEADING_COLUMNS = ["update", "seed", "episodes", "return"]


def digest(config: dict) -> str:
    """8 hex digits naming ``config``: a changed configuration gets new files, so a resumed suite
    never mistakes a stale result for a finished run."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]


def atomic_write(path: Path, text: str):
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
    atomic_write(Path(path), csv_text(rows, leading_columns))


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
        "cpus": len(os.sched_getaffinity(0)),  # what the timings had (a Ray task: the CPUs it was pinned to)
    }


def run_record(config: dict, result: TrainResult) -> dict:
    """What a finished run leaves, as plain data (it travels back from a Ray worker): its summary
    and its metric rows."""
    return {"summary": summary_dict(config, result), "rows": result.rows}


def save_record(out_dir: str | os.PathLike, record: dict) -> dict:
    """Writes ``metrics.csv`` (and ``shadow.csv``, ``credit_matrix.json`` when the record has them), then
    ``summary.json`` (the marker of a finished run), and removes an earlier attempt's ``error.txt``;
    returns the summary."""
    out_dir = Path(out_dir)
    atomic_write(out_dir / METRICS_FILE, csv_text(record["rows"]))
    if record.get("shadow_rows"):
        atomic_write(out_dir / SHADOW_FILE, csv_text(record["shadow_rows"], ["update", "seed", "agent"]))
    if record.get("credit_matrix"):
        atomic_write(out_dir / CREDIT_MATRIX_FILE, json.dumps(record["credit_matrix"]))
    atomic_write(out_dir / SUMMARY_FILE, json.dumps(record["summary"], indent=2, sort_keys=True) + "\n")
    (out_dir / ERROR_FILE).unlink(missing_ok=True)
    return record["summary"]


def save_run(out_dir: str | os.PathLike, config: dict, result: TrainResult) -> dict:
    """``save_record`` of ``run_record(config, result)``; returns the summary."""
    return save_record(out_dir, run_record(config, result))


def save_failure(out_dir: str | os.PathLike, message: str, details: str = ""):
    """Writes ``error.txt``: why the run failed (its first line) and the traceback."""
    atomic_write(Path(out_dir) / ERROR_FILE, message + "\n\n" + details)


def load_failure(run_dir: str | os.PathLike) -> str | None:
    """The first line of the run's ``error.txt``, or None if it has not failed."""
    path = Path(run_dir) / ERROR_FILE
    return path.read_text().splitlines()[0] if path.is_file() else None


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


def load_shadow(run_dir: str | os.PathLike) -> list[dict]:
    """Rows of a run's ``shadow.csv`` (``cocoa.shadow.shadow_quality``'s records), or [] if it has none."""
    path = Path(run_dir) / SHADOW_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    text = {"agent": str, "first_step_only": lambda v: v == "True", "update": int, "seed": int}
    return [{k: text.get(k, float)(v) for k, v in row.items() if v != ""} for row in rows]
