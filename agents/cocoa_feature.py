"""COCOA-feature: COCOA with learned binary reward features as the hindsight object.

Meulemans et al., NeurIPS 2023, arXiv 2306.16803 (§4 and its code's feature model);
docs/estimators/cocoa_feature.md.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cocoa.agents.hindsight_estimator import ClassHindsightEstimator
from cocoa.agents.registry import register
from cocoa.types import Trajectory


class RewardFeatures:
    """phi(S_k, A_k), ``num_features`` binary reward features: COCOA-feature's objects.

    phi_f(s, a) = 1{sum_i G_{a,f,i}^2 s_i > threshold}: non-negative (squared) per-action weights, no
    bias, an identity straight-through gradient, and one linear readout shared by every action that
    regresses the reward from the bits. Fitted once on a batch of episodes (``fit``), then frozen.
    """

    def __init__(self, num_features: int, threshold: float = 0.05):
        self.num_features = num_features
        self.threshold = threshold

    def init(self, key, observation_shape, num_actions):
        size = int(np.prod(observation_shape))
        gate_key, readout_key = jax.random.split(key)
        return {"gate": self.threshold + jax.random.normal(gate_key, (num_actions, self.num_features, size)),
                "readout": jax.random.truncated_normal(readout_key, -2.0, 2.0, (self.num_features,))
                / np.sqrt(self.num_features),
                "readout_bias": jnp.zeros(())}

    def bits(self, params, observations, actions):
        """(..., num_features) binary features of (observation, action), identity straight-through gradient."""
        flat = jnp.reshape(observations, (*observations.shape[:-1], -1))
        # Every action's features in one matmul, then the taken action's (cheaper than gathering weights).
        every_action = jnp.einsum("...i,afi->...af", flat, jnp.square(params["gate"]))
        drive = jnp.take_along_axis(every_action, actions[..., None, None], axis=-2)[..., 0, :]
        return drive + jax.lax.stop_gradient((drive > self.threshold).astype(drive.dtype) - drive)

    def predict(self, params, observations, actions):
        return self.bits(params, observations, actions) @ params["readout"] + params["readout_bias"]

    def squared_error(self, params, observations, actions, rewards, weights):
        """Half the weighted mean squared error of the readout's reward prediction."""
        error = jnp.square(self.predict(params, observations, actions) - rewards) / 2
        return jnp.sum(error * weights) / jnp.maximum(jnp.sum(weights), 1.0)

    def regrouped_squared_error(self, trajectory: Trajectory):
        """params -> ``squared_error`` over the real steps of a tabular ``trajectory`` less a constant, regrouped
        exactly by (state, action): O(S A) per call, whatever the number of steps."""
        num_actions, mask = trajectory.num_actions, trajectory.mask.reshape(-1)
        cells = trajectory.num_states * num_actions
        index = (trajectory.state_index * num_actions + trajectory.actions).reshape(-1)
        count = jax.ops.segment_sum(mask, index, cells)
        reward_sum = jax.ops.segment_sum(trajectory.rewards.reshape(-1) * mask, index, cells)
        observations = jnp.repeat(trajectory.state_observations(), num_actions, axis=0)
        actions = jnp.tile(jnp.arange(num_actions), trajectory.num_states)
        total = jnp.maximum(jnp.sum(mask), 1.0)

        def error(params):  # sum over steps of (prediction - R)^2 / 2, less the constant sum of R^2 / 2
            prediction = self.predict(params, observations, actions)
            return jnp.sum(count * jnp.square(prediction) / 2 - prediction * reward_sum) / total

        return error

    def fit(self, params, trajectory: Trajectory, key, *, steps: int, learning_rate: float, gate_decay: float,
            readout_decay: float, batch_size: int):
        """``params`` after ``steps`` AdamW steps on ``squared_error`` over the real steps of ``trajectory``.

        After each step the gate shrinks by ``gate_decay`` and the readout by ``readout_decay`` (the
        paper's code's decoupled decays): units that do not help predict the reward fall below the
        threshold and stay off. On a tabular trajectory (``trajectory.states``) every step's error
        counts, regrouped (``regrouped_squared_error``); otherwise each fit step draws ``batch_size``
        real steps of the batch uniformly with replacement.
        """
        if trajectory.states is not None:
            regrouped = self.regrouped_squared_error(trajectory)
            loss = lambda params, _: regrouped(params)
        else:
            observations = trajectory.observations.reshape(-1, *trajectory.observations.shape[2:])
            actions, rewards, mask = (x.reshape(-1) for x in (trajectory.actions, trajectory.rewards, trajectory.mask))

            def loss(params, step_key):
                chosen = jax.random.choice(step_key, mask.shape[0], (batch_size,), p=mask / jnp.sum(mask))
                return self.squared_error(params, observations[chosen], actions[chosen], rewards[chosen],
                                          jnp.ones(batch_size))

        optimizer = optax.adamw(learning_rate, weight_decay=1e-4)

        def step(carry, step_key):
            params, opt_state = carry
            updates, opt_state = optimizer.update(jax.grad(loss)(params, step_key), opt_state, params)
            params = optax.apply_updates(params, updates)
            params = {"gate": params["gate"] * (1.0 - gate_decay),
                      "readout": params["readout"] * (1.0 - readout_decay),
                      "readout_bias": params["readout_bias"] * (1.0 - readout_decay)}
            return (params, opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))
        return params


def pack(bits):
    """(..., F) 0/1 bits -> (..., ceil(F / 32)) uint32 words: a bit pattern as a few integers, to compare cheaply."""
    padded = jnp.pad(bits.astype(jnp.uint32), [(0, 0)] * (bits.ndim - 1) + [(0, -bits.shape[-1] % 32)])
    words = padded.reshape(*bits.shape[:-1], -1, 32)
    return jnp.sum(words << jnp.arange(32, dtype=jnp.uint32), axis=-1, dtype=jnp.uint32)


def unpack(words, num_bits: int):
    """``pack``'s inverse: (..., W) uint32 words -> (..., num_bits) float32 bits."""
    bits = (words[..., None] >> jnp.arange(32, dtype=jnp.uint32)) & jnp.uint32(1)
    return bits.reshape(*words.shape[:-1], -1)[..., :num_bits].astype(jnp.float32)


def distinct_patterns(words, keep, size: int):
    """Numbers the distinct rows of ``words`` (N, W) among those with ``keep`` (N,), at most ``size`` of them.

    Returns (class (N,) in [0, size], with ``size`` for rows not kept or beyond the first ``size``
    distinct ones; (size, W) the pattern of each class; (size,) whether the class holds one).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer; got {size!r}")
    if words.ndim != 2 or keep.shape != words.shape[:1]:
        raise ValueError(f"words must be (N, W) and keep (N,); got {words.shape} and {keep.shape}")
    flagged = jnp.concatenate([words, (~keep).astype(jnp.uint32)[:, None]], axis=-1)  # rows not kept: flag 1
    unique = jnp.unique(flagged, axis=0, size=size + 1, fill_value=jnp.uint32(1))  # fill rows: flag 1 too
    real = unique[:, -1] == 0  # neither a row not kept nor filling
    same = jnp.all(flagged[:, None, :] == unique[None], axis=-1) & real[None]  # (N, size + 1)
    classes = jnp.where(jnp.any(same, axis=-1), jnp.argmax(same, axis=-1), size)
    classes = jnp.minimum(classes, size)  # a (size + 1)-th distinct pattern joins the empty class
    return classes.astype(jnp.int32), unique[:size, :-1], real[:size]


@register
class CocoaFeature(ClassHindsightEstimator):
    """COCOA-feature: hindsight object = learned binary reward features phi(S_k, A_k) (COCOA paper §4).

    The features (``RewardFeatures``) are fitted once, before the first update, on ``fit_episodes``
    episodes of the initial policy (``prepare``), then frozen, as in the paper's code: the hindsight
    model learns coefficients for a fixed set of objects. The hindsight network reads an object's bit
    vector itself; credit and loss regroup exactly over the distinct patterns of the rewarding steps of
    each batch (at most ``max_patterns``: O(B T K); the steps of further patterns add no counterfactual
    credit, so the credit matches ``expected_credit`` only for batches within that bound). There is no
    exact variant: the objects themselves are learned.
    """

    name = "cocoa-feature"
    has_exact_variant = False
    only_rewarding = True
    frozen_params = ("features",)

    def __init__(self, num_features: int = 128, max_patterns: int = 16, fit_episodes: int = 240,
                 fit_steps: int = 20_000, fit_learning_rate: float = 3e-3, fit_batch_size: int = 4096,
                 feature_threshold: float = 0.05, gate_decay: float = 1e-3, readout_decay: float = 0.03,
                 model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", *, mdp=None):
        for option, value in (("num_features", num_features), ("max_patterns", max_patterns),
                              ("fit_episodes", fit_episodes), ("fit_steps", fit_steps),
                              ("fit_batch_size", fit_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{option} must be a positive integer; got {value!r}")
        for option, value in (("fit_learning_rate", fit_learning_rate), ("feature_threshold", feature_threshold)):
            if not value > 0:
                raise ValueError(f"{option} must be > 0; got {value!r}")
        for option, value in (("gate_decay", gate_decay), ("readout_decay", readout_decay)):
            if not 0 <= value < 1:
                raise ValueError(f"{option} must be in [0, 1) (the fraction shrunk per fit step); got {value!r}")
        self.prepare_episodes = fit_episodes
        self.fit_options = dict(steps=fit_steps, learning_rate=float(fit_learning_rate), gate_decay=float(gate_decay),
                                readout_decay=float(readout_decay), batch_size=fit_batch_size)
        self.features = RewardFeatures(num_features, float(feature_threshold))
        self.max_patterns = max_patterns
        self.num_objects = max_patterns + 1  # per batch: its distinct patterns, and one class for the rest
        super().__init__(model_hidden_sizes, dict(policy_features=policy_features, relu_difference=relu_difference,
                                                  model_init=model_init), mdp)

    def init_model(self, key, observation_shape, num_actions):
        hindsight_key, feature_key = jax.random.split(key)
        return {"hindsight": self.network(num_actions).init(hindsight_key, observation_shape,
                                                            self.features.num_features),
                "features": self.features.init(feature_key, observation_shape, num_actions)}

    def prepare(self, model_params, trajectory, key):
        """Fits the reward features on the episodes of the initial policy (``RewardFeatures.fit``)."""
        features = self.features.fit(model_params["features"], trajectory, key, **self.fit_options)
        return dict(model_params, features=features)

    def hindsight_params(self, model_params):
        return model_params["hindsight"]

    def active_classes(self):
        return np.arange(self.max_patterns)

    def patterns(self, model_params, observations, actions):
        """(..., W) the packed bit pattern of phi(observation, action)."""
        bits = self.features.bits(model_params["features"], observations, actions)
        return pack(jax.lax.stop_gradient(bits) > 0.5)

    def batch_classes(self, model_params, trajectory):
        words = self.patterns(model_params, trajectory.observations, trajectory.actions)
        classes, patterns, _ = distinct_patterns(words.reshape(-1, words.shape[-1]),
                                                 self.counted(trajectory).reshape(-1) > 0, self.max_patterns)
        return (classes.reshape(trajectory.rewards.shape), self.num_objects, self.active_classes(),
                unpack(patterns, self.features.num_features))

    def classes(self, model_params, trajectory):
        return self.batch_classes(model_params, trajectory)[0]

    def _cells(self, model_params, mdp):
        """(class (S, A), U, (U, W) patterns) of every (state, action) of ``mdp``, numbered over all its cells."""
        num_states, num_actions = mdp.num_states, mdp.num_actions
        observations = jnp.broadcast_to(jnp.asarray(mdp.observations, jnp.float32)[:, None],
                                        (num_states, num_actions, *mdp.observations.shape[1:]))
        actions = jnp.broadcast_to(jnp.arange(num_actions), (num_states, num_actions))
        words = self.patterns(model_params, observations, actions).reshape(num_states * num_actions, -1)
        cells = num_states * num_actions
        classes, patterns, _ = distinct_patterns(words, jnp.ones(cells, bool), cells)
        return classes.reshape(num_states, num_actions), cells, patterns

    def object_map(self, model_params, mdp):
        classes, cells, _ = self._cells(model_params, mdp)
        return jnp.broadcast_to(classes[..., None], (*classes.shape, mdp.num_reward_values)), cells

    def object_features(self, model_params, mdp):
        _, cells, patterns = self._cells(model_params, mdp)
        return unpack(patterns, self.features.num_features), np.arange(cells)
