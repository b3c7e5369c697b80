"""``cocoa bench`` killed mid-suite, by SIGINT and then by SIGKILL, and run again: every finished run
is kept as it was, nothing is corrupt and nothing is trained twice."""

import json
import os
import signal
import subprocess
import sys
import time

from cocoa.benchmarks import records, runner, suites


def _start(out):
    return subprocess.Popen([sys.executable, "-m", "cocoa.cli", "bench", "smoke", "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(out):
    return {spec.run_id for spec in suites.get("smoke").runs if runner.is_finished(out, spec)}


def _wait_for_more_than(out, count, process, timeout=300):
    start = time.monotonic()
    while len(_finished(out)) <= count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() - start < timeout, "no run finished in time"
        time.sleep(0.02)
    return _finished(out)


def _summaries(out, run_ids):
    return {run_id: (out / "runs" / run_id / records.SUMMARY_FILE).read_text() for run_id in run_ids}


def test_a_suite_killed_by_sigint_then_sigkill_resumes_without_training_anything_twice(tmp_path):
    first = _start(tmp_path)
    after_first = _wait_for_more_than(tmp_path, 0, first)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130 and "re-run to resume" in stderr
    kept = _summaries(tmp_path, after_first)

    second = _start(tmp_path)
    after_second = _wait_for_more_than(tmp_path, len(after_first), second)
    second.kill()  # SIGKILL: no handler runs
    second.communicate(timeout=60)
    assert len(after_second) < 3, "the last run was still to do when the process was killed"
    assert _summaries(tmp_path, after_first) == kept
    kept = _summaries(tmp_path, after_second)

    third = subprocess.run([sys.executable, "-m", "cocoa.cli", "bench", "smoke", "--out", str(tmp_path),
                            "--no-progress"], capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert third.stderr.count("already finished, kept") == len(after_second)
    assert f"{3 - len(after_second)} run(s) to train" in third.stderr
    assert _summaries(tmp_path, after_second) == kept
    assert _finished(tmp_path) == {spec.run_id for spec in suites.get("smoke").runs}
    for run_id in _finished(tmp_path):  # every file whole
        json.loads((tmp_path / "runs" / run_id / records.SUMMARY_FILE).read_text())
        assert records.load_metrics(tmp_path / "runs" / run_id)
    assert "not finished" not in (tmp_path / "report.md").read_text()
    assert not os.path.exists(tmp_path / "report.md.tmp")
