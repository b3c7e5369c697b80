"""Co-player shaping: the batched runner, on the iterated prisoner's dilemma and CleanUp-lite.

Meulemans et al., "Multi-agent cooperation through learning-aware policy gradients", ICLR 2025,
arXiv 2410.18636 (Algorithm 1, the mixed pools of Sec. 5); docs/estimators/coala.md.

A meta-trajectory: a meta agent plays B parallel games of M inner episodes of T steps against one
co-player. A meta agent's policy is fixed within the meta-trajectory: memory-1 logits per observation (the
log-odds of cooperating, the same in every inner episode), tabular logits per (inner-episode index,
observation), or a sequence policy over the whole meta-trajectory. The co-player is either

* a naive learner: it starts from memory-1 logits 0 (or one of ``naive_inits`` fixed starts) and,
  after every inner episode, takes one policy-gradient step (Monte-Carlo returns within the
  episode, less a baseline: the batch-mean return, or with ``naive_baseline="value"`` a learned
  value per observation, A2C) on its own B episodes; its logits (and values) are discarded at the
  end; or
* another meta agent of the pool, fixed like the first (then the ordinary policy gradient applies).

A pool of ``population`` meta agents each faces ``meta_batch`` independent co-players per update,
naive with probability ``p_naive``; the meta-batch axis is never mixed into the B axis. Each meta
score is weighed by ``rule_returns`` of the meta agent's rewards: the rule (COALA, M-FOS or
batch-unaware) against a naive learner, batch-unaware against a meta agent. All meta agents update
at once. One compiled call runs a whole update: every meta-trajectory, the gradients and a step of
the meta optimiser (Adam by default).

On ``CleanUpLite-v0`` (``env``) the meta agents are sequence policies over its grid observations
and the naive co-players run the same network, trained by A2C (``cocoa.network_game``); the update
is the same.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from cocoa.agents.coala import RULES, rule_advantages, rule_returns
from cocoa.checks import check_integer, check_positive_number
from cocoa.hawk import HawkBlock, gated_mlp
from cocoa.envs import ipd
from cocoa.envs.cleanup_lite import NUM_ACTIONS as CLEANUP_ACTIONS, CleanUpLite
from cocoa.envs.ipd import COOPERATE, DEFECT, NUM_OBSERVATIONS, IteratedPrisonersDilemma
from cocoa import network_game

IPD, CLEANUP = IteratedPrisonersDilemma.name, CleanUpLite.name
ENVS = (IPD, CLEANUP)
POLICIES = ("tabular", "memory-1", "gru", "hawk")
TABLE_POLICIES = ("tabular", "memory-1")  # logits looked up by observation, no network
NAIVE_BASELINES = ("batch-mean", "value")
META_BASELINES = ("none", "step-mean")
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}  # the meta agents' and the network naive learners'
METRICS = ("meta_reward", "naive_reward", "meta_vs_meta_reward")
COOPERATION = ("meta_cooperation", "naive_cooperation", "meta_vs_meta_cooperation")  # per inner episode


NAIVE_POLICIES = ("memory-1", "network")
ENV_DEFAULTS = {IPD: dict(episode_length=10, naive_policy="memory-1"),
                CLEANUP: dict(episode_length=64, naive_policy="network")}
NAIVE_LEARNING_RATES = {"memory-1": 10.0, "network": 0.005}
NAIVE_BASELINE_DEFAULTS = {"memory-1": "batch-mean", "network": "value"}
NAIVE_STARTS_KEY = jax.random.PRNGKey(2410)  # the naive learners' fixed starts (ShapingConfig.naive_inits)


@dataclasses.dataclass(frozen=True)
class ShapingConfig:
    """Sizes and learning rates of the shaping runner (the paper's IPD sizes: T 10, M 20, B 16).
    Settings left at None take their environment's default (``ENV_DEFAULTS``)."""

    env: str = IPD
    episode_length: int | None = None  # T: 10 on the IPD, 64 on CleanUp-lite
    episodes: int = 20  # M
    batch_size: int = 16  # B
    meta_batch: int = 32  # independent co-players per meta agent and update
    rule: str = "coala"
    # "tabular": logits per (inner-episode index, observation); "memory-1": logits per observation, the
    # same in every inner episode (the paper's analytic agents, App. C); "gru": a GRU over the whole
    # meta-trajectory, its state kept across inner episodes and reset only at the start; "hawk":
    # the same with one residual Hawk block (RG-LRU) in place of the GRU, the paper's choice.
    policy: str = "tabular"
    # The naive co-players: "memory-1" (5 logits, the IPD only) or "network" (the meta agents'
    # network, its context reset every inner episode, trained by A2C; cocoa.network_game). With
    # "network" every player runs one network over the env's observation vectors with a categorical
    # readout (so a "gru" meta agent here is not the IPD's "gru" with its logit of cooperating).
    naive_policy: str | None = None
    hidden_size: int = 32  # the GRU's or the Hawk block's width
    # "gru" only: the Hawk block's gated MLP sub-block (cocoa.hawk.gated_mlp) after the GRU. Without it the
    # GRU's mixed pools lock into mutual defection; with it one seed of two came back to about 0.5 per step
    # with its own kind (docs/estimators/coala.md). Off by default: an ablation, not a fix.
    gru_mlp: bool = False
    # "hawk" only: the gated MLP's hidden width (None: 3 x hidden_size, Griffin's; the COALA paper's
    # blocks use 32) and the recurrence and input gates' heads (block-diagonal; the paper's use 2).
    hawk_mlp_width: int | None = None
    hawk_heads: int = 1
    population: int = 1  # meta agents, updated together
    p_naive: float = 1.0  # the probability that a co-player is naive, else another meta agent of the pool
    # Per opponent type, over the pool's whole batch: the weights' mean subtracted, divided by their std.
    normalize_advantages: bool = False
    # A learned meta critic (network games only: the players' value head). The weights become each
    # rule's GAE advantages on the critic's TD errors (cocoa.agents.coala.rule_advantages, gamma 1,
    # ``meta_gae_lambda``), on the meta rewards scaled by ``reward_scale``, and the value head is
    # regressed on the lambda-returns of the whole meta-trajectory (loss weight 0.5), as the paper's
    # meta agents do. False: the rules' Monte-Carlo weights, no baseline.
    meta_critic: bool = False
    meta_gae_lambda: float = 1.0
    # Without a critic: "step-mean" subtracts from each weight the mean weight at the same step of the
    # meta-trajectory over the other co-players' games of the same opponent type in the update (never the
    # co-player's own B games, whose shared learner makes them depend on the actions), an unbiased
    # baseline per step (``step_mean_baseline``); "none": the rules' Monte-Carlo weights as they are.
    # None: "step-mean" without the critic, "none" with it (its values are the baseline).
    meta_baseline: str | None = None
    meta_learning_rate: float = 0.05
    # "adam" (the paper's) or "sgd": plain steps of meta_learning_rate along the estimate, so that each
    # logit moves in proportion to its gradient rather than at Adam's one pace for all (an ablation of
    # the tabular mixed pool; docs/estimators/coala.md).
    meta_optimizer: str = "adam"
    # Each meta agent's gradient rescaled to this global norm at most before the optimiser's step (the
    # paper's max_grad_norm, 1 for its Hawk agents); None: not clipped.
    meta_max_grad_norm: float | None = None
    # The replay's gradient is summed over this many equal pieces of each minibatch's co-players, one after
    # the other: the same gradient with a fraction of the memory (for the paper's CleanUp-lite sizes).
    meta_grad_chunks: int = 1
    # PPO (Schulman et al. 2017, arXiv 1707.06347), the paper's meta optimiser: each meta-batch is used
    # for ``meta_epochs`` passes of ``meta_minibatches`` optimiser steps on the clipped surrogate (ratios
    # clipped to 1 +- ``meta_clip``), the co-players reshuffled into minibatches every pass. The paper's
    # IPD meta agents: 4 epochs, 2 minibatches, clip 0.2. The defaults (1, 1): one step along the
    # estimate itself.
    meta_epochs: int = 1
    meta_minibatches: int = 1
    meta_clip: float = 0.2
    # Memory-1: the step size of plain gradient ascent on the naive learner's 5 logits, 10: fast
    # enough that it stops being exploitable within a meta-trajectory (at 1.0 it is not, and shaping
    # it is worth less than defecting; docs/estimators/coala.md). Network: Adam's learning rate,
    # 0.005 (the paper's), the gradient norm clipped at 1.
    naive_learning_rate: float | None = None
    # Network learners only: "adam" (the paper's IPD and CleanUp-lite shaping) or "sgd" (its CleanUp-lite
    # pools, at learning rate 1); either after the gradient's norm is clipped at 1. Memory-1 learners take
    # plain steps.
    naive_optimizer: str = "adam"
    # The naive learner's discount of its Monte-Carlo returns within an inner episode (the paper's 0.99
    # in CleanUp-lite shaping; 1 elsewhere).
    naive_discount: float = 1.0
    # Network learners only: each naive learner starts as a copy of a meta agent of the pool drawn
    # uniformly (itself included), the paper's "dynamic naive agents" of its CleanUp-lite pools, rather
    # than from fresh or fixed params (``naive_inits``).
    dynamic_naive: bool = False
    # The naive learner's baseline: "batch-mean" (the mean return at each step over its B games) or
    # "value" (A2C). Memory-1 learners default to "batch-mean"; their values are one per observation,
    # 0 at each meta-trajectory's start, and after every inner episode each moves
    # ``naive_value_learning_rate`` of the way to the mean return seen from its observation (the
    # policy step uses the values from before it). Network learners default to "value", the
    # paper's A2C: their value head, trained with the policy (cocoa.network_game.a2c_loss).
    naive_baseline: str | None = None
    naive_value_learning_rate: float = 0.5
    # Where each naive learner starts. 0: afresh, memory-1 at logits 0 (cooperating with probability
    # 1/2), a network from params drawn with the game's own key. K >= 1: from one of K fixed starts,
    # drawn once from ``NAIVE_STARTS_KEY`` (the same for every seed) and picked uniformly per game, as
    # the paper's mixed pools do with 10: memory-1 logits N(0, naive_init_scale^2), network params from
    # K fixed keys (``naive_init_scale`` unused).
    naive_inits: int = 0
    naive_init_scale: float = 1.0
    reward_scale: float = 0.05  # the naive learner's rewards, as in the paper

    def __post_init__(self):
        if self.env not in ENVS:
            raise ValueError(f"unknown env {self.env!r}; known shaping envs: {', '.join(ENVS)}")
        for name, value in ENV_DEFAULTS[self.env].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.naive_policy not in NAIVE_POLICIES:
            raise ValueError(f"unknown naive_policy {self.naive_policy!r}; known naive policies: "
                             f"{', '.join(NAIVE_POLICIES)}")
        if self.naive_learning_rate is None:
            object.__setattr__(self, "naive_learning_rate", NAIVE_LEARNING_RATES[self.naive_policy])
        if self.naive_baseline is None:
            object.__setattr__(self, "naive_baseline", NAIVE_BASELINE_DEFAULTS[self.naive_policy])
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; known policies: {', '.join(POLICIES)}")
        if not isinstance(self.gru_mlp, bool):
            raise ValueError(f"gru_mlp must be True or False; got {self.gru_mlp!r}")
        if self.gru_mlp and self.policy != "gru":
            raise ValueError(f"gru_mlp puts a gated MLP after the GRU, so the policy must be 'gru'; got {self.policy!r}")
        for name in ("episode_length", "episodes", "batch_size", "meta_batch", "population", "hidden_size",
                     "meta_epochs", "meta_minibatches", "hawk_heads"):
            check_integer(name, getattr(self, name), 1)
        if self.hawk_mlp_width is not None:
            check_integer("hawk_mlp_width", self.hawk_mlp_width, 1)
        if (self.hawk_mlp_width is not None or self.hawk_heads != 1) and self.policy != "hawk":
            raise ValueError(f"hawk_mlp_width and hawk_heads shape the Hawk block, so the policy must be 'hawk'; "
                             f"got {self.policy!r}")
        if self.hidden_size % self.hawk_heads:
            raise ValueError(f"hawk_heads ({self.hawk_heads}) must divide hidden_size ({self.hidden_size})")
        if self.meta_batch % self.meta_minibatches:
            raise ValueError(f"meta_minibatches ({self.meta_minibatches}) must divide meta_batch ({self.meta_batch}): "
                             "a minibatch is a share of the co-players")
        if self.naive_baseline not in NAIVE_BASELINES:
            raise ValueError(f"unknown naive_baseline {self.naive_baseline!r}; known baselines: "
                             f"{', '.join(NAIVE_BASELINES)}")
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; known rules: {', '.join(RULES)}")
        if self.env == CLEANUP and self.naive_policy != "network":
            raise ValueError(f"naive_policy {self.naive_policy!r} is the IPD's; on {CLEANUP} naive learners are "
                             "'network'")
        if self.naive_policy == "network" and self.policy in TABLE_POLICIES:
            raise ValueError("naive_policy 'network' runs the meta agents' network, so the policy must be a "
                             f"sequence policy, 'gru' or 'hawk'; got {self.policy!r}" + (f" (on {CLEANUP} it is always "
                             "'network')" if self.env == CLEANUP else ""))
        for name in ("meta_optimizer", "naive_optimizer"):
            if getattr(self, name) not in OPTIMIZERS:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; known optimizers: {', '.join(OPTIMIZERS)}")
        if not isinstance(self.dynamic_naive, bool):
            raise ValueError(f"dynamic_naive must be True or False; got {self.dynamic_naive!r}")
        for name, changed in (("naive_optimizer", self.naive_optimizer != "adam"),
                              ("dynamic_naive", self.dynamic_naive)):
            if changed and self.naive_policy != "network":
                raise ValueError(f"{name} is for network naive learners; naive_policy is {self.naive_policy!r}")
        if self.dynamic_naive and self.naive_inits:
            raise ValueError(f"dynamic_naive starts the naive learners from the meta agents, so naive_inits must be 0; "
                             f"got {self.naive_inits!r}")
        if not isinstance(self.naive_discount, (int, float)) or isinstance(self.naive_discount, bool) \
                or not 0 < self.naive_discount <= 1:
            raise ValueError(f"naive_discount must be in (0, 1]; got {self.naive_discount!r}")
        if self.meta_max_grad_norm is not None:
            check_positive_number("meta_max_grad_norm", self.meta_max_grad_norm)
        check_integer("meta_grad_chunks", self.meta_grad_chunks, 1)
        if (self.meta_batch // self.meta_minibatches) % self.meta_grad_chunks:
            raise ValueError(f"meta_grad_chunks ({self.meta_grad_chunks}) must divide the co-players of a minibatch "
                             f"(meta_batch / meta_minibatches = {self.meta_batch // self.meta_minibatches})")
        if self.meta_baseline is None:
            object.__setattr__(self, "meta_baseline", "none" if self.meta_critic else "step-mean")
        if self.meta_baseline not in META_BASELINES:
            raise ValueError(f"unknown meta_baseline {self.meta_baseline!r}; known meta baselines: "
                             f"{', '.join(META_BASELINES)}")
        if self.meta_baseline != "none" and self.meta_critic:
            raise ValueError(f"meta_baseline {self.meta_baseline!r} is for the Monte-Carlo weights; with meta_critic "
                             "the critic's values are the baseline")
        if self.meta_critic and self.naive_policy != "network":
            raise ValueError("meta_critic needs the players' value head, so naive_policy must be 'network'; got "
                             f"{self.naive_policy!r}")
        if not isinstance(self.meta_gae_lambda, (int, float)) or isinstance(self.meta_gae_lambda, bool) \
                or not 0 <= self.meta_gae_lambda <= 1:
            raise ValueError(f"meta_gae_lambda must be in [0, 1]; got {self.meta_gae_lambda!r}")
        if not isinstance(self.naive_value_learning_rate, (int, float)) or not 0 < self.naive_value_learning_rate <= 1:
            raise ValueError(f"naive_value_learning_rate must be in (0, 1]; got {self.naive_value_learning_rate!r}")
        check_integer("naive_inits", self.naive_inits, 0)
        for name in ("meta_learning_rate", "naive_learning_rate", "reward_scale", "meta_clip", "naive_init_scale"):
            check_positive_number(name, getattr(self, name))
        if not isinstance(self.p_naive, (int, float)) or isinstance(self.p_naive, bool) or not 0 <= self.p_naive <= 1:
            raise ValueError(f"p_naive must be a probability in [0, 1]; got {self.p_naive!r}")

    @property
    def steps_per_update(self) -> int:
        """Environment steps of one update, summed over the pool (one step = one joint action)."""
        return self.population * self.meta_batch * self.batch_size * self.episodes * self.episode_length


@dataclasses.dataclass(frozen=True)
class MetaPolicy:
    """A meta agent's policy over the meta-trajectory: ``init(key)`` -> params; ``initial_state(batch)``;
    ``apply(params, state, seen (B,), episode ())`` -> (logit of cooperating (B,), state) on the IPD. The state
    is reset only at the meta-trajectory's start (``initial_state``), never at an inner episode's."""

    init: Callable
    initial_state: Callable
    apply: Callable


def tabular_policy(config: ShapingConfig) -> MetaPolicy:
    """Logits per (inner-episode index, observation), starting at 0 (cooperate with probability 1/2)."""
    return MetaPolicy(init=lambda key: jnp.zeros((config.episodes, NUM_OBSERVATIONS)),
                      initial_state=lambda batch: jnp.zeros((batch, 0)),
                      apply=lambda params, state, seen, episode: (params[episode, seen], state))


def memory_one_policy(config: ShapingConfig) -> MetaPolicy:
    """Logits per observation (5,), the same in every inner episode, starting at 0: the memory-1 agent
    of the paper's analytic IPD (App. C), here on the sampled game. Unlike ``tabular_policy`` it cannot
    play the late inner episodes otherwise than the early ones."""
    return MetaPolicy(init=lambda key: jnp.zeros(NUM_OBSERVATIONS),
                      initial_state=lambda batch: jnp.zeros((batch, 0)),
                      apply=lambda params, state, seen, episode: (params[seen], state))


def _sequence_core(config: ShapingConfig, inputs, state):
    """The recurrent part of the sequence policies, inside a haiku transform: a GRU of width
    ``hidden_size`` on the inputs (then the gated MLP sub-block if ``gru_mlp``), or a linear embedding
    to that width and one residual Hawk block."""
    if config.policy == "gru":
        output, state = hk.GRU(config.hidden_size)(inputs, state)
        return (gated_mlp(output) if config.gru_mlp else output), state
    inputs = hk.Linear(config.hidden_size, name="embed")(inputs)
    return HawkBlock(config.hidden_size, config.hawk_mlp_width, config.hawk_heads)(inputs, state)


def _initial_state(config: ShapingConfig):
    if config.policy == "gru":
        return lambda batch: jnp.zeros((batch, config.hidden_size))
    return lambda batch: HawkBlock.initial_state(batch, config.hidden_size)


def _ipd_sequence_policy(config: ShapingConfig) -> MetaPolicy:
    """The sequence core over the IPD's observations (one-hot, 5) of the whole meta-trajectory, with
    a zero-initialised linear readout of the logit of cooperating: it starts at P(cooperate) = 1/2
    and can tell the inner episodes and its co-player apart only from what it has seen."""

    def forward(state, seen):
        output, state = _sequence_core(config, jax.nn.one_hot(seen, NUM_OBSERVATIONS), state)
        return hk.Linear(1, w_init=jnp.zeros, name="policy_head")(output)[:, 0], state

    network = hk.without_apply_rng(hk.transform(forward))
    initial_state = _initial_state(config)
    return MetaPolicy(init=lambda key: network.init(key, initial_state(1), jnp.zeros(1, jnp.int32)),
                      initial_state=initial_state,
                      apply=lambda params, state, seen, episode: network.apply(params, state, seen))


def gru_policy(config: ShapingConfig) -> MetaPolicy:
    """The GRU sequence policy on the IPD (``_ipd_sequence_policy``)."""
    return _ipd_sequence_policy(dataclasses.replace(config, policy="gru"))


def hawk_policy(config: ShapingConfig) -> MetaPolicy:
    """The Hawk sequence policy on the IPD (``_ipd_sequence_policy``; ``cocoa.hawk``)."""
    return _ipd_sequence_policy(dataclasses.replace(config, policy="hawk"))


def _network_env(config: ShapingConfig):
    """The env of a network game, its observation vectors and actions (``cocoa.network_game``)."""
    if config.env == CLEANUP:
        return CleanUpLite(episode_length=config.episode_length)
    return _KeyedIPD(IteratedPrisonersDilemma(episode_length=config.episode_length))


class _KeyedIPD:
    """The IPD with the key arguments of a stochastic gymnax-style env (it needs no randomness)."""

    num_actions = ipd.NUM_ACTIONS
    observation_shape = (NUM_OBSERVATIONS,)

    def __init__(self, env):
        self.env = env

    def reset(self, key):
        return self.env.reset()

    def step(self, key, state, actions):
        return self.env.step(state, actions)


def player_network(config: ShapingConfig):
    """The network every player runs in a network game (``naive_policy="network"``): the sequence
    core over the env's observation vectors, then zero-initialised policy (a logit per action) and
    value readouts, so it starts uniform. Returns (``init(key)`` -> params, ``apply(params, state,
    observations (B, D))`` -> ((logits (B, A), value (B,)), state), ``initial_state(batch)``)."""
    env = _network_env(config)

    def forward(state, observations):
        output, state = _sequence_core(config, observations, state)
        logits = hk.Linear(env.num_actions, w_init=jnp.zeros, name="policy_head")(output)
        value = hk.Linear(1, w_init=jnp.zeros, name="value_head")(output)[:, 0]
        return (logits, value), state

    network = hk.without_apply_rng(hk.transform(forward))
    initial_state = _initial_state(config)
    init = lambda key: network.init(key, initial_state(1), jnp.zeros((1,) + env.observation_shape))
    return init, network.apply, initial_state


def make_policy(config: ShapingConfig) -> MetaPolicy:
    """The config's meta policy. In a network game (``naive_policy="network"``) its ``apply`` takes the
    observation vectors (B, D) and gives a logit per action (B, A)."""
    if config.naive_policy == "network":
        init, apply, initial_state = player_network(config)

        def logits(params, state, observations, episode):
            (logits, _), state = apply(params, state, observations)
            return logits, state

        return MetaPolicy(init=init, initial_state=initial_state, apply=logits)
    return {"tabular": tabular_policy, "memory-1": memory_one_policy, "gru": gru_policy,
            "hawk": hawk_policy}[config.policy](config)


def _play_episode(env, policy, meta_params, opponent_params, naive_logits, is_naive, states, episode, key,
                  config: ShapingConfig):
    """B games of one inner episode: the policies' states after it, and (B, T) each of the meta
    agent's log-probs, rewards and cooperation, and the co-player's observation indices, cooperation
    and rewards. The co-player is naive (memory-1 ``naive_logits``) where ``is_naive``, else the
    meta policy with ``opponent_params``."""
    batch = config.batch_size
    observations, env_state = jax.vmap(lambda _: env.reset())(jnp.arange(batch))

    def step(carry, key):
        observations, env_state, (meta_state, opponent_state) = carry
        seen = jnp.argmax(observations, axis=-1)  # (B, 2) observation index of each player
        meta_logit, meta_state = policy.apply(meta_params, meta_state, seen[:, 0], episode)
        opponent_logit, opponent_state = policy.apply(opponent_params, opponent_state, seen[:, 1], episode)
        co_logit = jnp.where(is_naive, naive_logits[seen[:, 1]], opponent_logit)
        logits = jnp.stack([meta_logit, co_logit], axis=-1)  # (B, 2)
        cooperate = jax.random.uniform(key, (batch, 2)) < jax.nn.sigmoid(logits)
        actions = jnp.where(cooperate, COOPERATE, DEFECT)
        log_probs = jnp.where(cooperate, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
        observations, env_state, rewards, _ = jax.vmap(env.step)(env_state, actions)
        return (observations, env_state, (meta_state, opponent_state)), (
            log_probs[:, 0], rewards[:, 0], cooperate[:, 0], seen[:, 1], cooperate[:, 1], rewards[:, 1], seen[:, 0])

    (_, _, states), outputs = jax.lax.scan(step, (observations, env_state, states),
                                           jax.random.split(key, config.episode_length))
    return states, tuple(jnp.swapaxes(x, 0, 1) for x in outputs)  # (T, B) -> (B, T)


def naive_step(config: ShapingConfig, naive_logits, values, seen, cooperated, rewards):
    """The naive co-player's step after an inner episode, from its B games of it: ``seen``,
    ``cooperated``, ``rewards`` (B, T). Returns its new logits (5,) and values (5,) (unchanged unless
    ``config.naive_baseline == "value"``): one policy-gradient step on the Monte-Carlo returns within
    the episode less the baseline. A learned baseline is the values from before the episode (so it
    does not depend on the actions it is a baseline for); they then take their own step."""
    returns = network_game.discounted_returns(rewards, config.naive_discount) * config.reward_scale
    if config.naive_baseline == "value":
        baseline = values[seen]
        # Each value moves that fraction of the way to the mean return seen from its observation
        # (a squared-error step scaled per observation, so stable for any rate in (0, 1]).
        total = jnp.zeros_like(values).at[seen].add(returns - baseline)
        count = jnp.zeros_like(values).at[seen].add(1.0)
        values = values + config.naive_value_learning_rate * total / jnp.maximum(count, 1.0)
    else:
        baseline = jnp.mean(returns, axis=0, keepdims=True)
    advantages = returns - baseline

    def surrogate(logits):
        logits = logits[seen]
        log_probs = jnp.where(cooperated, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
        return jnp.mean(jnp.sum(log_probs * advantages, axis=1))

    return naive_logits + config.naive_learning_rate * jax.grad(surrogate)(naive_logits), values


def make_meta_trajectory(config: ShapingConfig, policy: MetaPolicy | None = None) -> Callable:
    """(meta params, naive start logits (5,), key, opponent params, is_naive) -> dict of (B, M T)
    arrays: the meta agent's ``log_probs``, ``rewards``, ``cooperated`` (its actions) and
    ``observations`` (the observation index it saw), the co-player's ``co_rewards`` and
    ``co_cooperated``. One meta-trajectory against one co-player: a naive learner
    from the start logits where ``is_naive``, else the meta policy with the (fixed) opponent params.
    With the tabular policy the params are logits (M, 5), with memory-1 (5,). ``policy``: the config's by
    default."""
    env = IteratedPrisonersDilemma(episode_length=config.episode_length)
    policy = make_policy(config) if policy is None else policy

    def run(meta_params, naive_logits, key, opponent_params, is_naive):
        def episode(carry, inputs):
            naive_logits, values, states = carry
            index, key = inputs
            states, (log_probs, rewards, cooperated, seen, co_cooperated, co_rewards, observations) = _play_episode(
                env, policy, meta_params, opponent_params, naive_logits, is_naive, states, index, key, config)
            # The naive co-player's step on its own B episodes, from the games just played.
            naive_logits, values = naive_step(config, naive_logits, values, seen, co_cooperated, co_rewards)
            return (naive_logits, values, states), (log_probs, rewards, cooperated, co_rewards, co_cooperated,
                                                    observations)

        # The policies' states start once per meta-trajectory and persist across its inner episodes.
        states = (policy.initial_state(config.batch_size), policy.initial_state(config.batch_size))
        _, outputs = jax.lax.scan(episode, (naive_logits, jnp.zeros(NUM_OBSERVATIONS), states),
                                  (jnp.arange(config.episodes), jax.random.split(key, config.episodes)))
        names = ("log_probs", "rewards", "cooperated", "co_rewards", "co_cooperated", "observations")
        # (M, B, T) -> (B, M T)
        return {name: jnp.swapaxes(x, 0, 1).reshape(config.batch_size, -1) for name, x in zip(names, outputs)}

    return run


def naive_start(config: ShapingConfig) -> Callable:
    """key -> where a naive learner starts (``ShapingConfig.naive_inits``): memory-1 logits (5,), or a
    network's params. With fixed starts the key picks one of them uniformly."""
    if config.naive_policy == "memory-1":
        if not config.naive_inits:
            return lambda key: jnp.zeros(NUM_OBSERVATIONS)
        starts = config.naive_init_scale * jax.random.normal(NAIVE_STARTS_KEY, (config.naive_inits, NUM_OBSERVATIONS))
        return lambda key: starts[jax.random.randint(key, (), 0, config.naive_inits)]
    init = player_network(config)[0]
    if not config.naive_inits:
        return init
    keys = jax.random.split(NAIVE_STARTS_KEY, config.naive_inits)
    return lambda key: init(keys[jax.random.randint(key, (), 0, config.naive_inits)])


def make_game(config: ShapingConfig) -> Callable:
    """(meta params, key, opponent params, is_naive) -> the dict of ``make_meta_trajectory``. The
    naive learner starts at ``naive_start``; a network one takes one A2C step per inner episode with
    ``naive_optimizer`` (``naive_learning_rate``, gradient norm clipped at 1)."""
    start = naive_start(config)
    if config.naive_policy == "memory-1":
        run = make_meta_trajectory(config)
        if not config.naive_inits:  # the start needs no key (and the games' random streams stay as they were)
            return lambda meta_params, key, opponent_params, is_naive: run(
                meta_params, start(key), key, opponent_params, is_naive)

        def game(meta_params, key, opponent_params, is_naive):
            start_key, key = jax.random.split(key)
            return run(meta_params, start(start_key), key, opponent_params, is_naive)

        return game
    _, apply, initial_state = player_network(config)
    # With dynamic naive learners the co-player's params are the meta agent it copies (``_meta_batch``).
    naive = (lambda key, opponent: opponent) if config.dynamic_naive else (lambda key, opponent: start(key))
    optimizer = OPTIMIZERS[config.naive_optimizer](config.naive_learning_rate)
    return network_game.make_run(
        _network_env(config), apply, naive, initial_state, episode_length=config.episode_length,
        episodes=config.episodes, batch_size=config.batch_size,
        naive_optimizer=optax.chain(optax.clip_by_global_norm(1.0), optimizer),
        reward_scale=config.reward_scale, naive_baseline=config.naive_baseline,
        cooperation=_cooperation(config), naive_discount=config.naive_discount)


def _cooperation(config: ShapingConfig) -> Callable:
    """(env state, actions (2,)) -> bool (2,): what the reports count as cooperating."""
    if config.env == CLEANUP:
        return lambda state, actions: state.positions[:, 1] == 0  # on the river column, where dirt is cleaned
    return lambda state, actions: actions == COOPERATE


def init_params(config: ShapingConfig, key=None):
    """The pool's starting params, each leaf with a leading population axis; the tabular policy's are
    logits (population, M, 5) and memory-1's (population, 5), all zero (cooperate with probability 1/2)."""
    key = jax.random.PRNGKey(0) if key is None else key
    return jax.vmap(make_policy(config).init)(jax.random.split(key, config.population))


def _masked_mean(values, mask, axis=None):
    """The mean of ``values`` where ``mask`` holds (broadcast), NaN where it holds nowhere."""
    mask = jnp.broadcast_to(mask, values.shape)
    count = jnp.sum(mask, axis=axis)
    return jnp.where(count > 0, jnp.sum(jnp.where(mask, values, 0.0), axis=axis) / jnp.maximum(count, 1), jnp.nan)


def _normalize(weights, mask):
    """The weights where ``mask`` holds, less their mean, over their std (left alone elsewhere)."""
    mask = jnp.broadcast_to(mask, weights.shape)
    mean = _masked_mean(weights, mask)
    std = jnp.sqrt(_masked_mean((weights - mean) ** 2, mask))
    return jnp.where(mask, (weights - mean) / (std + 1e-8), weights)


def step_mean_baseline(weights, mask):
    """Weights (P, K, B, L) less, per opponent type (``mask`` (P, K, 1, 1): naive or not), the mean weight at
    the same step l over the other co-players' games of that type: every (p', k') != (p, k). A co-player's
    own B games share its learner, so their weights depend on each other's actions; the others' do not,
    so the baseline leaves the gradient unbiased. Where no other game of the type exists it is 0."""
    if jnp.ndim(weights) != 4 or jnp.shape(mask) != tuple(jnp.shape(weights)[:2]) + (1, 1):
        raise ValueError(f"step_mean_baseline needs weights (P, K, B, L) and a mask (P, K, 1, 1); got weights "
                         f"{jnp.shape(weights)} and mask {jnp.shape(mask)}")
    mask = jnp.broadcast_to(mask, weights.shape)
    for kind in (mask, ~mask):
        totals = jnp.sum(jnp.where(kind, weights, 0.0), axis=2)  # (P, K, L), over the B games
        counts = jnp.sum(kind, axis=2).astype(weights.dtype)
        others = jnp.sum(counts, axis=(0, 1)) - counts
        baseline = (jnp.sum(totals, axis=(0, 1)) - totals) / jnp.maximum(others, 1.0)
        weights = jnp.where(kind, weights - baseline[:, :, None, :], weights)
    return weights


def make_replay(config: ShapingConfig) -> Callable:
    """(meta params, one co-player's games) -> (log-probs (B, M T) of the meta agent's actions in the
    games under the params, its values (B, M T) or None): the meta policy run again over the inputs it
    saw, its state started once and carried across the inner episodes as in the game. Under the params
    that played the games these are the games' own log-probs; PPO's ratio compares the two."""
    batch, steps = config.batch_size, config.episode_length
    if config.naive_policy == "network":
        _, apply, initial_state = player_network(config)
        return lambda params, games: network_game.unroll(apply, initial_state(batch), params, games["observations"],
                                                         games["actions"])
    policy = make_policy(config)

    def replay(params, games):
        def step(state, inputs):
            seen, index = inputs
            logit, state = policy.apply(params, state, seen, index // steps)
            return state, logit

        seen = games["observations"]
        _, logits = jax.lax.scan(step, policy.initial_state(batch), (seen.T, jnp.arange(seen.shape[1])))
        logits = logits.T  # (B, M T), the log-odds of cooperating
        return jnp.where(games["cooperated"], jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)), None

    return replay


def _meta_batch(config: ShapingConfig) -> tuple[Callable, Callable]:
    """``(collect, loss)``. ``collect(pool params, key)`` -> (batch, metrics): one meta-batch of games
    (module docstring) with the weights of each meta score, fixed, each leaf (P, K, ...).
    ``loss(pool params, batch)``: the clipped surrogate on the batch, to be descended, plus the
    critic's loss; its gradient at the params that collected the batch is the rule's score-function
    estimate (the ratio is 1 there and the clip inactive)."""
    run, replay = make_game(config), make_replay(config)
    pool, slots, steps = config.population, config.meta_batch, config.episode_length
    inputs = ("observations", "actions") if config.naive_policy == "network" else ("observations", "cooperated")

    def collect(pool_params, key):
        pool_params = jax.lax.stop_gradient(pool_params)
        type_key, opponent_key, play_key = jax.random.split(key, 3)
        is_naive = jax.random.uniform(type_key, (pool, slots)) < config.p_naive
        # Another meta agent of the pool (the agent itself when it is alone).
        offsets = jax.random.randint(opponent_key, (pool, slots), 1, max(pool, 2)) if pool > 1 else 0
        opponents = (jnp.arange(pool)[:, None] + offsets) % pool * jnp.ones((pool, slots), jnp.int32)
        if config.dynamic_naive:  # a naive learner starts as a copy of any meta agent of the pool, itself included
            copied = jax.random.randint(jax.random.fold_in(opponent_key, 1), (pool, slots), 0, pool)
            opponents = jnp.where(is_naive, copied, opponents)
        opponent_params = jax.tree.map(lambda x: x[opponents], pool_params)  # (P, K, ...)
        keys = jax.random.split(play_key, pool * slots).reshape(pool, slots, -1)
        play = jax.vmap(jax.vmap(run, (None, 0, 0, 0)), (0, 0, 0, 0))
        games = play(pool_params, keys, opponent_params, is_naive)  # each (P, K, B, M T, ...)
        naive = is_naive[:, :, None, None]
        rewards = games["rewards"]
        if config.meta_critic:
            rewards, values = rewards * config.reward_scale, games["values"]

            def weigh(rule):  # (GAE advantages, the critic's lambda-return targets), each (P, K, B, M T)
                return jax.vmap(jax.vmap(lambda r, v: rule_advantages(
                    r, v, steps, rule, gae_lambda=config.meta_gae_lambda)))(rewards, values)
        else:
            def weigh(rule):  # (the rule's Monte-Carlo weights, no critic)
                return jax.vmap(jax.vmap(lambda r: rule_returns(r, steps, rule)))(rewards), None
        (by_rule, _), (unaware, targets) = weigh(config.rule), weigh("batch-unaware")
        # Against naive co-players the rule's weights; against meta agents the ordinary policy gradient.
        weights = jnp.where(naive, by_rule, unaware)
        if config.meta_baseline == "step-mean":
            weights = step_mean_baseline(weights, naive)
        if config.normalize_advantages:
            weights = _normalize(_normalize(weights, naive), ~naive)
        batch = {name: games[name] for name in inputs} | {"log_probs": games["log_probs"], "weights": weights}
        if targets is not None:
            batch["targets"] = targets

        def per_episode(x, mask):  # (P, K, B, M T) -> (M,)
            x = x.reshape(x.shape[:3] + (config.episodes, steps)).astype(jnp.float32)
            return _masked_mean(x, mask[:, :, None, None, None], axis=(0, 1, 2, 4))

        metrics = {
            "meta_reward": _masked_mean(games["rewards"], naive),
            "naive_reward": _masked_mean(games["co_rewards"], naive),
            "meta_vs_meta_reward": _masked_mean(games["rewards"], ~naive),
            "meta_cooperation": per_episode(games["cooperated"], is_naive),
            "naive_cooperation": per_episode(games["co_cooperated"], is_naive),
            "meta_vs_meta_cooperation": per_episode(games["cooperated"], ~is_naive),
        }
        return batch, metrics

    def loss(pool_params, batch):
        log_probs, values = jax.vmap(jax.vmap(replay, (None, 0)))(pool_params, batch)  # (P, K', B, M T)
        ratio = jnp.exp(log_probs - batch["log_probs"])
        weights = batch["weights"]
        clipped = jnp.clip(ratio, 1.0 - config.meta_clip, 1.0 + config.meta_clip)
        # Maximise sum_b sum_l min(r W, clip(r) W) per co-player, averaged over the meta-batch, summed over the pool.
        objective = jnp.sum(jnp.mean(jnp.sum(jnp.minimum(ratio * weights, clipped * weights), axis=(2, 3)), axis=1))
        if "targets" in batch:  # the critic's loss: summed over the steps, as the policy term is
            critic_loss = 0.5 * jnp.sum(jnp.mean(jnp.sum((values - batch["targets"]) ** 2, axis=(2, 3)), axis=1))
            objective = objective - network_game.VALUE_LOSS_WEIGHT * critic_loss
        return -objective

    return collect, loss


def make_meta_gradient(config: ShapingConfig) -> Callable:
    """(pool params, key) -> (the gradient of the pool's meta objective, to be descended; metrics):
    the rule's score-function estimate from one meta-batch of games (module docstring)."""
    collect, loss = _meta_batch(config)

    def gradient_of(pool_params, key):
        batch, metrics = collect(pool_params, key)
        return jax.grad(loss)(pool_params, batch), metrics

    return gradient_of


def clip_per_agent(max_norm: float) -> optax.GradientTransformation:
    """Each meta agent's gradient (the slice at its index of every leaf's leading pool axis) rescaled to
    global norm ``max_norm`` at most, as ``optax.clip_by_global_norm`` does for one agent."""
    check_positive_number("max_norm", max_norm)

    def update(updates, state, params=None):
        del params
        squares = sum(jnp.sum(jnp.reshape(x, (x.shape[0], -1)) ** 2, axis=1) for x in jax.tree.leaves(updates))
        scale = jnp.minimum(1.0, max_norm / jnp.maximum(jnp.sqrt(squares), 1e-12))  # (P,)
        return jax.tree.map(lambda x: x * scale.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_meta_update(config: ShapingConfig) -> tuple[Callable, optax.GradientTransformation]:
    """``(update, optimizer)``: ``update((pool params, optimizer state), key)`` -> (new carry,
    metrics), the jitted update of the pool (module docstring): one meta-batch of games, then
    ``meta_epochs`` passes over it in ``meta_minibatches`` minibatches of co-players, each a step of
    ``meta_optimizer`` (Adam by default; after ``clip_per_agent`` with ``meta_max_grad_norm``) on the
    clipped surrogate (PPO; one pass in one minibatch: one step along ``make_meta_gradient``'s
    estimate), its gradient summed over ``meta_grad_chunks`` pieces of the minibatch. Metrics: the
    rewards per step of ``METRICS`` (NaN where no game of that kind was played) and the cooperation
    per inner episode, (M,), of ``COOPERATION``."""
    collect, loss = _meta_batch(config)
    optimizer = OPTIMIZERS[config.meta_optimizer](config.meta_learning_rate)
    if config.meta_max_grad_norm is not None:
        optimizer = optax.chain(clip_per_agent(config.meta_max_grad_norm), optimizer)
    parts, chunks = config.meta_minibatches, config.meta_grad_chunks

    def gradient(pool_params, minibatch):
        if chunks == 1:
            return jax.grad(loss)(pool_params, minibatch)
        # The loss averages over the co-players (axis 1), so the mean of the pieces' gradients is the whole's.
        pieces = jax.tree.map(lambda x: jnp.swapaxes(x.reshape((x.shape[0], chunks, -1) + x.shape[2:]), 0, 1),
                              minibatch)

        def add(total, piece):
            return jax.tree.map(jnp.add, total, jax.grad(loss)(pool_params, piece)), None

        total, _ = jax.lax.scan(add, jax.tree.map(jnp.zeros_like, pool_params), pieces)
        return jax.tree.map(lambda g: g / chunks, total)

    def step(carry, minibatch):
        pool_params, opt_state = carry
        updates, opt_state = optimizer.update(gradient(pool_params, minibatch), opt_state, pool_params)
        return (optax.apply_updates(pool_params, updates), opt_state), None

    def update(carry, key):
        batch, metrics = collect(carry[0], key)

        def epoch(carry, key):
            if parts == 1:
                return step(carry, batch)[0], None
            # The co-players shuffled, then cut into minibatches, each gathered only when its step comes (a
            # shuffled copy of the whole batch would double the memory the paper's sizes need).
            order = jax.random.permutation(key, config.meta_batch).reshape(parts, -1)
            return jax.lax.scan(lambda carry, share: step(carry, jax.tree.map(lambda x: x[:, share], batch)),
                                carry, order)[0], None

        carry, _ = jax.lax.scan(epoch, carry, jax.random.split(jax.random.fold_in(key, 1), config.meta_epochs))
        return carry, metrics

    return jax.jit(update), optimizer


def train_shaping(config: ShapingConfig, *, seeds=(0,), updates: int = 2000, log_every: int = 100,
                  progress: bool = True) -> dict:
    """Train one pool per seed, the seeds vmapped, compiled once; the metrics averaged over each block
    of ``log_every`` updates.

    Returns: ``update`` (N,), the last update of each block; for each of ``METRICS`` (seeds, N); for
    each of ``COOPERATION`` (seeds, N, M); and ``params``, the final pools (leaves (seeds, P, ...)).
    """
    check_integer("updates", updates, 1)
    check_integer("log_every", log_every, 1)
    if updates % log_every:
        raise ValueError(f"updates ({updates}) must be a whole number of log_every blocks ({log_every})")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    update, optimizer = make_meta_update(config)

    @jax.jit
    def block(carry, keys):  # keys (log_every, seeds, 2)
        def one(carry, keys):
            return jax.vmap(update)(carry, keys)

        carry, metrics = jax.lax.scan(one, carry, keys)
        return carry, jax.tree.map(lambda x: jnp.nanmean(x, axis=0), metrics)

    seed_keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    params = jax.vmap(lambda k: init_params(config, k))(seed_keys)
    carry = (params, jax.vmap(optimizer.init)(params))
    history = []
    setting = "shaping" if config.p_naive == 1 else f"mixed pool p_naive={config.p_naive:g}"
    bar = tqdm(total=updates, desc=f"{config.env} {setting} {config.policy} {config.rule}", disable=not progress,
               unit="update")
    for start in range(0, updates, log_every):
        keys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, start), log_every))(seed_keys)
        carry, metrics = block(carry, jnp.swapaxes(keys, 0, 1))
        history.append(jax.device_get(metrics))
        # The block's mean over seeds beside the bar: a long run shows where it is heading.
        bar.set_postfix({name.removesuffix("_reward"): f"{np.nanmean(history[-1][name]):.3f}" for name in METRICS
                         if np.isfinite(history[-1][name]).any()}, refresh=False)
        bar.update(log_every)
    bar.close()
    out = {"update": np.arange(log_every, updates + 1, log_every)}
    for name in METRICS + COOPERATION:
        out[name] = np.stack([h[name] for h in history], axis=1)
    out["params"] = jax.device_get(carry[0])
    return out
