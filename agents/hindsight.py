"""Hindsight objects and the hindsight model p(a | s, u) shared by the COCOA family and HCA-state.

Meulemans et al. 2023 ("COCOA paper"), §3-4; docs/estimators/cocoa_reward.md.

A *hindsight object* U_k summarises what happened at a later step k. The model predicts the
earlier action from the earlier state and a later object,

    p_phi(a | s, u) = softmax_a(h_phi(s, u) + log pi(a | s)),

so the network h_phi learns only the log-ratio and the contribution coefficient is
w(s, a, u) = p_phi(a | s, u) / pi(a | s) = exp(h_phi(s, u)_a - logsumexp_b(h_phi(s, u)_b + log pi(b | s))).
The network's first layer is split into a state part and an object part, W [s; u] = W_s s + W_u u,
so that pairs (t, k) cost one broadcast addition instead of one layer each. By default the network
also sees the current policy, through a gate (``HindsightNetwork``), as in the COCOA paper's code.
"""

from __future__ import annotations

from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np



POLICY_FEATURE_MODES = ("gate", "input", "none")
MODEL_INITS = ("default", "zero")


def check_network_options(policy_features: str, relu_difference: bool, model_init: str):
    """Validates the hindsight network's switches (shared by every estimator that builds one)."""
    if policy_features not in POLICY_FEATURE_MODES:
        raise ValueError(f"policy_features must be one of {', '.join(POLICY_FEATURE_MODES)}; got {policy_features!r}")
    if not isinstance(relu_difference, (bool, np.bool_)):
        raise ValueError(f"relu_difference must be True or False; got {relu_difference!r}")
    if model_init not in MODEL_INITS:
        raise ValueError(f"model_init must be one of {', '.join(MODEL_INITS)}; got {model_init!r}")


def policy_features(policy_probs, floor: float = 1e-6):
    """f(pi) = [log pi(.|s), log(1 - pi(.|s))], (..., 2A): the policy as the network sees it.

    Clipped to [floor, 1 - floor] so that a deterministic row (or epsilon = 0) stays finite.
    """
    probs = jnp.clip(policy_probs, floor, 1.0 - floor)
    return jnp.concatenate([jnp.log(probs), jnp.log1p(-probs)], axis=-1)


def _mirrored_halves(shape, dtype):
    """Haiku's default weights for one half of a layer, copied into the other: g(W z) = 0 exactly.

    Zeroing a layer under the ReLU difference would leave the model dead (ReLU's gradient at 0 is
    0, so no weight would ever move); equal halves start at g = 0 and still learn.
    """
    fan_in, width = shape
    half = hk.initializers.TruncatedNormal(1.0 / np.sqrt(fan_in))((fan_in, width // 2), dtype)
    return jnp.concatenate([half, half], axis=-1)


class HindsightNetwork:
    """h_phi(s, u; pi) -> (A,) logits; inputs broadcast against each other (pairs, or all classes).

    The default is the network of the COCOA paper's public code (Meulemans et al., NeurIPS 2023,
    arXiv 2306.16803): a hidden layer z = ReLU(W_s s + W_u u + b); a base head b(z) and a gate head
    G(z) (A x 2A), each a "ReLU difference" g of a linear layer; and the current policy entering
    through the gate, h = b(z) + G(z) f(pi), f = [log pi, log(1 - pi)]. With the gate the model can
    keep p(a | s, u) = pi(a | s) for objects that say nothing about the action *whatever* pi is,
    instead of re-learning h every time the policy moves; g gives w = 1 exactly over whole regions.

    Switches (each an ablation of that network; docs/benchmarks/hindsight_ablation.md):
      policy_features: "gate" (h = b + G f), "input" (f joins s and u in the hidden layer) or
        "none" (the network never sees pi).
      relu_difference: the heads are g(Linear_{2n}(z)) (True) or plain Linear_n(z) (False).
      model_init: "default" (haiku's truncated normal everywhere: w != 1 at the start) or "zero"
        (output layers that give h = 0, so w = 1 exactly at the start: a zero layer, or under the
        ReLU difference two equal random halves, since a zero layer there would never learn).
    ``policy_features="none", relu_difference=False, model_init="zero"`` is cocoa's earlier network.
    """

    def __init__(self, num_actions: int, hidden_sizes: Sequence[int] = (256,), *, policy_features: str = "gate",
                 relu_difference: bool = True, model_init: str = "default"):
        if not hidden_sizes:
            raise ValueError("the hindsight network needs at least one hidden layer")
        check_network_options(policy_features, relu_difference, model_init)
        self.num_actions = num_actions
        self.uses_policy = policy_features != "none"
        if model_init == "default":
            output_init = None
        elif relu_difference:  # g(y) = 0 with live gradients; a zero layer under g would never learn
            output_init = _mirrored_halves
        else:
            output_init = hk.initializers.Constant(0.0)
        doubled = 2 if relu_difference else 1
        # One output layer serves both heads: row a of its output is [b_a, G_a1 .. G_a2A] (gate) or
        # [b_a] (otherwise), so that h_a = <row a, [1, f]>. One matmul instead of two; same maths.
        row = 1 + 2 * num_actions if policy_features == "gate" else 1

        def forward(observations, objects, features, pairs=None):
            observations = jnp.reshape(observations, (*observations.shape[:-1], -1))
            state = hk.Linear(hidden_sizes[0], name="state")(observations)
            objected = hk.Linear(hidden_sizes[0], with_bias=False, name="object")(objects)
            if pairs is not None:  # the first layer once per step, then gathered for every pair
                state, objected = state[:, pairs[0]], objected[:, pairs[1]]
            hidden = state + objected
            if policy_features == "input":
                hidden = hidden + hk.Linear(hidden_sizes[0], with_bias=False, name="policy")(features)
            hidden = jax.nn.relu(hidden)
            for index, size in enumerate(hidden_sizes[1:]):
                hidden = jax.nn.relu(hk.Linear(size, name=f"hidden_{index}")(hidden))
            heads = hk.Linear(doubled * num_actions * row, w_init=output_init, name="heads")(hidden)
            heads = jnp.reshape(heads, (*heads.shape[:-1], doubled, num_actions, row))
            # g(y) = ReLU(y_1) - ReLU(y_2) as a signed sum over the halves, folded into the contraction.
            signs = jnp.array([1.0, -1.0] if relu_difference else [1.0], heads.dtype)
            if relu_difference:
                heads = jax.nn.relu(heads)
            if policy_features != "gate":
                return jnp.einsum("...haj,h->...a", heads, signs)
            with_one = jnp.concatenate([jnp.ones_like(features[..., :1]), features], axis=-1)
            return jnp.einsum("...haj,h,...j->...a", heads, signs, with_one)

        self.network = hk.without_apply_rng(hk.transform(forward))

    def init(self, key, observation_shape, object_size: int):
        return self.network.init(key, jnp.zeros((1, *observation_shape), jnp.float32),
                                  jnp.zeros((1, object_size), jnp.float32),
                                  jnp.zeros((1, 2 * self.num_actions), jnp.float32))

    def log_coefficients(self, params, observations, objects, policy_probs, pairs=None):
        """log w(s, ., u) and log p(. | s, u), each (..., A), broadcasting observations, objects and probs.

        With ``pairs`` = (earlier, later), two index arrays of length P, the inputs are per step,
        (B, T, ...), and the outputs (B, P, A) are those of the pairs (S_earlier, U_later).
        """
        if pairs is not None:
            if len(pairs) != 2 or np.shape(pairs[0]) != np.shape(pairs[1]) or np.ndim(pairs[0]) != 1:
                raise ValueError("pairs must be (earlier, later), two index arrays of one length; got shapes "
                                 f"{[np.shape(p) for p in pairs]}")
            if np.ndim(observations) < 3 or np.shape(observations)[:2] != np.shape(objects)[:2]:
                raise ValueError("with pairs, observations and objects are per step, (B, T, ...) each; got "
                                 f"{np.shape(observations)} and {np.shape(objects)}")
            policy_probs = policy_probs[:, pairs[0]]
        features = policy_features(policy_probs) if self.uses_policy else jnp.zeros((1, 2 * self.num_actions))
        logits = self.network.apply(params, observations, objects, features, pairs)
        log_policy = jnp.log(jnp.maximum(policy_probs, 1e-30))
        log_normaliser = jax.nn.logsumexp(logits + log_policy, axis=-1, keepdims=True)
        return logits - log_normaliser, logits + log_policy - log_normaliser
