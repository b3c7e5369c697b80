"""Gymnasium environments in: by their table where they have one, else through a host loop.

``wrap_gymnasium(env_or_id, horizon=None, **make_kwargs)`` (and ``envs.make("gymnasium:<id>", ...)``,
and the CLI's ``--env gymnasium:<id>``) gives

* a :class:`~cocoa.envs.tabular.TabularEnv` when the environment lists its dynamics in a ``P``
  table (FrozenLake, CliffWalking, Taxi): jitted, as fast as our own environments, and exact for
  the oracle, ``-gt`` estimators, ``cocoa gradients`` and shadow training;
* a :class:`GymnasiumHostEnv` otherwise (CartPole, Acrobot, MountainCar, ...): episodes are
  collected from a Gymnasium vector env on the host, padded to the horizon with a mask, and fed to
  the same compiled update as our own environments' batches (``cocoa.host_rollout``).

Host environments need a discrete action space and a ``Box`` (flattened) or ``Discrete`` (one-hot)
observation space. The horizon (``max_episode_steps`` of the registration by default) bounds every
episode; an episode that Gymnasium truncates, or that reaches the horizon, simply ends there (the
estimators are Monte Carlo within an episode, so nothing is bootstrapped past the cut).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import gymnasium
import numpy as np

from cocoa.envs.from_gymnasium import from_gymnasium
from cocoa.envs.tabular import TabularEnv

PREFIX = "gymnasium:"


class Spaces:
    """A Gymnasium env's discrete action space and Box / Discrete observation space, as cocoa sees them:
    actions 0..A-1, observations float32 vectors (a Box flattened, a Discrete one-hot).

    Raises:
      TypeError: another kind of space (the message names it).
    """

    def __init__(self, observation_space, action_space, name: str):
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise TypeError(f"{name}: cocoa agents need a Discrete action space; got {action_space}")
        if not isinstance(observation_space, (gymnasium.spaces.Box, gymnasium.spaces.Discrete)):
            raise TypeError(f"{name}: cocoa takes Box or Discrete observation spaces; got {observation_space} "
                            "(wrap the environment, e.g. with gymnasium.wrappers.FlattenObservation)")
        self.action_space, self.observation_space = action_space, observation_space
        self.num_actions = int(action_space.n)
        if isinstance(observation_space, gymnasium.spaces.Discrete):
            self.observation_shape = (int(observation_space.n),)
        else:
            self.observation_shape = (int(np.prod(observation_space.shape)),)

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.observation_space, gymnasium.spaces.Discrete):
            return np.zeros(self.observation_shape, np.float32), np.ones(self.observation_shape, np.float32)
        low = np.asarray(self.observation_space.low, np.float64).reshape(-1)
        high = np.asarray(self.observation_space.high, np.float64).reshape(-1)
        limit = np.finfo(np.float32).max
        return (np.where(low < -limit, -np.inf, low).astype(np.float32),
                np.where(high > limit, np.inf, high).astype(np.float32))

    def encode(self, observations) -> np.ndarray:
        """A batch of Gymnasium observations (N, ...) as float32 (N, *observation_shape)."""
        observations = np.asarray(observations)
        if isinstance(self.observation_space, gymnasium.spaces.Discrete):
            index = observations.astype(np.int64) - int(self.observation_space.start)
            return np.eye(self.observation_shape[0], dtype=np.float32)[index]
        return observations.reshape(observations.shape[0], -1).astype(np.float32)

    def action(self, actions):
        """Agent actions 0..A-1 as the action space's values."""
        return np.asarray(actions).astype(np.int64) + int(self.action_space.start)


class GymnasiumHostEnv(Spaces):
    """A Gymnasium environment without a table: what the host loop needs to run it in batches.

    Not a functional environment (nothing here jits); ``cocoa.train.train`` recognises it and collects
    its batches on the host. Build it with :func:`wrap_gymnasium`.

    Args:
      make_env: builds one Gymnasium environment (called once per vector-env slot).
      name: what the environment is called in reports and errors.
      horizon: the longest episode, >= 1 (steps past it are cut).
    """

    is_tabular = False
    metric_names: tuple[str, ...] = ()

    def __init__(self, make_env: Callable[[], gymnasium.Env], *, name: str, horizon: int):
        self.make_env = make_env
        self.name = name
        self.max_episode_steps = check_horizon(horizon)
        probe = make_env()
        try:
            super().__init__(probe.observation_space, probe.action_space, name)
        finally:
            probe.close()

    def vector(self, num_envs: int) -> gymnasium.vector.VectorEnv:
        """``num_envs`` copies in a synchronous vector env (next-step autoreset)."""
        return gymnasium.vector.SyncVectorEnv([self.make_env] * num_envs,
                                              autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP)

    def tabular_mdp(self, params=None):
        raise TypeError(f"{self.name} has no tabular form (it has no P table); exact estimators (-gt), "
                        "cocoa gradients and shadow training need one")

    def episode_metrics(self, info: dict, mask) -> dict:
        del info, mask
        return {}

    def __repr__(self):
        return f"GymnasiumHostEnv({self.name!r}, horizon {self.max_episode_steps})"


def wrap_gymnasium(env: str | gymnasium.Env, horizon: int | None = None, *, use_table: bool = True,
                   **make_kwargs) -> TabularEnv | GymnasiumHostEnv:
    """A Gymnasium environment (an id, or a built one) as something cocoa trains on.

    Args:
      env: a Gymnasium id (``"FrozenLake-v1"``, ``"CartPole-v1"``; a ``gymnasium:`` prefix is
        dropped) built with ``gymnasium.make(env, **make_kwargs)``, or a built ``gymnasium.Env``
        (re-made from its spec for the host loop's copies).
      horizon: the episode length bound; by default the registration's ``max_episode_steps``.
      use_table: read the ``P`` table where there is one (False: the host loop even then, e.g. to
        check one path against the other).
      **make_kwargs: Gymnasium's make arguments (``is_slippery=False``, ``map_name="8x8"``, ...).

    Returns:
      a ``TabularEnv`` for environments with a ``P`` table, else a ``GymnasiumHostEnv``.
    """
    if isinstance(env, str):
        env_id = env[len(PREFIX):] if env.startswith(PREFIX) else env
        try:
            spec = gymnasium.spec(env_id)
        except gymnasium.error.Error as error:
            raise ValueError(f"unknown Gymnasium environment {env_id!r} ({error}); "
                             "`gymnasium.pprint_registry()` lists the registered ids") from None
        made = _make(env_id, make_kwargs)
        name = PREFIX + env_id
        make_env = functools.partial(_make, env_id, make_kwargs)
    elif isinstance(env, gymnasium.Env):
        if make_kwargs:
            raise ValueError(f"Gymnasium make arguments {sorted(make_kwargs)} go with an id, not a built "
                             f"{type(env).__name__}")
        made, spec = env, env.spec
        name = PREFIX + (spec.id if spec is not None else type(env.unwrapped).__name__)
        make_env = None if spec is None else functools.partial(gymnasium.make, spec)
    else:
        raise TypeError(f"expected a Gymnasium id or a gymnasium.Env; got {type(env).__name__}")

    if not isinstance(use_table, (bool, np.bool_)):
        raise ValueError(f"use_table must be True or False; got {use_table!r}")
    try:
        if use_table and getattr(made.unwrapped, "P", None) is not None:
            return TabularEnv(from_gymnasium(made, horizon), name=name)
    finally:
        if made is not env:
            made.close()
    if make_env is None:
        raise ValueError(f"{name} has no Gymnasium spec to make the host loop's copies from; pass its id "
                         "(register it with gymnasium.register first)")
    if horizon is None:
        horizon = spec.max_episode_steps if spec is not None else None
        if horizon is None:
            raise ValueError(f"{name} has no max_episode_steps; pass horizon=H (the longest episode, >= 1)")
    return GymnasiumHostEnv(make_env, name=name, horizon=horizon)


def _make(env_id: str, make_kwargs: dict) -> gymnasium.Env:
    try:
        return gymnasium.make(env_id, **make_kwargs)
    except TypeError as error:  # an argument the environment does not take
        raise ValueError(f"gymnasium.make({env_id!r}, {', '.join(f'{k}={v!r}' for k, v in make_kwargs.items())}) "
                         f"failed: {error}") from None


def check_horizon(horizon: Any) -> int:
    if isinstance(horizon, (bool, np.bool_)) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1 (the longest episode); got {horizon!r}")
    return int(horizon)
