"""Umbrella chain, bsuite's credit-assignment chain with noise and distractors.

Osband et al., "Behaviour Suite for Reinforcement Learning", ICLR 2020 (arXiv 1908.03568),
experiments ``umbrella_length`` and ``umbrella_distract``; docs/environments/umbrella_chain.md.

An episode lasts ``length`` steps. At the start it is decided, each with probability 1/2, whether
the umbrella will be needed and whether the agent holds one. The agent's first action (0 or 1)
sets whether it holds the umbrella; no later action has any effect. The last step pays +1 if
holding matches needing, else -1. Every earlier step pays an independent random +1 or -1
(``noisy_rewards``; else 0), noise that carries no information about the first action. The
observation is ``[need, have, 1 - t / length, distractor bits]``: ``distractors`` bits drawn
afresh, uniformly, at every step.

State: (time t, need, have, distractor bits, done). Tabular index
``((t * 2 + need) * 2 + have) * 2^n + code(bits)`` and the last index for the absorbing terminal
state. The tabular form holds 2^n successors per state-action, so it exists while
``4 length 4^n <= MAX_TABLE_ENTRIES`` (length 20: up to 7 distractor bits; length 100: up to 6);
beyond that the environment still runs (and trains), but ``tabular_mdp`` is refused.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.checks import check_integer
from cocoa.envs.base import Environment, params_dataclass
from cocoa.types import TabularMDP

NUM_ACTIONS = 2  # 0: no umbrella, 1: umbrella (only the first action counts)
# The tabular form stores (states x actions x successors) entries; 2,000,000 keep it under ~50 MB.
MAX_TABLE_ENTRIES = 2_000_000


@params_dataclass
class UmbrellaParams:
    length: jax.Array  # int () steps per episode
    noise_scale: jax.Array  # () 1.0: intermediate rewards are +-1 at random; 0.0: they are 0


@dataclasses.dataclass(frozen=True)
class UmbrellaState:
    time: jax.Array
    need: jax.Array
    have: jax.Array
    bits: jax.Array  # bool (distractors,)
    done: jax.Array


jax.tree_util.register_dataclass(UmbrellaState, data_fields=["time", "need", "have", "bits", "done"],
                                 meta_fields=[])


class UmbrellaChain(Environment):
    """bsuite's umbrella chain; see the module docstring for the rules."""

    name = "UmbrellaChain-v0"
    metric_names = ("correct_rate",)
    example_settings = dict(length=6, distractors=2, noisy_rewards=False)

    def __init__(self, *, length: int = 20, distractors: int = 0, noisy_rewards: bool = True):
        check_integer("length", length, 1, why=" (the steps of an episode)")
        check_integer("distractors", distractors, 0, why=" (the number of distractor bits)")
        if not isinstance(noisy_rewards, (bool, np.bool_)):
            raise ValueError(f"noisy_rewards must be True or False; got {noisy_rewards!r}")
        self.length, self.distractors, self.noisy_rewards = int(length), int(distractors), bool(noisy_rewards)
        self.max_episode_steps = self.length
        self.noise_size = 2 + self.distractors  # need / have (reset) or reward noise (step), then the bits
        super().__init__(UmbrellaParams(length=jnp.int32(self.length),
                                        noise_scale=jnp.float32(1.0 if self.noisy_rewards else 0.0)))

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (3 + self.distractors,)

    def observation_bounds(self):
        return np.zeros(self.observation_shape, np.float32), np.ones(self.observation_shape, np.float32)

    @property
    def table_entries(self) -> int:
        return 4 * self.length * 4 ** self.distractors

    @property
    def is_tabular(self) -> bool:
        return self.table_entries <= MAX_TABLE_ENTRIES

    def _observe(self, state, params):
        return jnp.concatenate([
            jnp.stack([state.need, state.have, 1.0 - state.time / params.length]).astype(jnp.float32),
            state.bits.astype(jnp.float32)])

    def reset_from_noise(self, noise, params):
        state = UmbrellaState(time=jnp.int32(0), need=(noise[0] < 0.5).astype(jnp.int32),
                              have=(noise[1] < 0.5).astype(jnp.int32), bits=noise[2:] < 0.5, done=jnp.bool_(False))
        return self._observe(state, params), state

    def step_from_noise(self, noise, state, action, params):
        live = ~state.done
        have = jnp.where(state.time == 0, jnp.asarray(action, jnp.int32), state.have)
        time = state.time + 1
        last = time >= params.length
        final = jnp.where(have == state.need, 1.0, -1.0)
        noise_reward = params.noise_scale * jnp.where(noise[0] < 0.5, 1.0, -1.0)
        reward = jnp.where(live, jnp.where(last, final, noise_reward), 0.0)
        next_state = UmbrellaState(
            time=jnp.where(live, time, state.time).astype(jnp.int32), need=state.need,
            have=jnp.where(live, have, state.have).astype(jnp.int32),
            bits=jnp.where(live, noise[2:] < 0.5, state.bits), done=state.done | last)
        info = {"correct": live & last & (have == state.need), "finished": live & last}
        return self._observe(next_state, params), next_state, reward, next_state.done, info

    def episode_metrics(self, info, mask):
        del mask
        return {"correct_rate": info["correct"].any(axis=-1).astype(jnp.float32)}

    def state_index(self, state, params):
        del params
        if not self.is_tabular:
            return jnp.int32(-1)
        code = jnp.sum(state.bits.astype(jnp.int32) * (2 ** jnp.arange(self.distractors, dtype=jnp.int32)))
        index = ((state.time * 2 + state.need) * 2 + state.have) * 2 ** self.distractors + code
        return jnp.where(state.done, 4 * self.length * 2 ** self.distractors, index).astype(jnp.int32)

    def render_text(self, state, params) -> str:
        if bool(state.done):
            return "umbrella chain: done"
        bits = "".join(str(int(b)) for b in np.asarray(state.bits))
        return (f"umbrella chain: t={int(state.time)}/{int(params.length)}  need={int(state.need)}  "
                f"have={int(state.have)}" + (f"  distractors {bits}" if bits else ""))

    def build_tabular_mdp(self, params) -> TabularMDP:
        length, codes = int(params.length), 2 ** self.distractors
        if not self.is_tabular or length != self.length:
            raise ValueError(f"UmbrellaChain-v0 with length={length} and {self.distractors} distractor bits has "
                             f"{4 * length * codes:,} states x {codes} successors; the tabular form is built up to "
                             f"4 length 4^n <= {MAX_TABLE_ENTRIES:,} table entries (fewer distractors, or a "
                             "shorter chain)")
        noisy = float(params.noise_scale) != 0.0
        num_live = 4 * length * codes
        terminal = num_live
        num_states = num_live + 1
        t, need, have, code = np.unravel_index(np.arange(num_live), (length, 2, 2, codes))
        action = np.arange(NUM_ACTIONS)[None, :]
        next_have = np.where(t[:, None] == 0, action, have[:, None])  # (S, A)
        last = (t + 1 >= length)[:, None]
        base = ((t[:, None] + 1) * 2 + need[:, None]) * 2 + next_have  # (S, A) index without the bits
        successors = np.where(last[..., None], terminal, base[..., None] * codes + np.arange(codes))
        successors = np.concatenate([successors, np.full((1, NUM_ACTIONS, codes), terminal)])
        successor_probs = np.full(successors.shape, 1.0 / codes)
        successor_probs[-1] = 0.0
        successor_probs[-1, :, 0] = 1.0
        successors[-1] = terminal

        reward_values = np.array([-1.0, 0.0, 1.0])
        reward_probs = np.zeros((num_states, NUM_ACTIONS, 3))
        correct = np.broadcast_to(next_have == need[:, None], last.shape[:1] + (NUM_ACTIONS,))
        final = np.where(correct, 2, 0)  # slot of +1 or -1
        live_probs = reward_probs[:-1]
        for a in range(NUM_ACTIONS):
            rows = np.arange(num_live)
            live_probs[rows[last[:, 0]], a, final[last[:, 0], a]] = 1.0
            middle = rows[~last[:, 0]]
            if noisy:
                live_probs[middle, a, 0] = live_probs[middle, a, 2] = 0.5
            else:
                live_probs[middle, a, 1] = 1.0
        reward_probs[-1, :, 1] = 1.0

        bits = (code[:, None] >> np.arange(self.distractors)) & 1
        observations = np.concatenate([np.stack([need, have, 1.0 - t / length], axis=1), bits], axis=1)
        # The terminal state, never observed, is the zero vector.
        observations = np.concatenate([observations, np.zeros((1, 3 + self.distractors))]).astype(np.float32)
        initial = np.zeros(num_states)
        initial[:4 * codes] = 1.0 / (4 * codes)  # t = 0: need, have and the bits uniform
        return TabularMDP(successors=successors.astype(np.int32), successor_probs=successor_probs,
                          reward_values=reward_values, reward_probs=reward_probs, initial=initial,
                          observations=observations, terminal=np.arange(num_states) == terminal, horizon=length)
