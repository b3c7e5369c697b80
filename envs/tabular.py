"""Any :class:`~cocoa.types.TabularMDP` as a functional environment that samples from its table.

The table is the environment's parameters, so ``reset`` / ``step`` are pure and jit like every
other cocoa environment, and the oracle reads the very same table::

    from cocoa import envs
    env = envs.TabularEnv(envs.from_gymnasium("FrozenLake-v1", is_slippery=True))
    env = envs.make("gymnasium:FrozenLake-v1", horizon=100, is_slippery=True)   # the same

A step in state ``s`` with action ``a`` draws the reward slot ``k ~ reward_probs[s, a]`` and the
successor ``successors[s, a, n]`` with ``n ~ successor_probs[s, a]``, independently (the
``TabularMDP`` semantics), from two uniforms; the observation is ``observations[s']``. The episode
ends on entering a terminal state or after ``horizon`` steps. ``state_index`` is the table's own
state index, so exact (``-gt``) estimators, ``cocoa gradients`` and shadow training all apply.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.envs.base import Environment
from cocoa.sampling import sample_inverse_cdf
from cocoa.types import TabularMDP


@dataclasses.dataclass(frozen=True)
class TabularState:
    index: jax.Array  # int32 () the state of the table
    time: jax.Array  # int32 () steps taken
    done: jax.Array  # bool ()


jax.tree_util.register_dataclass(TabularState, data_fields=["index", "time", "done"], meta_fields=[])


class TabularEnv(Environment):
    """A ``TabularMDP`` stepped by sampling; its parameters are the MDP itself.

    Args:
      mdp: the table (e.g. from ``from_gymnasium``); validated on construction.
      name: what the environment is called in reports and errors.
    """

    noise_size = 2  # the reward slot and the successor (the initial state reuses the first)

    def __init__(self, mdp: TabularMDP, *, name: str = "TabularMDP"):
        if not isinstance(mdp, TabularMDP):
            raise TypeError(f"TabularEnv needs a cocoa.types.TabularMDP; got {type(mdp).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string; got {name!r}")
        self.name = name
        self.max_episode_steps = int(mdp.horizon)
        super().__init__(mdp)

    @property
    def num_actions(self) -> int:
        return int(self.default_params.num_actions)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.default_params.observations)[1:])

    def observation_bounds(self):
        observations = np.asarray(self.default_params.observations, np.float32)
        return observations.min(axis=0), observations.max(axis=0)

    def reset_from_noise(self, noise, params):
        index = sample_inverse_cdf(jnp.asarray(params.initial, jnp.float32), noise[0])
        state = TabularState(index=index, time=jnp.int32(0), done=jnp.bool_(False))
        return self._observe(index, params), state

    def step_from_noise(self, noise, state, action, params):
        slot = sample_inverse_cdf(jnp.asarray(params.reward_probs, jnp.float32)[state.index, action], noise[0])
        choice = sample_inverse_cdf(jnp.asarray(params.successor_probs, jnp.float32)[state.index, action], noise[1])
        live = ~state.done
        index = jnp.where(live, jnp.asarray(params.successors)[state.index, action, choice], state.index)
        time = state.time + live.astype(jnp.int32)
        done = state.done | jnp.asarray(params.terminal)[index] | (time >= params.horizon)
        reward = jnp.where(live, jnp.asarray(params.reward_values, jnp.float32)[slot], 0.0)
        next_state = TabularState(index=index.astype(jnp.int32), time=time, done=done)
        return self._observe(index, params), next_state, reward, done, {}

    def state_index(self, state, params):
        del params
        return state.index

    def build_tabular_mdp(self, params) -> TabularMDP:
        return params

    @staticmethod
    def _observe(index, params):
        return jnp.asarray(params.observations, jnp.float32)[index]

    def __repr__(self):
        mdp = self.default_params
        return (f"TabularEnv({self.name!r}: {mdp.num_states} states, {mdp.num_actions} actions, "
                f"horizon {mdp.horizon})")
