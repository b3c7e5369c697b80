"""Test-wide JAX settings, applied before jax is imported."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Unit tests compile many small programs: cheaper compiles beat faster code here.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/cocoa-tests-jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def setting():
    """Key-to-door L = 7, 20,000 episodes of a fixed random policy and the exact gradient (estimator_checks)."""
    from estimator_checks import key_to_door_setting

    return key_to_door_setting()
