"""Runs a benchmark suite: each run trains, is saved as it finishes, and is skipped when re-run.

An interrupted suite keeps every finished run (``runs/<run_id>/summary.json``); running the same
command again resumes with the runs that are missing, then rewrites the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cocoa import agents, envs
from cocoa.benchmarks import records
from cocoa.benchmarks.report import write_report
from cocoa.benchmarks.suites import RunSpec, Suite
from cocoa.train import train


def run_dir(out_dir: str | Path, spec: RunSpec) -> Path:
    return Path(out_dir) / "runs" / spec.run_id


def is_finished(out_dir: str | Path, spec: RunSpec) -> bool:
    summary = records.load_summary(run_dir(out_dir, spec))
    return summary is not None and summary.get("config") == spec.to_dict()


def run_one(spec: RunSpec, out_dir: str | Path, progress: bool = True) -> dict:
    """Trains one run and saves it; returns its summary."""
    env = envs.make(spec.env, **spec.env_params)
    agent = agents.make_for_env(spec.agent, env, **spec.agent_config)
    result = train(env, agent, spec.train, progress=progress)
    return records.save_run(run_dir(out_dir, spec), spec.to_dict(), result)


def run_suite(suite: Suite, out_dir: str | Path, *, progress: bool = True, log=None) -> Path:
    """Runs every unfinished run of ``suite`` into ``out_dir`` and writes the report; returns its path."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(suite.runs)
    for index, spec in enumerate(suite.runs, start=1):
        label = f"[{index}/{total}] {spec.agent} on {spec.env} {spec.env_params}"
        if is_finished(out_dir, spec):
            log(f"{label}: already finished, kept")
            continue
        log(f"{label}: training {spec.train.seeds} seeds x {spec.train.updates} updates")
        summary = run_one(spec, out_dir, progress=progress)
        log(f"{label}: done in {summary['wall_seconds']:.1f} s "
            f"({summary['env_steps_per_second']:,.0f} env-steps/s)")
    report = write_report(suite, out_dir)
    log(f"report: {report}")
    return report
