"""A cocoa agent to call from your own Gymnasium loop: ``act``, ``observe``, ``update``.

::

    env = gymnasium.make("CartPole-v1")
    learner = Learner("advantage", env, batch_size=8)
    observation, _ = env.reset(seed=0)
    while learner.updates < 100:
        action = learner.act(observation)
        observation, reward, terminated, truncated, _ = env.step(action)
        learner.observe(reward, terminated or truncated)
        if terminated or truncated:
            observation, _ = env.reset()
        if learner.ready:
            metrics = learner.update()

``act`` samples from the agent's behaviour policy (one jitted call per step) and remembers the step;
``observe`` records its reward and whether the episode ended; once ``batch_size`` episodes are
done, ``update`` pads them to the horizon into a ``Trajectory`` and runs ``Agent.update``, the
same compiled update that ``cocoa.train`` runs, compiled once.
docs/environments/bring_your_own.md walks through it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cocoa import agents
from cocoa.agents.agent import Agent
from cocoa.envs.gymnasium_source import Spaces, check_horizon
from cocoa.train import NonFiniteError
from cocoa.host_rollout import empty_batch, to_trajectory
from cocoa.types import Trajectory


class Learner:
    """An agent that learns from episodes you step yourself.

    Args:
      agent: an agent name (``cocoa.agents.names()``; exact ``-gt`` variants need a table, use
        ``cocoa.train`` for those) or a built ``Agent``.
      env: the ``gymnasium.Env`` you will step (only its spaces and ``spec.max_episode_steps`` are read).
      batch_size: episodes per update.
      horizon: the longest episode (default: the env's ``max_episode_steps``).
      seed: seeds the policy's initialisation and the action sampling.
      **options: the agent's options when ``agent`` is a name (``learning_rate=...``, ``reward_values=...``).
    """

    def __init__(self, agent: str | Agent, env, *, batch_size: int = 8, horizon: int | None = None,
                 seed: int = 0, **options):
        name = getattr(getattr(env, "spec", None), "id", None) or type(getattr(env, "unwrapped", env)).__name__
        self.spaces = Spaces(getattr(env, "observation_space", None), getattr(env, "action_space", None), name)
        if horizon is None:
            horizon = getattr(getattr(env, "spec", None), "max_episode_steps", None)
            if horizon is None:
                raise ValueError(f"{name} has no max_episode_steps; pass horizon=H (the longest episode)")
        self.horizon = check_horizon(horizon)
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        self.batch_size = int(batch_size)
        if isinstance(agent, str):
            agent = agents.make(agent, num_actions=self.spaces.num_actions, **options)
        elif options:
            raise ValueError(f"agent options {sorted(options)} go with an agent name, not a built Agent")
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an agent name or a cocoa.agents.Agent; got {type(agent).__name__}")
        if agent.num_actions != self.spaces.num_actions:
            raise ValueError(f"agent {agent.name!r} has {agent.num_actions} actions; {name} has {self.spaces.num_actions}")
        self.agent = agent
        init_key, self._key = jax.random.split(jax.random.PRNGKey(seed))
        self.state = agent.init(init_key, self.spaces.observation_shape)
        self._rng = np.random.default_rng(seed)
        self._probs = jax.jit(agent.behaviour_probs)
        self._greedy_free_probs = jax.jit(agent.greedy_free_probs)
        self._update = jax.jit(agent.update)
        self.updates = 0
        self._prepared = not agent.prepare_episodes  # the estimator's one-off fit, before the first update
        self._episodes: list[dict] = []
        self._episode = self._new_episode()
        self._waiting = False  # an action taken whose reward has not been observed

    @staticmethod
    def _new_episode() -> dict:
        return {"observations": [], "actions": [], "policy_probs": [], "rewards": []}

    @property
    def ready(self) -> bool:
        """Whether enough finished episodes wait for ``update``: ``batch_size``, and before the first update
        also the ``agent.prepare_episodes`` that the estimator's one-off fit takes (COCOA-feature's features)."""
        return len(self._episodes) >= self._needed

    @property
    def _needed(self) -> int:
        return self.batch_size + (0 if self._prepared else self.agent.prepare_episodes)

    def act(self, observation, *, explore: bool = True) -> int:
        """An action for ``observation`` from the behaviour policy (``explore=False``: the epsilon-free
        policy, for evaluation: nothing is recorded then)."""
        encoded = self.spaces.encode(np.asarray(observation)[None])
        probs_fn = self._probs if explore else self._greedy_free_probs
        probs = np.asarray(probs_fn(self.state.policy_params, encoded))[0]
        action = int(min(np.searchsorted(np.cumsum(probs), self._rng.random(), side="right"), probs.size - 1))
        if explore:
            if self._waiting:
                raise RuntimeError("act() was called twice without observe(): report each step's reward first")
            if len(self._episode["actions"]) >= self.horizon:
                raise ValueError(f"the episode is longer than the horizon {self.horizon}; pass a larger "
                                 "horizon= or end episodes earlier (observe(reward, done=True))")
            self._episode["observations"].append(encoded[0])
            self._episode["actions"].append(action)
            self._episode["policy_probs"].append(probs.astype(np.float32))
            self._waiting = True
        return int(self.spaces.action(action))

    def observe(self, reward: float, done: bool) -> None:
        """The reward of the last ``act`` and whether the episode ended there (terminated or truncated)."""
        if not self._waiting:
            raise RuntimeError("observe() needs an act() first: it records the reward of the last action")
        reward = float(reward)
        if not np.isfinite(reward):
            raise ValueError(f"reward must be finite; got {reward}")
        self._episode["rewards"].append(reward)
        self._waiting = False
        if done:
            self._episodes.append(self._episode)
            self._episode = self._new_episode()

    def update(self) -> dict:
        """One update on the first ``batch_size`` finished episodes; returns its metrics (floats). The first
        update first fits the estimator's one-off stage (``Agent.prepare``) on the episodes before those."""
        if not self.ready:
            raise RuntimeError(f"update() needs {self._needed} finished episodes; {len(self._episodes)} so far")
        if not self._prepared:
            fit, self._episodes = self._episodes[:self.agent.prepare_episodes], self._episodes[self.agent.prepare_episodes:]
            self.agent.estimator.check_rewards(np.concatenate([episode["rewards"] for episode in fit]))
            self._key, key = jax.random.split(self._key)
            self.state = jax.jit(self.agent.prepare)(self.state, self._trajectory(fit), key)
            self._prepared = True
        batch, self._episodes = self._episodes[:self.batch_size], self._episodes[self.batch_size:]
        trajectory = self._trajectory(batch)
        self.agent.estimator.check_rewards(np.concatenate([episode["rewards"] for episode in batch]))
        self._key, key = jax.random.split(self._key)
        state, metrics = self._update(self.state, trajectory, key)
        if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves((state.policy_params, metrics))):
            raise NonFiniteError(f"update {self.updates + 1} of {self.agent.name} produced NaN or inf; try a smaller "
                                 "learning rate or max_grad_norm")
        self.state = state
        self.updates += 1
        returns = [sum(episode["rewards"]) for episode in batch]
        return {"return": float(np.mean(returns)), **{name: float(value) for name, value in metrics.items()}}

    def _trajectory(self, episodes: list[dict]) -> Trajectory:
        batch = empty_batch(len(episodes), self.horizon, self.spaces.observation_shape, self.spaces.num_actions)
        for row, episode in enumerate(episodes):
            length = len(episode["actions"])
            for name in ("observations", "policy_probs", "actions", "rewards"):
                batch[name][row, :length] = episode[name]
            batch["dones"][row, length - 1] = True
            batch["mask"][row, :length] = 1.0
        return to_trajectory(batch, (len(episodes),))
