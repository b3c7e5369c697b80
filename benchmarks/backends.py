"""Where a suite's runs execute: in this process (``local``) or as tasks on a Ray cluster (``ray``).

A backend maps a module-level function over work items and yields ``(index, outcome)`` as each
finishes, in any order; the outcome is the function's return value or a ``RunFailure``. The
caller saves every finished result at once, so an interrupted suite keeps what finished. A
failing item never stops the others.

On Ray each item is one task (for training suites: one run, a vmapped group of seeds compiled
once) in a fresh worker process (``max_calls=1``). The task's runtime environment sets
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` before jax starts, and the task pins itself to as many
CPUs as Ray granted it before its first jax computation: XLA sizes its thread pool by the CPU
affinity (``OMP_NUM_THREADS`` does not reach it), so many workers on one node would otherwise
each start a thread per core. Ray is an optional extra: ``pip install cocoa[ray]``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import tempfile
import traceback
import warnings
from typing import Callable, Iterator, Sequence

from tqdm.auto import tqdm

BACKENDS = ("local", "ray")
# Set in each Ray worker before it imports jax (jax reads them once, at start).
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclasses.dataclass(frozen=True)
class RunFailure:
    """An item whose function raised: the exception in one line, and its traceback."""

    message: str
    details: str = ""


def _failure(error: BaseException) -> RunFailure:
    return RunFailure(f"{type(error).__name__}: {error}",
                      "".join(traceback.format_exception(type(error), error, error.__traceback__)))


class LocalBackend:
    """Runs the items one after the other in this process."""

    name = "local"

    def map(self, function: Callable, items: Sequence, progress: bool = True) -> Iterator[tuple[int, object]]:
        for index, item in enumerate(items):
            try:
                yield index, function(item, progress)
            except Exception as error:  # a failing run is reported; KeyboardInterrupt still stops the suite
                yield index, _failure(error)


# The CPU blocks this worker process holds (a lock file per block, released when the process ends).
_held_locks: list = []


def pin_to_cpus(count: int) -> list[int]:
    """Restrict this process to ``count`` of its CPUs, a block that no other live cocoa worker with
    blocks of that size holds on the node (the first free one; the first block if every one is
    held). A suite's tasks all take the same size. Call before jax's first computation."""
    cpus = sorted(os.sched_getaffinity(0))
    count = max(1, min(int(count), len(cpus)))
    blocks = [cpus[start:start + count] for start in range(0, len(cpus) - count + 1, count)]
    chosen = blocks[0]
    for number, block in enumerate(blocks):
        handle = open(os.path.join(tempfile.gettempdir(), f"cocoa-cpu-block-{count}-{number}.lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held_locks.append(handle)
        chosen = block
        break
    os.sched_setaffinity(0, chosen)
    return chosen


def _in_worker(function: Callable, item, cpus: int):
    """A Ray task's body: pin to the granted CPUs, then run the item without progress bars."""
    pin_to_cpus(cpus)
    return function(item, False)


class RayBackend:
    """Sends each item to a Ray cluster as a task of ``cpus_per_run`` CPUs.

    ``address``: "auto", "HOST:PORT" or "ray://HOST:PORT" of a running cluster; None starts a local
    Ray instance with ``num_cpus`` CPUs (all of this machine's by default) and stops it afterwards.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_run: int = 1, num_cpus: int | None = None):
        if not isinstance(cpus_per_run, int) or isinstance(cpus_per_run, bool) or cpus_per_run < 1:
            raise ValueError(f"cpus_per_run must be an integer >= 1; got {cpus_per_run!r}")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"address must be 'auto', 'HOST:PORT' or 'ray://HOST:PORT'; got {address!r}")
        try:
            import ray  # noqa: F401
        except ImportError as error:
            raise ValueError("the ray backend needs Ray: pip install 'cocoa[ray]'") from error
        self.address, self.cpus_per_run, self.num_cpus = address, cpus_per_run, num_cpus

    def map(self, function: Callable, items: Sequence, progress: bool = True) -> Iterator[tuple[int, object]]:
        import ray

        global _started_ray
        started = not ray.is_initialized()
        if started:
            _started_ray = True
            options = dict(address=self.address) if self.address else dict(num_cpus=self.num_cpus)
            with warnings.catch_warnings():
                # Ray starts its processes by fork then exec; jax warns at any fork once its backend is up.
                warnings.filterwarnings("ignore", "os.fork\\(\\) was called", RuntimeWarning)
                ray.init(**options, include_dashboard=False, logging_level="warning", log_to_driver=False,
                         runtime_env={"env_vars": WORKER_ENV})
        task = ray.remote(num_cpus=self.cpus_per_run, max_calls=1, max_retries=0,
                          runtime_env={"env_vars": WORKER_ENV})(_in_worker)
        pending = {task.remote(function, item, self.cpus_per_run): index for index, item in enumerate(items)}
        bar = tqdm(total=len(pending), desc="ray tasks", unit="run", disable=not progress)
        try:
            while pending:
                (done,), _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done)
                try:
                    outcome = ray.get(done)
                except ray.exceptions.RayTaskError as error:
                    cause = error.cause if isinstance(error.cause, BaseException) else error
                    outcome = RunFailure(f"{type(cause).__name__}: {cause}", str(error))
                except ray.exceptions.RayError as error:  # the worker died (out of memory, killed)
                    outcome = RunFailure(f"{type(error).__name__}: {error}", str(error))
                bar.update(1)
                yield index, outcome
        finally:
            bar.close()
            for ref in pending:  # interrupted: nothing left running on the cluster
                ray.cancel(ref, force=True)
            if started:
                stop_started_ray()


_started_ray = False  # whether a RayBackend of this process started the Ray instance now running


def stop_started_ray():
    """Shut down the local Ray instance a ``RayBackend`` started, if one is running (also called by
    the ``cocoa`` command's interrupt handler, which leaves without unwinding)."""
    global _started_ray
    if _started_ray:
        import ray

        ray.shutdown()
        _started_ray = False


def make(name: str = "local", *, address: str | None = None, cpus_per_run: int = 1, num_cpus: int | None = None):
    """The backend called ``name`` ("local" or "ray"); the Ray options apply to "ray" only."""
    if name == "local":
        if address is not None or cpus_per_run != 1:
            raise ValueError("--address and --cpus-per-run need --backend ray")
        return LocalBackend()
    if name == "ray":
        return RayBackend(address=address, cpus_per_run=cpus_per_run, num_cpus=num_cpus)
    raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
