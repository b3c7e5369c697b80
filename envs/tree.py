"""Tree with state overlap, the COCOA paper's environment for gradient variance vs. state overlap.

Meulemans et al. 2023, "Would I have gotten that reward? Long-term credit assignment by
counterfactual contribution analysis", App. (tree environment); docs/environments/.

An episode walks down a tree of ``depth`` levels, one level per step, choosing one of
``branching`` actions at each node, so it lasts exactly ``depth`` steps. Level ``i`` holds ``n_i``
nodes, with::

    n_0 = 1,    n_{i+1} = max(n_i * (b - o), b),

and the child of node ``(i, pos)`` under action ``a`` is::

    (i + 1, (pos * (b - o) + a - floor((b - o) / 2)) mod n_{i+1}),

where ``b = branching`` and ``o = overlap``. Neighbouring parents (``pos`` and ``pos + 1``, on a
ring) thus share ``o`` children: ``o = 0`` gives a proper tree, in which every state has a unique
action history, and ``o = b`` makes every parent at a level lead to the same ``b`` children. (When
a level has fewer than ``2b - o`` nodes, e.g. every level below the root for ``o = b - 1``, the
ring is too short and neighbouring parents share all of them.)

Each (state, action) pays a deterministic integer reward in {-2, ..., 2}, read from a seeded hash
table (drawn once with ``numpy.random.default_rng(reward_seed)``). The action taken at the last level
``depth - 1`` is paid, and then the episode ends in a single absorbing terminal state: the leaves
at level ``depth`` are not states.

State: (level, position, done). Tabular index ``offset_i + pos`` for a node at level ``i < depth``
(``offset_i = n_0 + ... + n_{i-1}``) and the last index for the terminal state. The observation
is the one-hot of that index. The dynamics are deterministic (``noise_size`` = 1, unused).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.checks import check_integer
from cocoa.envs.base import Environment, one_hot, params_dataclass
from cocoa.types import TabularMDP

REWARD_RANGE = (-2, 2)  # the hash table's rewards are integers in [-2, 2]
# The tabular form holds an (S, S) one-hot observation table; larger trees would not fit in memory.
MAX_STATES = 10_000


@params_dataclass
class TreeParams:
    rewards: jax.Array  # float (S - 1, b) reward of each (non-terminal state, action)
    level_sizes: jax.Array  # int (depth + 1,) n_0 .. n_depth (n_depth: the leaves, not states)
    offsets: jax.Array  # int (depth,) tabular index of node 0 of each level
    stride: jax.Array  # int () b - o, the shift between neighbouring parents' children


@dataclasses.dataclass(frozen=True)
class TreeState:
    level: jax.Array
    position: jax.Array
    done: jax.Array


jax.tree_util.register_dataclass(TreeState, data_fields=["level", "position", "done"], meta_fields=[])


def level_sizes(depth: int, branching: int, overlap: int) -> tuple[int, ...]:
    """(n_0, ..., n_depth): n_0 = 1, n_{i+1} = max(n_i (b - o), b); level ``depth`` holds the leaves."""
    sizes = [1]
    for _ in range(depth):
        sizes.append(max(sizes[-1] * (branching - overlap), branching))
    return tuple(sizes)


class Tree(Environment):
    """Tree with state overlap; see the module docstring for the rules."""

    name = "Tree-v0"
    example_settings = dict(depth=3, branching=4, overlap=2, reward_seed=5)
    noise_size = 1

    def __init__(self, *, depth: int = 4, branching: int = 6, overlap: int = 0, reward_seed: int = 0):
        check_integer("depth", depth, 1, why=" (the number of steps of an episode)")
        check_integer("branching", branching, 2, why=" (the number of actions)")
        check_integer("overlap", overlap, 0, int(branching), why=f" (at most branching = {branching})")
        check_integer("reward_seed", reward_seed, 0, why=" (the seed of the reward table)")
        self.depth, self.branching, self.overlap, self.reward_seed = int(depth), int(branching), int(overlap), int(reward_seed)
        sizes = level_sizes(self.depth, self.branching, self.overlap)
        # Node counts of the levels that are states (the leaves at level `depth` are not).
        self.node_counts = sizes[:-1]
        num_live = sum(self.node_counts)
        if num_live + 1 > MAX_STATES:
            raise ValueError(
                f"depth={depth}, branching={branching}, overlap={overlap} gives {num_live + 1} states; at most "
                f"{MAX_STATES} are supported (the one-hot observations and the tabular form grow as states^2)")
        self.num_states = num_live + 1
        self.terminal_state = num_live
        self.max_episode_steps = self.depth
        # The seeded hash table: one integer reward per (non-terminal state, action).
        self.reward_table = np.random.default_rng(self.reward_seed).integers(
            REWARD_RANGE[0], REWARD_RANGE[1] + 1, size=(num_live, self.branching))
        super().__init__(TreeParams(
            rewards=jnp.asarray(self.reward_table, jnp.float32),
            level_sizes=jnp.asarray(sizes, jnp.int32),
            offsets=jnp.asarray(np.cumsum((0,) + self.node_counts[:-1]), jnp.int32),
            stride=jnp.int32(self.branching - self.overlap)))

    @property
    def num_actions(self) -> int:
        return self.branching

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (self.num_states,)

    def observation_bounds(self):
        """One-hot states: [0, 1]."""
        return np.zeros(self.observation_shape, np.float32), np.ones(self.observation_shape, np.float32)

    def reset_from_noise(self, noise, params):
        del noise
        state = TreeState(level=jnp.int32(0), position=jnp.int32(0), done=jnp.bool_(False))
        return one_hot(self.state_index(state, params), params.rewards.shape[0] + 1), state

    def step_from_noise(self, noise, state, action, params):
        del noise
        depth = params.offsets.shape[0]
        action = jnp.asarray(action, jnp.int32)
        level = jnp.minimum(state.level, depth - 1)
        reward = params.rewards[params.offsets[level] + state.position, action]
        child = jnp.mod(state.position * params.stride + action - params.stride // 2,
                        params.level_sizes[level + 1])
        last = level + 1 >= depth
        live = ~state.done
        next_state = TreeState(
            level=jnp.where(live, level + 1, state.level).astype(jnp.int32),
            position=jnp.where(live, jnp.where(last, 0, child), state.position).astype(jnp.int32),
            done=state.done | last)
        obs = one_hot(self.state_index(next_state, params), params.rewards.shape[0] + 1)
        return obs, next_state, jnp.where(live, reward, 0.0), next_state.done, {}

    def render_text(self, state, params) -> str:
        if bool(state.done):
            return "tree: done"
        return f"tree: level {int(state.level)}, node {int(state.position)} of {int(params.level_sizes[int(state.level)])}"

    def state_index(self, state, params):
        terminal = params.rewards.shape[0]
        depth = params.offsets.shape[0]
        live_index = params.offsets[jnp.minimum(state.level, depth - 1)] + state.position
        return jnp.where(state.done, terminal, live_index).astype(jnp.int32)

    def build_tabular_mdp(self, params) -> TabularMDP:
        rewards = np.asarray(params.rewards, np.float64)
        num_live, branching = rewards.shape
        num_states = num_live + 1
        stride = int(params.stride)
        sizes = np.asarray(params.level_sizes, np.int64)
        depth = sizes.shape[0] - 1
        first = np.concatenate([[0], np.cumsum(sizes[:-1])])  # tabular index of node 0 of each level

        successors = np.full((num_states, branching), num_live, np.int64)  # default: the terminal state
        actions = np.arange(branching)
        for level in range(depth - 1):  # the last level's successors stay the terminal state
            parents = np.arange(sizes[level])
            children = (parents[:, None] * stride + actions[None, :] - stride // 2) % sizes[level + 1]
            successors[first[level]:first[level + 1]] = first[level + 1] + children

        reward_values = np.unique(np.append(rewards, 0.0))
        slot = np.searchsorted(reward_values, np.concatenate([rewards, np.zeros((1, branching))]))
        reward_probs = (slot[..., None] == np.arange(len(reward_values))).astype(np.float64)
        initial = np.zeros(num_states)
        initial[0] = 1.0
        return TabularMDP(
            successors=successors[..., None].astype(np.int32),
            successor_probs=np.ones((num_states, branching, 1)),
            reward_values=reward_values,
            reward_probs=reward_probs,
            initial=initial,
            observations=np.eye(num_states, dtype=np.float32),
            terminal=np.arange(num_states) == num_live,
            horizon=depth)
