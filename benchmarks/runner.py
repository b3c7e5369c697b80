"""Runs a benchmark suite: each run trains, is saved as it finishes, and is skipped when re-run.

An interrupted suite keeps every finished run (``runs/<run_id>/summary.json``); running the same
command again resumes with the runs that are missing, then rewrites the report. A run that fails
leaves ``runs/<run_id>/error.txt`` and the others go on. The runs execute on a backend
(``backends``): in this process by default, or as tasks on a Ray cluster.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from cocoa import agents, envs
from cocoa.benchmarks import backends, records
from cocoa.benchmarks.report import write_report
from cocoa.benchmarks.suites import RunSpec, Suite
from cocoa.train import train


def run_dir(out_dir: str | Path, spec: RunSpec) -> Path:
    return Path(out_dir) / "runs" / spec.run_id


def is_finished(out_dir: str | Path, spec: RunSpec) -> bool:
    summary = records.load_summary(run_dir(out_dir, spec))
    return summary is not None and summary.get("config") == spec.to_dict()


def train_run(spec: RunSpec, progress: bool = True) -> dict:
    """Trains one run (its seeds vmapped, compiled once); returns ``records.run_record``."""
    env = envs.make(spec.env, **spec.env_params)
    agent = agents.make_for_env(spec.agent, env, **spec.agent_config)
    return records.run_record(spec.to_dict(), train(env, agent, spec.train, progress=progress))


def run_one(spec: RunSpec, out_dir: str | Path, progress: bool = True) -> dict:
    """Trains one run and saves it; returns its summary."""
    return records.save_record(run_dir(out_dir, spec), train_run(spec, progress))


def failures(suite: Suite, out_dir: str | Path) -> dict[str, str]:
    """run_id -> why, for every run of ``suite`` that failed and has not finished since."""
    return {spec.run_id: message for spec in suite.runs
            if not is_finished(out_dir, spec) and (message := records.load_failure(run_dir(out_dir, spec)))}


def run_suite(suite: Suite, out_dir: str | Path, *, progress: bool = True, log=None,
              backend=None) -> Path:
    """Runs every unfinished run of ``suite`` into ``out_dir`` on ``backend`` (in this process by
    default) and writes the report; returns its path. Failed runs are listed by ``failures``."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    backend = backend or backends.LocalBackend()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(suite.runs)
    labels = {spec.run_id: f"[{index}/{total}] {spec.agent} on {spec.env} {spec.env_params}"
              for index, spec in enumerate(suite.runs, start=1)}
    pending = []
    for spec in suite.runs:
        if is_finished(out_dir, spec):
            log(f"{labels[spec.run_id]}: already finished, kept")
        else:
            pending.append(spec)
    if pending:
        log(f"{len(pending)} run(s) to train on the {backend.name} backend")
    # closing: an interrupt stops the backend at once (a Ray backend cancels the runs still out).
    with contextlib.closing(backend.map(train_run, pending, progress=progress)) as outcomes:
        for index, outcome in outcomes:
            spec = pending[index]
            if isinstance(outcome, backends.RunFailure):
                records.save_failure(run_dir(out_dir, spec), outcome.message, outcome.details)
                log(f"{labels[spec.run_id]}: FAILED: {outcome.message}")
                continue
            summary = records.save_record(run_dir(out_dir, spec), outcome)
            log(f"{labels[spec.run_id]}: {spec.train.seeds} seeds x {spec.train.updates} updates done in "
                f"{summary['wall_seconds']:.1f} s ({summary['env_steps_per_second']:,.0f} env-steps/s)")
    report = write_report(suite, out_dir)
    log(f"report: {report}")
    return report
