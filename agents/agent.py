"""An agent = an epsilon-mixed MLP policy + a credit estimator (+ its models) + optax optimisers.

``Agent.update`` is one pure, jittable learning step on a batch of trajectories: a model step on
the estimator's loss, the credit matrix, and a policy-gradient step on the surrogate
``sum_t sum_a pi(a | S_t) C_t(a)`` plus an entropy bonus. Three switches of ``AgentConfig`` set how
the model step and the credit meet (the COCOA paper's code: ``model_first=True``,
``model_batch="resample"``, ``weight_decay=1e-4``; docs/training.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cocoa.agents.estimator import Estimator, policy_surrogate
from cocoa.agents.policy import MLPPolicy, entropy
from cocoa.checks import check_nonnegative_number, check_positive_number
from cocoa.types import Trajectory


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Hyper-parameters shared by every agent (defaults follow the COCOA paper, docs/benchmarks/index.md)."""

    hidden_sizes: Sequence[int] = (64, 64)
    learning_rate: float = 1e-3
    epsilon: float = 0.05
    entropy_coef: float = 0.03
    model_learning_rate: float = 1e-3
    max_grad_norm: Optional[float] = None
    # The credit of a batch uses the model after this update's model step (True) or before it (False).
    model_first: bool = False
    # The model trains on the batch itself ("batch") or on as many trajectories drawn from it with
    # replacement ("resample", as the COCOA paper's code).
    model_batch: str = "batch"
    # AdamW's decoupled weight decay for the policy and the model (0: plain Adam).
    weight_decay: float = 0.0

    def __post_init__(self):
        for name in ("learning_rate", "model_learning_rate"):
            check_positive_number(name, getattr(self, name))
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1]; got {self.epsilon!r}")
        check_nonnegative_number("entropy_coef", self.entropy_coef)
        if self.max_grad_norm is not None:
            check_positive_number("max_grad_norm", self.max_grad_norm)
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive layer widths; got {self.hidden_sizes!r}")
        if not isinstance(self.model_first, (bool, np.bool_)):
            raise ValueError(f"model_first must be True or False; got {self.model_first!r}")
        if self.model_batch not in MODEL_BATCHES:
            raise ValueError(f"model_batch must be one of {', '.join(MODEL_BATCHES)}; got {self.model_batch!r}")
        check_nonnegative_number("weight_decay", self.weight_decay)


@dataclasses.dataclass(frozen=True)
class AgentState:
    policy_params: Any
    policy_opt_state: Any
    model_params: Any
    model_opt_state: Any


jax.tree_util.register_dataclass(
    AgentState, data_fields=["policy_params", "policy_opt_state", "model_params", "model_opt_state"],
    meta_fields=[])


MODEL_BATCHES = ("batch", "resample")


def _optimizer(learning_rate: float, max_grad_norm: Optional[float], weight_decay: float,
               frozen: Sequence[str] = ()) -> optax.GradientTransformation:
    """Adam(W), optionally after global-norm clipping; the top-level parameters named in ``frozen`` never move
    (not even by the weight decay)."""
    adam = optax.adamw(learning_rate, weight_decay=weight_decay) if weight_decay > 0 else optax.adam(learning_rate)
    adam = adam if max_grad_norm is None else optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)
    if not frozen:
        return adam
    labels = lambda params: {name: jax.tree.map(lambda _: "frozen" if name in frozen else "trained", value)
                             for name, value in params.items()}
    return optax.multi_transform({"trained": adam, "frozen": optax.set_to_zero()}, labels)


def resample(trajectory: Trajectory, key) -> Trajectory:
    """As many trajectories as the batch holds, drawn from it uniformly with replacement."""
    batch_size = trajectory.batch_size
    chosen = jax.random.randint(key, (batch_size,), 0, batch_size)
    return jax.tree.map(lambda x: x[chosen], trajectory)


class Agent:
    """A policy trained with one credit estimator."""

    def __init__(self, estimator: Estimator, num_actions: int, config: AgentConfig = AgentConfig()):
        if not isinstance(num_actions, int) or num_actions < 1:
            raise ValueError(f"num_actions must be a positive integer; got {num_actions!r}")
        self.estimator = estimator
        self.config = config
        self.num_actions = num_actions
        self.policy = MLPPolicy(num_actions, tuple(config.hidden_sizes), config.epsilon)
        self.policy_optimizer = _optimizer(config.learning_rate, config.max_grad_norm, config.weight_decay)
        self.model_optimizer = _optimizer(config.model_learning_rate, config.max_grad_norm, config.weight_decay,
                                          estimator.frozen_params)

    @property
    def name(self) -> str:
        return self.estimator.name + ("-gt" if self.estimator.exact else "")

    def init(self, key, observation_shape) -> AgentState:
        policy_key, model_key = jax.random.split(key)
        policy_params = self.policy.init(policy_key, observation_shape)
        if self.estimator.exact:
            model_params = self.exact_model(policy_params)
        else:
            model_params = self.estimator.init_model(model_key, observation_shape, self.num_actions)
        return AgentState(policy_params, self.policy_optimizer.init(policy_params),
                          model_params, self.model_optimizer.init(model_params))

    @property
    def prepare_episodes(self) -> int:
        """Episodes of the initial policy that ``prepare`` needs before the first update (0: none)."""
        return 0 if self.estimator.exact else self.estimator.prepare_episodes

    def prepare(self, state: AgentState, trajectory: Trajectory, key) -> AgentState:
        """``state`` after the estimator's one-off fit (``Estimator.prepare``) on ``trajectory``, at least
        ``prepare_episodes`` episodes of the initial policy; ``state`` itself when there is none."""
        if not self.prepare_episodes:
            return state
        if trajectory.batch_size < self.prepare_episodes:
            raise ValueError(f"{self.name} fits on {self.prepare_episodes} episodes before its first update; "
                             f"got {trajectory.batch_size}")
        model_params = self.estimator.prepare(state.model_params, trajectory, key)
        return dataclasses.replace(state, model_params=model_params, model_opt_state=self.model_optimizer.init(model_params))

    def behaviour_probs(self, policy_params, observations):
        """The epsilon-mixed policy used to act while training."""
        return self.policy.probs(policy_params, observations)

    def greedy_free_probs(self, policy_params, observations):
        """The learned softmax policy without epsilon exploration (used for evaluation)."""
        return self.policy.probs(policy_params, observations, epsilon=0.0)

    def policy_table(self, policy_params, mdp):
        """(S, A) the behaviour policy on every state of ``mdp``: what the oracle and exact models read."""
        return self.behaviour_probs(policy_params, jnp.asarray(mdp.observations, jnp.float32))

    def exact_model(self, policy_params):
        """The oracle's model tables for an exact (``-gt``) estimator under the current behaviour policy."""
        return self.estimator.exact_model(self.policy_table(policy_params, self.estimator.mdp))

    def update(self, state: AgentState, trajectory: Trajectory, key=None) -> tuple[AgentState, dict]:
        """One learning step on a batch of trajectories; pure and jittable.

        The model step trains on the batch (or, with ``model_batch="resample"``, on a batch drawn
        from it with replacement, which needs ``key``); the credit uses the model before that step,
        or after it with ``model_first``. When the trajectory says so (``num_states``, set by the
        rollout on tabular environments), the networks run once per state and are read at
        ``trajectory.state_index``: the same values and gradients, cheaper.
        """
        config = self.config
        if config.model_batch == "resample" and key is None and not self.estimator.exact:
            raise ValueError("model_batch='resample' draws the model's batch at random: pass key= to Agent.update")
        loss_and_credit = jax.value_and_grad(self.estimator.model_loss_and_credit, has_aux=True)
        if self.estimator.exact:  # the oracle's model for the policy that collected the batch
            state = dataclasses.replace(state, model_params=self.exact_model(state.policy_params))
            credit, model_loss = self.estimator.credit(state.model_params, trajectory), jnp.zeros(())
        elif config.model_batch == "batch" and not config.model_first:
            # One pass of the model gives the loss, its gradient and the credit.
            (model_loss, credit), grads = loss_and_credit(state.model_params, trajectory)
            state = self._model_step(state, grads)
        else:
            model_batch = resample(trajectory, key) if config.model_batch == "resample" else trajectory
            (model_loss, _), grads = loss_and_credit(state.model_params, model_batch)
            stepped = self._model_step(state, grads)
            # The unused half of each pass (credit of the model batch, loss of the credit pass) is compiled away.
            credit_params = stepped.model_params if config.model_first else state.model_params
            credit = self.estimator.model_loss_and_credit(credit_params, trajectory)[1]
            state = stepped
        credit = jax.lax.stop_gradient(credit)

        def policy_objective(policy_params):
            if trajectory.num_states:
                probs = self.behaviour_probs(policy_params, trajectory.state_observations())[trajectory.state_index]
            else:
                probs = self.behaviour_probs(policy_params, trajectory.observations)
            surrogate = policy_surrogate(probs, credit, trajectory.mask)
            bonus = jnp.mean(jnp.sum(entropy(probs) * trajectory.mask, axis=-1))
            return -(surrogate + self.config.entropy_coef * bonus), (surrogate, bonus)

        (_, (surrogate, bonus)), policy_grads = jax.value_and_grad(policy_objective, has_aux=True)(
            state.policy_params)
        updates, policy_opt_state = self.policy_optimizer.update(
            policy_grads, state.policy_opt_state, state.policy_params)
        policy_params = optax.apply_updates(state.policy_params, updates)
        metrics = {"surrogate": surrogate, "entropy": bonus, "model_loss": model_loss,
                   "policy_grad_norm": optax.tree.norm(policy_grads)}
        return dataclasses.replace(state, policy_params=policy_params, policy_opt_state=policy_opt_state), metrics

    def model_update(self, state: AgentState, trajectory: Trajectory) -> tuple[AgentState, jax.Array]:
        """One optimiser step on the estimator's model loss (nothing for exact or model-free estimators)."""
        if self.estimator.exact:
            return state, jnp.zeros(())
        loss, grads = jax.value_and_grad(self.estimator.model_loss)(state.model_params, trajectory)
        return self._model_step(state, grads), loss

    def _model_step(self, state: AgentState, grads) -> AgentState:
        updates, model_opt_state = self.model_optimizer.update(grads, state.model_opt_state, state.model_params)
        model_params = self.estimator.after_update(optax.apply_updates(state.model_params, updates))
        return dataclasses.replace(state, model_params=model_params, model_opt_state=model_opt_state)
