"""Linear key-to-door ("treasure conveyor"), the COCOA paper's main credit-assignment task.

Meulemans et al. 2023, "Would I have gotten that reward? Long-term credit assignment by
counterfactual contribution analysis", Sec. 4 and App. (linear key-to-door); docs/environments/.

A corridor of ``length`` cells is traversed one cell per step, so an episode lasts exactly
``length`` steps. Cell 0 holds a key, cells 1..L-3 each hold nothing, a left apple or a right apple
(a layout fixed by ``layout_seed``), cell L-2 is a door and cell L-1 the treasure room. Picking
the matching side of an apple pays a distractor reward drawn uniformly from
``distractor_rewards``; the treasure pays ``treasure_reward`` at the last step if the door was
opened with the key. Every reward is multiplied by ``reward_scale`` (default 23 / length, as in
the paper, so the total stays comparable across lengths).

The paper's two variants are settings: *reward aliasing* is a ``treasure_reward`` equal to one of
the ``distractor_rewards`` (then COCOA-reward cannot tell the treasure from an apple);
*reward switch* is ``door_opens_with_key=True`` (the door opens by itself for a key holder) with
the treasure's sign flipped part-way through training (``cocoa train --env-change
U:treasure_reward=-0.2``; ``train(..., env_changes={U: params})``).

State: (position, flag, done) where the flag is "key held" on cells 0..L-2 and "door opened" on
the last cell. Tabular index ``2 * position + flag``; ``2 * length`` is the absorbing terminal
state, entered after the last step.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.envs.base import Environment, one_hot, params_dataclass
from cocoa.types import TabularMDP

# Actions.
PICK_KEY, PICK_LEFT, PICK_RIGHT, OPEN_DOOR = 0, 1, 2, 3
ACTION_NAMES = ("pick key", "pick left", "pick right", "open door")
NUM_ACTIONS = len(ACTION_NAMES)
# Cell contents (the observation shows the treasure only once the door is open).
EMPTY, KEY, LEFT_APPLE, RIGHT_APPLE, DOOR, TREASURE = range(6)
_NUM_CONTENTS = 6


@params_dataclass
class KeyToDoorParams:
    layout: jax.Array  # int (L,) content of each cell
    distractor_rewards: jax.Array  # (2,) the two equally likely apple rewards, already scaled
    treasure_reward: jax.Array  # () already scaled
    door_opens_with_key: jax.Array  # bool (): the door opens by itself for a key holder (the reward-switch variant)


@dataclasses.dataclass(frozen=True)
class KeyToDoorState:
    position: jax.Array
    flag: jax.Array
    done: jax.Array


jax.tree_util.register_dataclass(KeyToDoorState, data_fields=["position", "flag", "done"],
                                 meta_fields=[])


class LinearKeyToDoor(Environment):
    """Linear key-to-door; see the module docstring for the rules."""

    name = "LinearKeyToDoor-v0"
    metric_names = ("treasure_rate", "distractor_rate")
    example_settings = dict(length=9, layout_seed=3, distractor_prob=0.6, treasure_reward=-0.5,
                            distractor_rewards=(0.3, 1.7), door_opens_with_key=True)
    noise_size = 1

    def __init__(self, *, length: int = 23, distractor_prob: float = 0.8, layout_seed: int = 0,
                 treasure_reward: float = 0.2, distractor_rewards: tuple = (0.1, 0.9),
                 reward_scale: float | None = None, door_opens_with_key: bool = False):
        if not isinstance(length, (int, np.integer)) or length < 3:
            raise ValueError(f"length must be an integer >= 3 (key, door, treasure); got {length!r}")
        if not 0.0 <= distractor_prob <= 1.0:
            raise ValueError(f"distractor_prob must lie in [0, 1]; got {distractor_prob!r}")
        distractor_rewards = tuple(float(r) for r in distractor_rewards)
        if len(distractor_rewards) != 2:
            raise ValueError(f"distractor_rewards must hold two values; got {distractor_rewards!r}")
        if not isinstance(door_opens_with_key, (bool, np.bool_)):
            raise ValueError(f"door_opens_with_key must be True or False; got {door_opens_with_key!r}")
        if reward_scale is None:
            reward_scale = 23.0 / length
        self.length = int(length)
        self.max_episode_steps = self.length
        self.distractor_prob = float(distractor_prob)
        self.layout_seed = int(layout_seed)
        self.reward_scale = float(reward_scale)
        layout = make_layout(self.length, self.distractor_prob, self.layout_seed)
        super().__init__(KeyToDoorParams(
            layout=jnp.asarray(layout, jnp.int32),
            distractor_rewards=jnp.asarray(distractor_rewards, jnp.float32) * self.reward_scale,
            # Scaled as the apples are (float32 value x scale), so that equal values stay equal (aliasing).
            treasure_reward=jnp.asarray(treasure_reward, jnp.float32) * self.reward_scale,
            door_opens_with_key=jnp.bool_(door_opens_with_key)))

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def observation_bounds(self):
        """Every entry is a fraction of the corridor or a one-hot flag: [0, 1]."""
        return np.zeros(self.observation_shape, np.float32), np.ones(self.observation_shape, np.float32)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (1 + _NUM_CONTENTS + 2,)

    def reset_from_noise(self, noise, params):
        del noise
        state = KeyToDoorState(position=jnp.int32(0), flag=jnp.int32(0), done=jnp.bool_(False))
        return observation(state.position, state.flag, params.layout), state

    def step_from_noise(self, noise, state, action, params):
        length = params.layout.shape[0]
        action = jnp.asarray(action)
        position = jnp.minimum(state.position, length - 1)
        content = params.layout[position]
        picked_apple = (((content == LEFT_APPLE) & (action == PICK_LEFT))
                        | ((content == RIGHT_APPLE) & (action == PICK_RIGHT)))
        treasure = (position == length - 1) & (state.flag == 1)
        distractor = params.distractor_rewards[(noise[0] >= 0.5).astype(jnp.int32)]
        reward = jnp.where(picked_apple, distractor, 0.0) + jnp.where(treasure, params.treasure_reward, 0.0)
        flag = jnp.select(
            [position == 0, position == length - 2],
            [(action == PICK_KEY).astype(jnp.int32),
             state.flag * ((action == OPEN_DOOR) | params.door_opens_with_key)],
            state.flag)
        live = ~state.done
        next_state = KeyToDoorState(
            position=jnp.where(live, state.position + 1, state.position),
            flag=jnp.where(live, flag, state.flag).astype(jnp.int32),
            done=state.done | (state.position + 1 >= length))
        info = {
            "treasure": treasure & live,
            "apple": ((content == LEFT_APPLE) | (content == RIGHT_APPLE)) & live,
            "apple_picked": picked_apple & live,
        }
        obs = observation(next_state.position, next_state.flag, params.layout)
        return obs, next_state, jnp.where(live, reward, 0.0), next_state.done, info

    def render_text(self, state, params) -> str:
        """The corridor, one character a cell (k key, < > apples, D door, T treasure, . empty), the
        agent as @, then what it holds: e.g. ``k<@.>DT  key held``."""
        layout, position = np.asarray(params.layout), int(state.position)
        cells = [".k<>DT"[content] for content in layout]
        if position < len(cells):
            cells[position] = "@"
        if bool(state.done):
            return "".join(cells) + "  done"
        flag = "door open" if position == len(cells) - 1 else "key held"
        return "".join(cells) + (f"  {flag}" if int(state.flag) else "")

    def state_index(self, state, params):
        length = params.layout.shape[0]
        return jnp.where(state.done, 2 * length, 2 * state.position + state.flag).astype(jnp.int32)

    def episode_metrics(self, info, mask):
        del mask
        apples = info["apple"].sum(axis=-1)
        return {
            "treasure_rate": info["treasure"].any(axis=-1).astype(jnp.float32),
            "distractor_rate": info["apple_picked"].sum(axis=-1) / jnp.maximum(apples, 1),
        }

    def build_tabular_mdp(self, params) -> TabularMDP:
        layout = np.asarray(params.layout)
        length = layout.shape[0]
        num_states, terminal_state = 2 * length + 1, 2 * length
        position = np.repeat(np.arange(length), 2)  # (2L,) position of each live state
        flag = np.tile(np.arange(2), length)
        content = layout[position]
        action = np.arange(NUM_ACTIONS)[None, :]
        c, p, f = content[:, None], position[:, None], flag[:, None]

        opens = (action == OPEN_DOOR) | bool(params.door_opens_with_key)
        next_flag = np.where(p == 0, action == PICK_KEY, np.where(p == length - 2, f * opens, f))
        next_state = np.where(p == length - 1, terminal_state, 2 * (p + 1) + next_flag)
        successors = np.concatenate([next_state, np.full((1, NUM_ACTIONS), terminal_state)])[..., None]

        # The rewards as ``step`` pays them (the float32 params), each read as its shortest decimal
        # (0.1, not 0.10000000149), so that the table and the samples agree and the values keep
        # their common lattice (the oracle's law of the return needs one).
        shortest = lambda value: float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
        distractor_values = np.array([shortest(v) for v in np.asarray(params.distractor_rewards)])
        treasure_value = shortest(params.treasure_reward)
        reward_values = np.unique(np.concatenate([[0.0], distractor_values, [treasure_value]]))
        slot = {value: i for i, value in enumerate(reward_values)}
        picked = ((c == LEFT_APPLE) & (action == PICK_LEFT)) | ((c == RIGHT_APPLE) & (action == PICK_RIGHT))
        treasure = np.broadcast_to((p == length - 1) & (f == 1), picked.shape)
        reward_probs = np.zeros((num_states, NUM_ACTIONS, len(reward_values)))
        live = reward_probs[:-1]
        live[..., slot[0.0]] += ~picked & ~treasure
        live[..., slot[treasure_value]] += treasure
        for value in distractor_values:  # two equally likely values (maybe equal)
            live[..., slot[value]] += 0.5 * picked
        reward_probs[-1, :, slot[0.0]] = 1.0

        all_positions = np.append(position, length)
        all_flags = np.append(flag, 0)
        observations = np.asarray(_observations(jnp.asarray(all_positions), jnp.asarray(all_flags), params.layout))
        initial = np.zeros(num_states)
        initial[0] = 1.0
        return TabularMDP(
            successors=successors.astype(np.int32),
            successor_probs=np.ones((num_states, NUM_ACTIONS, 1)),
            reward_values=reward_values,
            reward_probs=reward_probs,
            initial=initial,
            observations=observations,
            terminal=np.arange(num_states) == terminal_state,
            horizon=length)


def make_layout(length: int, distractor_prob: float, seed: int) -> np.ndarray:
    """Cell contents: key, apples (left / right equally likely, each cell w.p. distractor_prob), door, treasure."""
    rng = np.random.default_rng(seed)
    middle = rng.choice([EMPTY, LEFT_APPLE, RIGHT_APPLE], size=length - 3,
                        p=[1.0 - distractor_prob, distractor_prob / 2, distractor_prob / 2])
    return np.concatenate([[KEY], middle, [DOOR, TREASURE]]).astype(np.int32)


def observation(position, flag, layout):
    """[position / L, one-hot cell content, one-hot keys held]; the treasure shows once the door is open."""
    length = layout.shape[0]
    content = layout[jnp.minimum(position, length - 1)]
    last = position >= length - 1
    content = jnp.where(position >= length, EMPTY, content)
    content = jnp.where((position == length - 1) & (flag == 0), EMPTY, content)
    keys_held = jnp.where(last, 0, flag)
    return jnp.concatenate([
        jnp.reshape(position / length, (1,)).astype(jnp.float32),
        one_hot(content, _NUM_CONTENTS),
        one_hot(keys_held, 2),
    ])


_observations = jax.jit(jax.vmap(observation, in_axes=(0, 0, None)))  # of many states: one compile, not one per op
