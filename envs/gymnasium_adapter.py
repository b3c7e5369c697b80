"""Gymnasium adapter: any cocoa functional environment as a :class:`gymnasium.Env`.

``import cocoa`` registers every cocoa environment with Gymnasium under the ``cocoa/`` namespace,
so the usual Gymnasium tooling (``gymnasium.make``, ``gymnasium.make_vec``, wrappers, checkers)
works on them::

    import cocoa, gymnasium
    env = gymnasium.make("cocoa/LinearKeyToDoor-v0", length=23)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

The adapter is a thin, stateful shell around the pure functions ``env.reset`` / ``env.step``: it
holds the current state and a JAX PRNG key, and calls the jitted functions (compiled once per
adapter instance). Everything it returns is numpy / Python: ``float32`` observations, a ``float``
reward, ``bool`` flags and an ``info`` dict of Python scalars.

Episodes end on their own (every cocoa environment has a finite horizon), so nothing truncates
(``truncated`` is always ``False``) and the registrations carry no ``max_episode_steps``.
"""

from __future__ import annotations

import os

import gymnasium
import jax
import numpy as np

from cocoa.envs import registry
from cocoa.envs.base import Environment
from cocoa.envs.host_runner import EpisodeRunner, resolve_env

NAMESPACE = "cocoa"

# Whether this process is a fork of one whose JAX runtime had started: JAX's threads do not survive a
# fork, so any JAX call here would hang (gymnasium's AsyncVectorEnv forks by default on Linux).
_FORKED_AFTER_JAX = False


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge
        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without the probe: assume the runtime has started
        return True


def _after_fork_in_child(started: list[bool]):
    global _FORKED_AFTER_JAX
    _FORKED_AFTER_JAX = _FORKED_AFTER_JAX or started[0]


_started_at_fork = [False]
os.register_at_fork(before=lambda: _started_at_fork.__setitem__(0, _backends_started()),
                    after_in_child=lambda: _after_fork_in_child(_started_at_fork))
_ENTRY_POINT = "cocoa.envs.gymnasium_adapter:GymnasiumEnv"
_VECTOR_ENTRY_POINT = "cocoa.envs.gymnasium_vector:CocoaVectorEnv"


# --- the Gymnasium environment ---------------------------------------------------------------

class GymnasiumEnv(gymnasium.Env):
    """A cocoa functional environment behind Gymnasium's ``Env`` API.

    Args:
      env: a registered cocoa environment name (see ``cocoa.envs.names()``), or a built
        ``cocoa.envs.Environment``.
      render_mode: ``None`` or ``"ansi"`` (``render()`` then returns the current state as a line of
        text, e.g. key-to-door's corridor with the agent in it).
      **params: the environment's parameters when ``env`` is a name (see
        ``cocoa.envs.parameters(name)``).

    Spaces: ``observation_space`` is a float32 ``Box`` of shape ``env.observation_shape`` with the
    bounds the environment declares (``env.observation_bounds()``); ``action_space`` is
    ``Discrete(env.num_actions)``.

    Seeding: ``reset(seed=s)`` seeds ``self.np_random`` and draws the episode's JAX PRNG key from it,
    so episodes are reproducible per seed; ``reset()`` without a seed continues the generator.

    ``step`` returns ``(observation, reward, terminated, False, info)``: ``info`` holds the
    environment's per-step diagnostics as Python scalars and, on the last step, the episode
    summary (``episode_return``, ``episode_length``, ``episode_totals`` and the environment's episode
    metrics, e.g. ``treasure_rate`` and ``distractor_rate`` for key-to-door). Stepping a finished
    episode is an error: call ``reset``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, env: str | Environment, *, render_mode: str | None = None, **params):
        if _FORKED_AFTER_JAX:
            raise RuntimeError(
                "cocoa environments cannot run in a process forked after JAX started (JAX is multithreaded; the "
                "fork would hang). For many copies use gymnasium.make_vec('cocoa/<name>', num_envs=N), one jitted "
                "batched env; for worker processes pass vectorization_mode='async' with "
                "vector_kwargs={'context': 'spawn'}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"cocoa environments render as text only: render_mode must be None or 'ansi'; "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        self.cocoa_env = resolve_env(env, params)
        self._runner = EpisodeRunner(self.cocoa_env)
        low, high = self.cocoa_env.observation_bounds()
        self.observation_space = gymnasium.spaces.Box(low=low, high=high, shape=self._runner.observation_shape,
                                                      dtype=np.float32)
        self.action_space = gymnasium.spaces.Discrete(self._runner.num_actions)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Starts an episode; returns ``(observation, info)`` (the info is empty)."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"cocoa environments take no reset options; got {sorted(options)}")
        key = jax.random.key(int(self.np_random.integers(0, 2**63)))
        return self._runner.reset(key), {}

    def step(self, action):
        """One step; returns ``(observation, reward, terminated, truncated=False, info)``."""
        if not self._runner.started:
            raise RuntimeError(f"{self.cocoa_env.name}: call reset() before step()")
        if self._runner.done:
            raise RuntimeError(f"{self.cocoa_env.name}: the episode has terminated; call reset() before "
                               "stepping again")
        observation, reward, terminated, info = self._runner.step(action)
        return observation, reward, terminated, False, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the current state as a line of text (``Environment.render_text``)."""
        if self.render_mode is None:
            return None
        if not self._runner.started:
            raise RuntimeError(f"{self.cocoa_env.name}: call reset() before render()")
        return self._runner.render_text()

    def __repr__(self):
        return f"GymnasiumEnv({self.cocoa_env!r})"


# --- registration ------------------------------------------------------------------------------

def gymnasium_id(name: str) -> str:
    """The Gymnasium id of cocoa environment ``name``: ``"cocoa/<name>"``."""
    return f"{NAMESPACE}/{name}"


def register_gymnasium_envs() -> list[str]:
    """Registers every cocoa environment with Gymnasium as ``cocoa/<name>``; returns the ids.

    Idempotent: ids already registered by this function are left alone, so calling it again (for
    instance after ``cocoa.envs.register`` added an environment) only adds the new ones. Keyword
    arguments of ``gymnasium.make(id, **kwargs)`` go to ``cocoa.envs.make(name, **kwargs)``.
    No ``max_episode_steps``: cocoa environments end their episodes themselves.

    Raises:
      ValueError: an id is already registered with Gymnasium by someone else.
    """
    ids = []
    for name in registry.names():
        env_id = gymnasium_id(name)
        existing = gymnasium.registry.get(env_id)
        if existing is None:
            gymnasium.register(id=env_id, entry_point=_ENTRY_POINT, vector_entry_point=_VECTOR_ENTRY_POINT,
                               kwargs={"env": name}, max_episode_steps=None)
        elif existing.entry_point != _ENTRY_POINT or existing.kwargs.get("env") != name:
            raise ValueError(f"Gymnasium id {env_id!r} is already registered for {existing.entry_point!r}; "
                             f"cannot register cocoa environment {name!r} under it")
        ids.append(env_id)
    return ids
