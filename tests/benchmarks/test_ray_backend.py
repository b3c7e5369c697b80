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


def test_the_smoke_suite_through_ray_gives_the_same_results_csv(local_ray, tmp_path, capsys):
    assert main(["bench", "smoke", "--out", str(tmp_path / "local"), "--no-progress"]) == 0
    assert main(["bench", "smoke", "--out", str(tmp_path / "ray"), "--no-progress", "--backend", "ray"]) == 0
    local, remote = ((tmp_path / name / "results.csv").read_text() for name in ("local", "ray"))
    assert local == remote and len(local.splitlines()) > 10
    spec = suites.get("smoke").runs[0]
    assert runner.is_finished(tmp_path / "ray", spec)


def test_a_failing_ray_run_is_reported_and_an_interrupted_one_resumes(local_ray, tmp_path):
    good = suites.get("smoke").runs[:2]
    bad = dataclasses.replace(good[0], env_params={"length": 1})
    suite = suites.Suite("mixed", "one bad run, two good", (bad, *good))

    def interrupt_at_first_finish(message):
        if "done in" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(suite, tmp_path, progress=False, log=interrupt_at_first_finish,
                         backend=backends.RayBackend())
    finished = [spec for spec in good if runner.is_finished(tmp_path, spec)]
    assert len(finished) == 1, "the interrupt came at the first finished run; the other was cancelled"
    kept = (runner.run_dir(tmp_path, finished[0]) / "summary.json").read_text()

    messages = []
    report = runner.run_suite(suite, tmp_path, progress=False, log=messages.append, backend=backends.RayBackend())
    assert any("already finished, kept" in m and finished[0].agent in m for m in messages)
    assert (runner.run_dir(tmp_path, finished[0]) / "summary.json").read_text() == kept
    assert all(runner.is_finished(tmp_path, spec) for spec in good)
    failed = runner.failures(suite, tmp_path)
    assert list(failed) == [bad.run_id] and "length" in failed[bad.run_id]
    assert "1 run(s) failed" in report.read_text()


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
