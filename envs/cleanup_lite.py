"""CleanUp-lite: a small two-player public-goods grid (a social dilemma), functional JAX.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (the CleanUp-lite experiments); docs/environments/cleanup_lite.md.

A grid of ``height`` rows by ``width`` columns (5 x 4 by default: 5 rows, 4 columns): column 0 is the
river, the last column the orchard. Apples grow in the orchard only while the river is clean, so
someone has to leave the orchard to clean; each player would rather the other did. Each step, in
this order:

1. dirt spawns with probability ``dirt_probability`` on a river cell without dirt (uniformly);
2. an apple spawns with probability 1 - min(1, dirt / ``dirt_threshold``) on an orchard cell
   without an apple (uniformly), with ``dirt`` the river's dirt count after step 1;
3. a player who is not frozen, on an apple, harvests it (+1; both on one apple: +1/2 each), on dirt
   cleans it;
4. a player who is not frozen and zaps hits the other with probability ``zap_probability`` if it is
   within Manhattan distance ``zap_range`` and not frozen already; the target is frozen for
   ``freeze_steps`` steps, this step's move included (its actions are void meanwhile);
5. players who are not frozen move (up, down, left, right; the grid's edge stops them); then every
   freeze counter counts down by one.

Actions: 0 up, 1 down, 2 left, 3 right, 4 zap, 5 no-op. An episode lasts ``episode_length`` steps
(64). It starts with both players at random cells, no apples and ``initial_dirt`` dirt cells on the
river. Each player observes, from its own view, (4, rows, columns) planes of dirt, apples, itself
and the other, flattened, then its own and the other's remaining freeze over ``freeze_steps``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.checks import check_integer
from cocoa.envs.base import params_dataclass

UP, DOWN, LEFT, RIGHT, ZAP, NOOP = range(6)
NUM_ACTIONS = 6
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0], [0, 0]], np.int32)  # (row, column)


@params_dataclass
class CleanUpParams:
    dirt_probability: jax.Array
    dirt_threshold: jax.Array
    zap_probability: jax.Array
    zap_range: jax.Array
    freeze_steps: jax.Array
    episode_length: jax.Array
    initial_dirt: jax.Array


@dataclasses.dataclass(frozen=True)
class CleanUpState:
    positions: jax.Array  # int (2, 2): each player's (row, column)
    dirt: jax.Array  # bool (rows,): the river
    apples: jax.Array  # bool (rows,): the orchard
    frozen: jax.Array  # int (2,): steps of freeze left
    time: jax.Array
    done: jax.Array


jax.tree_util.register_dataclass(CleanUpState, data_fields=["positions", "dirt", "apples", "frozen", "time", "done"],
                                 meta_fields=[])


def _check_probability(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}")


def _spawn(key, cells, probability):
    """Set one cell of ``cells`` that is False, uniformly, with ``probability`` (none if all are set)."""
    spawn_key, where_key = jax.random.split(key)
    free = ~cells
    choice = jax.random.choice(where_key, cells.shape[0], p=free / jnp.maximum(jnp.sum(free), 1))
    spawn = (jax.random.uniform(spawn_key) < probability) & jnp.any(free)
    return cells.at[choice].set(cells[choice] | spawn)


class CleanUpLite:
    """Two players on a river-and-orchard grid (module docstring), gymnax-style over explicit state
    and params: ``reset(key, params)`` -> (observations (2, D), state); ``step(key, state, actions (2,),
    params)`` -> (observations, state, rewards (2,), done). ``jax.vmap`` batches it."""

    name = "CleanUpLite-v0"
    num_players = 2
    num_actions = NUM_ACTIONS

    def __init__(self, *, rows: int = 5, columns: int = 4, episode_length: int = 64, dirt_probability: float = 0.35,
                 dirt_threshold: int = 3, zap_probability: float = 0.9, zap_range: int = 2, freeze_steps: int = 5,
                 initial_dirt: int = 3):
        check_integer("rows", rows, 1)
        check_integer("columns", columns, 2, why=" (a river and an orchard column)")
        check_integer("episode_length", episode_length, 1)
        check_integer("dirt_threshold", dirt_threshold, 1)
        check_integer("zap_range", zap_range, 0)
        check_integer("freeze_steps", freeze_steps, 1)
        check_integer("initial_dirt", initial_dirt, 0, rows, why=" (dirt cells on the river)")
        _check_probability("dirt_probability", dirt_probability)
        _check_probability("zap_probability", zap_probability)
        self.rows, self.columns = int(rows), int(columns)
        self.observation_shape = (4 * rows * columns + 2,)
        self.default_params = CleanUpParams(
            dirt_probability=jnp.float32(dirt_probability), dirt_threshold=jnp.float32(dirt_threshold),
            zap_probability=jnp.float32(zap_probability), zap_range=jnp.int32(zap_range),
            freeze_steps=jnp.int32(freeze_steps), episode_length=jnp.int32(episode_length),
            initial_dirt=jnp.int32(initial_dirt))

    def _observe(self, state, params):
        rows, columns = self.rows, self.columns
        planes = jnp.zeros((4, rows, columns), jnp.float32)
        planes = planes.at[0, :, 0].set(state.dirt.astype(jnp.float32))
        planes = planes.at[1, :, columns - 1].set(state.apples.astype(jnp.float32))

        def view(me):
            other = 1 - me
            own = planes.at[2, state.positions[me, 0], state.positions[me, 1]].set(1.0)
            own = own.at[3, state.positions[other, 0], state.positions[other, 1]].set(1.0)
            freeze = jnp.stack([state.frozen[me], state.frozen[other]]) / params.freeze_steps
            return jnp.concatenate([own.reshape(-1), freeze.astype(jnp.float32)])

        return jnp.stack([view(0), view(1)])

    def reset(self, key, params=None):
        params = self.default_params if params is None else params
        position_key, dirt_key = jax.random.split(key)
        cells = jax.random.randint(position_key, (2,), 0, self.rows * self.columns)
        positions = jnp.stack([cells // self.columns, cells % self.columns], axis=-1).astype(jnp.int32)
        order = jax.random.permutation(dirt_key, self.rows)
        dirt = jnp.zeros(self.rows, bool).at[order].set(jnp.arange(self.rows) < params.initial_dirt)
        state = CleanUpState(positions=positions, dirt=dirt, apples=jnp.zeros(self.rows, bool),
                             frozen=jnp.zeros(2, jnp.int32), time=jnp.int32(0), done=jnp.bool_(False))
        return self._observe(state, params), state

    def step(self, key, state, actions, params=None):
        params = self.default_params if params is None else params
        actions = jnp.asarray(actions, jnp.int32)
        dirt_key, apple_key, zap_key = jax.random.split(key, 3)
        live = ~state.done
        # 1-2. Dirt, then apples (fewer the dirtier the river).
        dirt = _spawn(dirt_key, state.dirt, params.dirt_probability)
        apple_probability = 1.0 - jnp.minimum(1.0, jnp.sum(dirt) / params.dirt_threshold)
        apples = _spawn(apple_key, state.apples, apple_probability)
        # 3. Harvest and clean, by players not frozen.
        active = state.frozen == 0
        row, column = state.positions[:, 0], state.positions[:, 1]
        on_apple = active & (column == self.columns - 1) & apples[row]
        on_dirt = active & (column == 0) & dirt[row]
        shared = on_apple[0] & on_apple[1] & (row[0] == row[1])
        rewards = on_apple.astype(jnp.float32) * jnp.where(shared, 0.5, 1.0)
        apples = apples & ~jnp.any((jnp.arange(self.rows)[:, None] == row[None, :]) & on_apple[None, :], axis=1)
        dirt = dirt & ~jnp.any((jnp.arange(self.rows)[:, None] == row[None, :]) & on_dirt[None, :], axis=1)
        # 4. Zaps: each active zapper hits the other, not already frozen, within range, w.p. zap_probability.
        distance = jnp.sum(jnp.abs(state.positions[0] - state.positions[1]))
        hit = (active & (actions == ZAP) & (distance <= params.zap_range)
               & (jax.random.uniform(zap_key, (2,)) < params.zap_probability))
        zapped = hit[::-1] & active  # player i is zapped by the other's hit
        frozen = jnp.where(zapped, params.freeze_steps, state.frozen)
        # 5. Moves by players not frozen, then the freezes count down.
        moving = (frozen == 0)[:, None]
        moved = state.positions + jnp.where(moving, jnp.asarray(MOVES)[actions], 0)
        positions = jnp.clip(moved, 0, jnp.array([self.rows - 1, self.columns - 1]))
        frozen = jnp.maximum(frozen - 1, 0)
        time = state.time + live.astype(jnp.int32)
        keep = lambda new, old: jnp.where(live, new, old)
        next_state = CleanUpState(positions=keep(positions, state.positions).astype(jnp.int32),
                                  dirt=keep(dirt, state.dirt), apples=keep(apples, state.apples),
                                  frozen=keep(frozen, state.frozen).astype(jnp.int32), time=time,
                                  done=state.done | (time >= params.episode_length))
        rewards = jnp.where(live, rewards, 0.0)
        return self._observe(next_state, params), next_state, rewards, next_state.done

    def __repr__(self):
        return f"CleanUpLite(rows={self.rows}, columns={self.columns})"
