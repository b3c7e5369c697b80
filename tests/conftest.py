"""Test-wide JAX settings, applied before jax is imported."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Unit tests compile many small programs: cheaper compiles beat faster code here. Without the fusion
# emitters XLA's CPU compiles take about 40 % less time here (a cold suite: 15 min 20 s -> 10 min 8 s).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")

# A persistent compilation cache, set through the environment so that the processes the tests start
# (the CLI, Ray workers, xdist workers) share it: a program compiled once is loaded by the others. The
# default thresholds would cache almost nothing on a CPU.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/cocoa-tests-jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def setting():
    """Key-to-door L = 7, 20,000 episodes of a fixed random policy and the exact gradient (estimator_checks)."""
    from estimator_checks import key_to_door_setting

    return key_to_door_setting()
