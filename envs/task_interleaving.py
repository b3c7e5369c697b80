"""Task interleaving, the COCOA paper's test of credit assignment across interleaved tasks.

Meulemans et al., "Would I have gotten that reward? Long-term credit assignment by counterfactual
contribution analysis", NeurIPS 2023, arXiv 2306.16803 (Sec. 4 and App., task interleaving; after
Mesnard et al., "Counterfactual credit assignment in model-free reinforcement learning", ICML 2021);
docs/environments/task_interleaving.md.

There are ``contexts`` tasks (C). Each has a query room and an answer room. A query room shows two
of the context's objects, one of its ``objects`` rewarding objects and one of its ``objects``
non-rewarding ones, on the left and the right (the rewarding one on a random side when
``random_sides``, else always on the left). Picking the rewarding side (action 0: left, 1: right)
earns the context's key; either pick opens the context. The answer room of an open context pays
rho_c (rho = linspace(0.2, 1, C)) if its key was earned, nothing otherwise, and closes it. After
every step the episode ends with probability ``termination_prob``, and after ``max_steps`` steps
in any case; otherwise the next room is the answer room of a uniformly chosen open context with
probability (#open / ``max_open``) (1 when every context is open), else the query room of a
uniformly chosen closed context, with its objects drawn uniformly. So at most ``max_open``
contexts are open at a time, and a query's reward arrives after an unpredictable number of steps
spent on other contexts. Episodes start in the query room of a uniformly chosen context.

The observation shows the room only: query or answer, which context, and the two objects one-hot.
Which contexts are open, and with or without their key, is hidden (a policy of the observation then
cannot make one context's later choices depend on another's key, so that a query's choice affects
only its own context's reward: what the credit matrix of ``cocoa.disentangling`` checks).

State: (status (C,), context, arrangement, time, done), ``arrangement`` in [0, M) for a query room
(M = objects^2 x sides) and M for an answer room. Tabular states: the query rooms of closed
contexts while j < K are open, sum_{j<K} binom(C, j) 2^j (C - j) M, the answer rooms of open
contexts, sum_{1<=j<=K} binom(C, j) 2^j j, and the absorbing terminal state: 1,651 at the
defaults (1,320 + 330 + 1), 991 with ``random_sides=False``. The length cap is the table's
horizon, so the oracle, time-indexed, holds it exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from math import comb

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.checks import check_integer
from cocoa.envs.base import Environment, one_hot, params_dataclass
from cocoa.types import TabularMDP

NUM_ACTIONS = 2  # 0: pick the left object, 1: the right one (no effect in an answer room)
CLOSED, OPEN_WITH_KEY, OPEN_WITHOUT_KEY = 0, 1, 2
MAX_STATES = 100_000


@params_dataclass
class InterleavingParams:
    rewards: jax.Array  # (C,) rho_c
    termination_prob: jax.Array  # ()
    max_steps: jax.Array  # int ()
    max_open: jax.Array  # int ()
    index_table: jax.Array  # int (3^C, C (M + 1)) tabular index of (status code, room code); -1 invalid


@dataclasses.dataclass(frozen=True)
class InterleavingState:
    status: jax.Array  # int (C,)
    context: jax.Array
    arrangement: jax.Array
    time: jax.Array
    terminated: jax.Array  # ended by the termination draw (the table's terminal state)
    done: jax.Array  # terminated, or the length cap reached (the table's horizon)


jax.tree_util.register_dataclass(
    InterleavingState, data_fields=["status", "context", "arrangement", "time", "terminated", "done"], meta_fields=[])


def count_states(contexts: int, max_open: int, arrangements: int) -> int:
    """Live tabular states (the terminal state not counted): query rooms of closed contexts while fewer
    than ``max_open`` are open, answer rooms of open contexts."""
    queries = sum(comb(contexts, j) * 2 ** j * (contexts - j) * arrangements for j in range(max_open))
    answers = sum(comb(contexts, j) * 2 ** j * j for j in range(1, max_open + 1))
    return queries + answers


def _objects(arrangement, objects: int, sides: int):
    """(left, right) object ids of a query arrangement: rewarding ids 0..N-1, non-rewarding N..2N-1."""
    side = arrangement % sides
    pair = arrangement // sides
    rewarding, other = pair // objects, objects + pair % objects
    return jnp.where(side == 0, rewarding, other), jnp.where(side == 0, other, rewarding)


def _observation(state, contexts: int, objects: int, sides: int):
    live = ~state.terminated  # the terminal state shows the zero vector
    query = (state.arrangement < objects ** 2 * sides) & live
    left, right = _objects(state.arrangement, objects, sides)
    width = 2 * objects
    return jnp.concatenate([
        jnp.stack([query, ~query & live]).astype(jnp.float32),
        one_hot(state.context, contexts) * live,
        one_hot(left, width) * query, one_hot(right, width) * query])


# The table's observations of every state at once: one compile per layout, shared by every table built.
_observations = functools.partial(jax.jit, static_argnums=(1, 2, 3))(
    jax.vmap(_observation, in_axes=(0, None, None, None)))


class TaskInterleaving(Environment):
    """Task interleaving; see the module docstring for the rules."""

    name = "TaskInterleaving-v0"
    metric_names = ("correct_query_rate", "rewarded_answer_rate")
    example_settings = dict(contexts=3, max_open=2, objects=1, termination_prob=0.1, max_steps=12)
    noise_size = 4  # termination, answer or query, which context, which objects

    def __init__(self, *, contexts: int = 5, max_open: int = 3, objects: int = 2, termination_prob: float = 0.05,
                 max_steps: int = 100, random_sides: bool = True):
        check_integer("contexts", contexts, 1, why=" (the number of tasks C)")
        check_integer("max_open", max_open, 1, int(contexts), why=f" (K, at most contexts = {contexts})")
        check_integer("objects", objects, 1, why=" (rewarding and non-rewarding objects per context)")
        check_integer("max_steps", max_steps, 1, why=" (the episode length cap)")
        if (not isinstance(termination_prob, (int, float, np.number)) or isinstance(termination_prob, bool)
                or not 0.0 <= termination_prob <= 1.0):
            raise ValueError(f"termination_prob must be a probability in [0, 1]; got {termination_prob!r}")
        if not isinstance(random_sides, (bool, np.bool_)):
            raise ValueError(f"random_sides must be True or False; got {random_sides!r}")
        self.contexts, self.max_open, self.objects = int(contexts), int(max_open), int(objects)
        self.sides = 2 if random_sides else 1
        self.arrangements = self.objects ** 2 * self.sides
        self.max_episode_steps = int(max_steps)
        self.num_states = count_states(self.contexts, self.max_open, self.arrangements) + 1
        if self.num_states > MAX_STATES:
            raise ValueError(f"contexts={contexts}, max_open={max_open}, objects={objects} give {self.num_states:,} "
                             f"states; at most {MAX_STATES:,} are supported")
        self._index_table, self._states = _enumerate_states(self.contexts, self.max_open, self.arrangements)
        super().__init__(InterleavingParams(
            rewards=jnp.asarray(np.linspace(0.2, 1.0, self.contexts), jnp.float32),
            termination_prob=jnp.float32(termination_prob), max_steps=jnp.int32(max_steps),
            max_open=jnp.int32(self.max_open), index_table=jnp.asarray(self._index_table)))

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (2 + self.contexts + 4 * self.objects,)

    def observation_bounds(self):
        return np.zeros(self.observation_shape, np.float32), np.ones(self.observation_shape, np.float32)

    # --- the rules ------------------------------------------------------------------------------
    def _pick(self, mask, uniform):
        """A uniformly chosen index where ``mask`` holds (0 if none)."""
        count = jnp.sum(mask)
        rank = jnp.minimum(jnp.floor(uniform * count), jnp.maximum(count - 1, 0)).astype(jnp.int32)
        return jnp.argmax(jnp.cumsum(mask) > rank).astype(jnp.int32)

    def _enter(self, noise, status, params):
        """The next room after a step: (context, arrangement)."""
        open_ = status != CLOSED
        count_open = jnp.sum(open_)
        p_answer = jnp.where(count_open == self.contexts, 1.0, count_open / params.max_open)
        answer = noise[1] < p_answer
        context = jnp.where(answer, self._pick(open_, noise[2]), self._pick(~open_, noise[2]))
        arrangement = jnp.minimum(jnp.floor(noise[3] * self.arrangements), self.arrangements - 1).astype(jnp.int32)
        return context, jnp.where(answer, self.arrangements, arrangement)

    def reset_from_noise(self, noise, params):
        status = jnp.zeros(self.contexts, jnp.int32)
        context, arrangement = self._enter(noise, status, params)  # nothing is open: a query room
        state = InterleavingState(status=status, context=context, arrangement=arrangement, time=jnp.int32(0),
                                  terminated=jnp.bool_(False), done=jnp.bool_(False))
        return _observation(state, self.contexts, self.objects, self.sides), state

    def step_from_noise(self, noise, state, action, params):
        live = ~state.done
        query = state.arrangement < self.arrangements
        rewarding_side = state.arrangement % self.sides
        correct = query & (jnp.asarray(action, jnp.int32) == rewarding_side)
        current = state.status[state.context]
        reward = jnp.where(live & ~query & (current == OPEN_WITH_KEY), params.rewards[state.context], 0.0)
        new_status = jnp.where(query, jnp.where(correct, OPEN_WITH_KEY, OPEN_WITHOUT_KEY), CLOSED)
        status = state.status.at[state.context].set(new_status)
        time = state.time + 1
        terminated = live & (noise[0] < params.termination_prob)
        context, arrangement = self._enter(noise, status, params)
        next_state = InterleavingState(
            status=jnp.where(live, status, state.status), context=jnp.where(live, context, state.context),
            arrangement=jnp.where(live, arrangement, state.arrangement),
            time=jnp.where(live, time, state.time).astype(jnp.int32), terminated=state.terminated | terminated,
            done=state.done | terminated | (time >= params.max_steps))
        info = {"query": live & query, "correct": live & correct, "answer": live & ~query,
                "rewarded": reward > 0}
        return _observation(next_state, self.contexts, self.objects, self.sides), next_state, reward, next_state.done, info

    def episode_metrics(self, info, mask):
        del mask
        queries, answers = info["query"].sum(-1), info["answer"].sum(-1)
        return {"correct_query_rate": info["correct"].sum(-1) / jnp.maximum(queries, 1),
                "rewarded_answer_rate": info["rewarded"].sum(-1) / jnp.maximum(answers, 1)}

    def state_index(self, state, params):
        code = jnp.sum(state.status * (3 ** jnp.arange(self.contexts, dtype=jnp.int32)))
        room = state.context * (self.arrangements + 1) + state.arrangement
        # Past the length cap the table's horizon has ended, not its dynamics: the room stays the state.
        return jnp.where(state.terminated, self.num_states - 1, params.index_table[code, room]).astype(jnp.int32)

    def render_text(self, state, params) -> str:
        del params
        marks = "".join(".KX"[int(s)] for s in np.asarray(state.status))  # closed, open with key, without
        if bool(state.done):
            return f"contexts [{marks}]  done"
        context, arrangement = int(state.context), int(state.arrangement)
        if arrangement == self.arrangements:
            return f"contexts [{marks}]  answer room of context {context}"
        left, right = (int(x) for x in _objects(arrangement, self.objects, self.sides))
        name = lambda o: f"r{o}" if o < self.objects else f"n{o - self.objects}"
        return f"contexts [{marks}]  query room of context {context}: {name(left)} | {name(right)}"

    # --- the table --------------------------------------------------------------------------------
    def build_tabular_mdp(self, params) -> TabularMDP:
        rewards = np.asarray(params.rewards, np.float64)
        p_end, max_open = float(params.termination_prob), int(params.max_open)
        cap = int(params.max_steps)
        contexts, arrangements = self.contexts, self.arrangements
        index_table = np.asarray(params.index_table)
        states = self._states  # (S - 1, 3): status code, context, arrangement
        num_states = states.shape[0] + 1
        terminal = num_states - 1
        powers = 3 ** np.arange(contexts)
        status_of = lambda code: (code // powers) % 3

        def entries(status):
            """[(probability, state index)] of the rooms entered from ``status`` (termination aside)."""
            open_ = status != CLOSED
            count_open = int(open_.sum())
            p_answer = 1.0 if count_open == contexts else count_open / max_open
            code = int(status @ powers)
            out = []
            for c in np.flatnonzero(open_):
                out.append((p_answer / count_open, index_table[code, c * (arrangements + 1) + arrangements]))
            for c in np.flatnonzero(~open_):
                for m in range(arrangements):
                    out.append(((1 - p_answer) / ((contexts - count_open) * arrangements),
                                index_table[code, c * (arrangements + 1) + m]))
            out = [(p, s) for p, s in out if p > 0]
            assert all(s >= 0 for _, s in out), "a room outside the enumeration"
            return out

        width = 1 + contexts * arrangements  # termination, then at most every query room
        successors = np.full((num_states, NUM_ACTIONS, width), terminal, np.int64)
        successor_probs = np.zeros((num_states, NUM_ACTIONS, width))
        successor_probs[:, :, 0] = 1.0
        reward = np.zeros((num_states, NUM_ACTIONS))
        for index, (code, context, arrangement) in enumerate(states):
            status = status_of(code)
            for action in range(NUM_ACTIONS):
                after = status.copy()
                if arrangement < arrangements:
                    correct = action == arrangement % self.sides
                    after[context] = OPEN_WITH_KEY if correct else OPEN_WITHOUT_KEY
                else:
                    reward[index, action] = rewards[context] if status[context] == OPEN_WITH_KEY else 0.0
                    after[context] = CLOSED
                rooms = entries(after)
                successor_probs[index, action, 0] = p_end
                for slot, (p, target) in enumerate(rooms, start=1):
                    successors[index, action, slot] = target
                    successor_probs[index, action, slot] = (1 - p_end) * p
        successors[terminal] = terminal

        # Rewards as the float32 params pay them, read as their shortest decimals (0.4, not 0.4000000059).
        shortest = np.vectorize(lambda value: float(np.format_float_positional(np.float32(value), unique=True,
                                                                             trim="-")))
        reward = shortest(reward)
        reward_values = np.unique(np.append(reward, 0.0))
        slot = np.searchsorted(reward_values, reward)
        reward_probs = (slot[..., None] == np.arange(reward_values.size)).astype(np.float64)

        observations = np.asarray(_observations(InterleavingState(
            status=jnp.asarray(np.stack([status_of(code) for code in states[:, 0]]), jnp.int32),
            context=jnp.asarray(states[:, 1], jnp.int32), arrangement=jnp.asarray(states[:, 2], jnp.int32),
            time=jnp.zeros(states.shape[0], jnp.int32), terminated=jnp.zeros(states.shape[0], bool),
            done=jnp.zeros(states.shape[0], bool)), contexts, self.objects, self.sides))
        observations = np.concatenate([observations, np.zeros((1, observations.shape[1]), np.float32)])
        initial = np.zeros(num_states)
        for context in range(contexts):
            for m in range(arrangements):
                initial[index_table[0, context * (arrangements + 1) + m]] = 1.0 / (contexts * arrangements)
        return TabularMDP(successors=successors.astype(np.int32), successor_probs=successor_probs,
                          reward_values=reward_values, reward_probs=reward_probs, initial=initial,
                          observations=observations, terminal=np.arange(num_states) == terminal, horizon=cap)


def _enumerate_states(contexts: int, max_open: int, arrangements: int) -> tuple[np.ndarray, np.ndarray]:
    """(index table (3^C, C (M + 1)) with -1 where invalid, states (S - 1, 3): status code, context, arrangement)."""
    table = np.full((3 ** contexts, contexts * (arrangements + 1)), -1, np.int32)
    states = []
    for status in itertools.product(range(3), repeat=contexts):
        status = np.asarray(status)
        if (status != CLOSED).sum() > max_open:
            continue
        code = int(status @ 3 ** np.arange(contexts))
        count_open = int((status != CLOSED).sum())
        for context in range(contexts):
            # A query room is entered only while fewer than max_open are open (then p_answer < 1).
            rooms = [arrangements] if status[context] != CLOSED else range(arrangements if count_open < max_open else 0)
            for arrangement in rooms:
                table[code, context * (arrangements + 1) + arrangement] = len(states)
                states.append((code, context, arrangement))
    return table, np.asarray(states, np.int64)
