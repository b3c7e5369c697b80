"""Discounting chain, bsuite's test of credit assignment over different delays.

Osband et al., "Behaviour Suite for Reinforcement Learning", ICLR 2020 (arXiv 1908.03568),
experiment ``discounting_chain``; docs/environments/discounting_chain.md.

The first action picks one of ``len(delays)`` chains; later actions do nothing. Chain ``c`` pays
its reward once, ``delays[c]`` steps after the start (on the step that brings the step count to
``delays[c]``): 1 for every chain but ``bonus_chain``, which pays ``1 + bonus``. Episodes last
``length`` steps. Observation: ``[one-hot chain (the first entry: not chosen yet), t / length]``.

State: (chain, time, done). Tabular index 0 for the start, ``1 + c * (length - 1) + (t - 1)`` for
chain ``c`` at step ``t >= 1``, and the last index for the absorbing terminal state.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.checks import check_integer
from cocoa.envs.base import Environment, one_hot, params_dataclass
from cocoa.types import TabularMDP


@params_dataclass
class DiscountingParams:
    delays: jax.Array  # int (A,) the step count at which each chain pays
    rewards: jax.Array  # (A,) what each chain pays
    length: jax.Array  # int () steps per episode


@dataclasses.dataclass(frozen=True)
class DiscountingState:
    chain: jax.Array  # -1 before the first action
    time: jax.Array
    done: jax.Array


jax.tree_util.register_dataclass(DiscountingState, data_fields=["chain", "time", "done"], meta_fields=[])


class DiscountingChain(Environment):
    """bsuite's discounting chain; see the module docstring for the rules."""

    name = "DiscountingChain-v0"
    metric_names = ("bonus_rate",)
    example_settings = dict(delays=(1, 2, 5), bonus_chain=2, bonus=0.5, length=6)
    noise_size = 1

    def __init__(self, *, delays: tuple = (1, 3, 10, 30, 100), bonus_chain: int = 0, bonus: float = 0.1,
                 length: int = 100):
        delays = tuple(delays)
        if len(delays) < 2 or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in delays):
            raise ValueError(f"delays must be at least two integers (one chain per action); got {delays!r}")
        check_integer("length", length, 1, why=" (the steps of an episode)")
        if min(delays) < 1 or max(delays) > length:
            raise ValueError(f"delays must lie in [1, length={length}] (a chain pays within the episode); got {delays!r}")
        check_integer("bonus_chain", bonus_chain, 0, len(delays) - 1, why=" (the chain that pays the bonus)")
        if not isinstance(bonus, (int, float, np.number)) or isinstance(bonus, bool) or not np.isfinite(bonus):
            raise ValueError(f"bonus must be a finite number; got {bonus!r}")
        self.delays, self.bonus_chain, self.bonus, self.length = tuple(int(d) for d in delays), int(bonus_chain), float(bonus), int(length)
        self.max_episode_steps = self.length
        rewards = np.ones(len(delays))
        rewards[self.bonus_chain] += self.bonus
        super().__init__(DiscountingParams(delays=jnp.asarray(self.delays, jnp.int32),
                                           rewards=jnp.asarray(rewards, jnp.float32), length=jnp.int32(self.length)))

    @property
    def num_actions(self) -> int:
        return len(self.delays)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (len(self.delays) + 2,)

    def observation_bounds(self):
        return np.zeros(self.observation_shape, np.float32), np.ones(self.observation_shape, np.float32)

    def _observe(self, state, params):
        return jnp.concatenate([one_hot(state.chain + 1, params.delays.shape[0] + 1),
                                jnp.reshape(state.time / params.length, (1,)).astype(jnp.float32)])

    def reset_from_noise(self, noise, params):
        del noise
        state = DiscountingState(chain=jnp.int32(-1), time=jnp.int32(0), done=jnp.bool_(False))
        return self._observe(state, params), state

    def step_from_noise(self, noise, state, action, params):
        del noise
        live = ~state.done
        chain = jnp.where(state.time == 0, jnp.asarray(action, jnp.int32), state.chain)
        time = state.time + 1
        pays = time == params.delays[chain]
        reward = jnp.where(live & pays, params.rewards[chain], 0.0)
        next_state = DiscountingState(chain=jnp.where(live, chain, state.chain).astype(jnp.int32),
                                      time=jnp.where(live, time, state.time).astype(jnp.int32),
                                      done=state.done | (time >= params.length))
        bonus_chain = jnp.argmax(params.rewards)
        info = {"chose_bonus": live & (state.time == 0) & (chain == bonus_chain)}
        return self._observe(next_state, params), next_state, reward, next_state.done, info

    def episode_metrics(self, info, mask):
        del mask
        return {"bonus_rate": info["chose_bonus"].any(axis=-1).astype(jnp.float32)}

    def state_index(self, state, params):
        length = params.length
        index = jnp.where(state.time == 0, 0, 1 + state.chain * (length - 1) + state.time - 1)
        terminal = 1 + params.delays.shape[0] * (length - 1)
        return jnp.where(state.done, terminal, index).astype(jnp.int32)

    def render_text(self, state, params) -> str:
        if bool(state.done):
            return "discounting chain: done"
        chain = int(state.chain)
        where = "choosing a chain" if chain < 0 else f"chain {chain} (pays at step {int(params.delays[chain])})"
        return f"discounting chain: t={int(state.time)}/{int(params.length)}, {where}"

    def build_tabular_mdp(self, params) -> TabularMDP:
        delays, rewards, length = np.asarray(params.delays), np.asarray(params.rewards, np.float64), int(params.length)
        chains = delays.shape[0]
        num_states = 2 + chains * (length - 1)
        terminal = num_states - 1
        index = lambda c, t: 1 + c * (length - 1) + t - 1  # t >= 1
        successors = np.full((num_states, chains), terminal, np.int64)
        reward_of = np.zeros((num_states, chains))
        chain_ids = np.arange(chains)
        if length > 1:
            successors[0] = index(chain_ids, 1)
        reward_of[0] = np.where(delays == 1, rewards, 0.0)
        for c in range(chains):
            for t in range(1, length):
                if t + 1 < length:
                    successors[index(c, t)] = index(c, t + 1)
                reward_of[index(c, t)] = rewards[c] if delays[c] == t + 1 else 0.0

        # Reward values as the float32 params pay them, read as their shortest decimals (1.1, not 1.100000024).
        shortest = lambda value: float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
        reward_of = np.vectorize(shortest)(reward_of)
        reward_values = np.unique(np.append(reward_of, 0.0))
        slot = np.searchsorted(reward_values, reward_of)
        reward_probs = (slot[..., None] == np.arange(reward_values.size)).astype(np.float64)
        reward_probs[terminal] = 0.0
        reward_probs[terminal, :, np.searchsorted(reward_values, 0.0)] = 1.0

        chain_of = np.concatenate([[-1], np.repeat(chain_ids, length - 1), [0]])
        time_of = np.concatenate([[0], np.tile(np.arange(1, length), chains), [length]])
        observations = np.concatenate([np.eye(chains + 1)[chain_of + 1], (time_of / length)[:, None]], axis=1)
        observations[terminal] = 0.0  # never observed
        initial = np.zeros(num_states)
        initial[0] = 1.0
        return TabularMDP(successors=successors[..., None].astype(np.int32),
                          successor_probs=np.ones((num_states, chains, 1)), reward_values=reward_values,
                          reward_probs=reward_probs, initial=initial, observations=observations.astype(np.float32),
                          terminal=np.arange(num_states) == terminal, horizon=length)
