"""COCOA-feature: COCOA with learned binary reward features as the hindsight object.

Meulemans et al., NeurIPS 2023, arXiv 2306.16803 (§4); docs/estimators/cocoa_feature.md.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cocoa.agents.hindsight_estimator import ClassHindsightEstimator
from cocoa.agents.registry import register


class RewardFeatures:
    """phi(S_k, A_k), ``num_features`` learned binary reward features: COCOA-feature's objects.

    phi(s, a) = 1{s W_a + b_a > 0} with W_a >= 0 (softplus of free weights), trained through a
    straight-through estimator (forward: the threshold; backward: the gradient of a steep sigmoid)
    to regress the reward with a linear readout; the class of an object
    is its bit pattern read as a binary number, so U = 2 ** num_features.
    """

    def __init__(self, num_features: int):
        self.num_features = num_features
        self.num_objects = 2 ** num_features

    def init(self, key, observation_shape, num_actions):
        size = int(np.prod(observation_shape))
        weight_key, readout_key = jax.random.split(key)
        return {"weights": jax.random.normal(weight_key, (num_actions, size, self.num_features)) - 1.0,
                "bias": -jnp.ones((num_actions, self.num_features)),
                "readout": 0.1 * jax.random.normal(readout_key, (self.num_features,)),
                "readout_bias": jnp.zeros(())}

    def bits(self, params, observations, actions):
        """(..., num_features) binary features of (observation, action), straight-through gradients."""
        flat = jnp.reshape(observations, (*observations.shape[:-1], -1))
        # Every action's features in one matmul, then the taken action's (cheaper than gathering weights).
        every_action = jnp.einsum("...i,aif->...af", flat, jax.nn.softplus(params["weights"])) + params["bias"]
        taken = jnp.take_along_axis(every_action, actions[..., None, None], axis=-2)[..., 0, :]
        # Scaled by 10 so that Adam's steps (model_learning_rate) move the features quickly.
        activation = 10.0 * taken
        soft = jax.nn.sigmoid(activation)  # the straight-through surrogate of the threshold
        hard = (activation > 0).astype(activation.dtype)
        return soft + jax.lax.stop_gradient(hard - soft)

    def code(self, bits):
        return jnp.sum(jnp.round(bits).astype(jnp.int32) * (2 ** jnp.arange(self.num_features)), axis=-1)

    def class_features(self):
        """(U, F) the bit pattern of each class, as the hindsight network's input."""
        return ((jnp.arange(self.num_objects)[:, None] >> jnp.arange(self.num_features)) & 1).astype(jnp.float32)

    def loss(self, params, trajectory, shrinkage: float):
        """Squared error of the linear reward readout plus L1 shrinkage of the active bits."""
        bits = self.bits(params, trajectory.observations, trajectory.actions)
        prediction = bits @ params["readout"] + params["readout_bias"]
        mask = trajectory.mask
        error = jnp.sum(jnp.square(prediction - trajectory.rewards) * mask)
        penalty = shrinkage * jnp.sum(jnp.sum(jnp.abs(bits), axis=-1) * mask)
        return (error + penalty) / jnp.maximum(jnp.sum(mask), 1.0)


@register
class CocoaFeature(ClassHindsightEstimator):
    """COCOA-feature: hindsight object = learned binary reward features phi(S_k, A_k) (COCOA paper §4).

    The features are a per-action non-negative linear map of the observation, binarised by a
    straight-through threshold, trained to regress the reward with a linear readout and an L1
    shrinkage on the active bits; they train for ``feature_burn_in`` updates, then freeze, so the
    hindsight model learns coefficients for a fixed set of objects. Only ``2 ** num_features``
    classes exist, so credit and loss use the regrouped O(B T U) form. There is no exact
    variant: the objects themselves are learned.
    """

    name = "cocoa-feature"
    has_exact_variant = False
    only_rewarding = True

    def __init__(self, num_features: int = 4, feature_burn_in: int = 500, feature_shrinkage: float = 1e-3,
                 model_hidden_sizes: Sequence[int] = (256,), policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default", *, mdp=None):
        if not isinstance(num_features, int) or not 1 <= num_features <= 12:
            raise ValueError(f"num_features must be an integer in [1, 12] (2**num_features classes); "
                             f"got {num_features!r}")
        if not isinstance(feature_burn_in, int) or feature_burn_in < 0:
            raise ValueError(f"feature_burn_in must be a non-negative integer; got {feature_burn_in!r}")
        if feature_shrinkage < 0:
            raise ValueError(f"feature_shrinkage must be >= 0; got {feature_shrinkage!r}")
        self.feature_burn_in = feature_burn_in
        self.feature_shrinkage = float(feature_shrinkage)
        self.features = RewardFeatures(num_features)
        self.num_objects = self.features.num_objects
        super().__init__(model_hidden_sizes, dict(policy_features=policy_features, relu_difference=relu_difference,
                                                  model_init=model_init), mdp)

    def init_model(self, key, observation_shape, num_actions):
        hindsight_key, feature_key = jax.random.split(key)
        return {"hindsight": super().init_model(hindsight_key, observation_shape, num_actions),
                "features": self.features.init(feature_key, observation_shape, num_actions),
                "updates": jnp.zeros((), jnp.float32)}

    def class_features(self):
        return self.features.class_features()

    def hindsight_params(self, model_params):
        return model_params["hindsight"]

    def classes(self, model_params, trajectory):
        bits = self.features.bits(model_params["features"], trajectory.observations, trajectory.actions)
        return self.features.code(jax.lax.stop_gradient(bits))

    def object_map(self, model_params, mdp):
        num_states, num_actions = mdp.num_states, mdp.num_actions
        observations = jnp.broadcast_to(jnp.asarray(mdp.observations, jnp.float32)[:, None],
                                        (num_states, num_actions, *mdp.observations.shape[1:]))
        actions = jnp.broadcast_to(jnp.arange(num_actions), (num_states, num_actions))
        classes = self.features.code(self.features.bits(model_params["features"], observations, actions))
        return jnp.broadcast_to(classes[..., None], (num_states, num_actions, mdp.num_reward_values)), \
            self.num_objects

    def model_loss_and_credit(self, model_params, trajectory):
        hindsight, credit = super().model_loss_and_credit(model_params, trajectory)
        training_features = (model_params["updates"] < self.feature_burn_in).astype(jnp.float32)
        return hindsight + training_features * self.features.loss(
            model_params["features"], trajectory, self.feature_shrinkage), credit

    def after_update(self, model_params):
        return dict(model_params, updates=model_params["updates"] + 1.0)
