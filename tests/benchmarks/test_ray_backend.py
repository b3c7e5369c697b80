"""The Ray backend on a real local Ray instance (2 CPUs): the same results as in-process, failures
reported, interrupted runs resumed, and workers set up for jax."""

import dataclasses
import os
import sys
import warnings

import pytest
import ray

from cocoa.benchmarks import backends, runner, suites
from cocoa.cli import main


@pytest.fixture(scope="module")
def local_ray():
    with warnings.catch_warnings():
        # Ray starts its processes by fork then exec; jax warns at any fork once its backend is up.
        warnings.filterwarnings("ignore", "os.fork\\(\\) was called", RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False,
                 runtime_env={"env_vars": backends.WORKER_ENV})
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # so workers can run _probe
    yield
    ray.shutdown()


def test_an_interrupted_ray_suite_resumes_reports_its_failure_and_matches_the_local_results(
        local_ray, tmp_path, monkeypatch, capsys):
    """One bad run and two smoke runs: in-process for reference, then through Ray, interrupted at the first
    finished run and resumed from the command line; the same results.csv, the failure reported."""
    good = suites.get("smoke").runs[:2]
    bad = dataclasses.replace(good[0], env_params={"length": 1})
    suite = suites.Suite("mixed", "one bad run, two good", (bad, *good))
    monkeypatch.setitem(suites.SUITES, suite.name, suite)
    runner.run_suite(suite, tmp_path / "local", progress=False, log=lambda _: None)

    def interrupt_at_first_finish(message):
        if "done in" in message:
            raise KeyboardInterrupt

    remote = tmp_path / "ray"
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(suite, remote, progress=False, log=interrupt_at_first_finish, backend=backends.RayBackend())
    finished = [spec for spec in good if runner.is_finished(remote, spec)]
    assert len(finished) == 1, "the interrupt came at the first finished run; the other was cancelled"
    kept = (runner.run_dir(remote, finished[0]) / "summary.json").read_text()

    capsys.readouterr()
    assert main(["bench", "mixed", "--out", str(remote), "--no-progress", "--backend", "ray"]) == 1  # one failed
    assert any("already finished, kept" in line and finished[0].agent in line
               for line in capsys.readouterr().err.splitlines())
    assert (runner.run_dir(remote, finished[0]) / "summary.json").read_text() == kept  # kept, not trained again
    assert all(runner.is_finished(remote, spec) for spec in good)
    failed = runner.failures(suite, remote)
    assert list(failed) == [bad.run_id] and "length" in failed[bad.run_id]
    assert "1 run(s) failed" in (remote / "report.md").read_text()
    local, through_ray = ((folder / "results.csv").read_text() for folder in (tmp_path / "local", remote))
    assert local == through_ray and len(local.splitlines()) > 5


def _probe(item, progress):
    return {"cpus": len(os.sched_getaffinity(0)), "preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
            "progress": progress, "item": item}


@pytest.mark.parametrize("cpus", [1, 2])
def test_ray_workers_are_pinned_to_their_cpus_and_do_not_preallocate(local_ray, cpus):
    outcomes = dict(backends.RayBackend(cpus_per_run=cpus).map(_probe, ["a", "b"], progress=False))
    assert sorted(o["item"] for o in outcomes.values()) == ["a", "b"]
    for outcome in outcomes.values():
        assert outcome == {**outcome, "cpus": cpus, "preallocate": "false", "progress": False}


def test_bad_backend_options_name_themselves():
    with pytest.raises(ValueError, match="unknown backend 'slurm'; known backends: local, ray"):
        backends.make("slurm")
    with pytest.raises(ValueError, match="cpus_per_run must be an integer >= 1; got 0"):
        backends.make("ray", cpus_per_run=0)
    with pytest.raises(ValueError, match="--address and --cpus-per-run need --backend ray"):
        backends.make("local", address="auto")
