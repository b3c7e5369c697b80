"""Test-wide JAX settings, applied before jax is imported."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Unit tests compile many small programs: cheaper compiles beat faster code here.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/cocoa-tests-jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
