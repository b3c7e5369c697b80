"""Benchmark suites, their runner and the report writer."""

from cocoa.benchmarks import records, report, suites
from cocoa.benchmarks.report import write_report
from cocoa.benchmarks.runner import run_one, run_suite
from cocoa.benchmarks.suites import RunSpec, Suite

__all__ = ["RunSpec", "Suite", "records", "report", "run_one", "run_suite", "suites", "write_report"]
