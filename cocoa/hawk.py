"""One residual Hawk block, stepped one time step at a time: the RG-LRU recurrence behind a causal
convolution, then a gated MLP.

De, Smith, Fernando et al., "Griffin: Mixing Gated Linear Recurrences with Local Attention for
Efficient Language Models", arXiv 2402.19427 (Sec. 2.2-2.4: the residual block, the recurrent block
and the Real-Gated Linear Recurrent Unit). The COALA-PG paper (Meulemans et al., ICLR 2025, arXiv
2410.18636, App. C) uses one such block as its sequence policy.

For an input x_t of width D the RG-LRU keeps h_t (D,):

    r_t = sigmoid(W_a x_t + b_a)                        recurrence gate
    i_t = sigmoid(W_x x_t + b_x)                        input gate
    a_t = a^(c r_t),  a = sigmoid(Lambda),  c = 8       so log a_t = -c r_t softplus(-Lambda)
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

with Lambda initialised so that a^c is uniform in [0.9, 0.999]. The recurrent branch is
Linear -> causal depthwise Conv1D (width 4) -> RG-LRU, multiplied by the gate branch GeLU(Linear),
then projected back; the block adds it to its input (after RMSNorm), then adds a gated MLP
(expansion 3 by default) of the sum. With ``heads`` H > 1 the two gates' weights are
block-diagonal, H blocks of D / H (Griffin's multi-head gates). The state carried from step to step
is the convolution's last three inputs and h.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

GATE_EXPONENT = 8.0  # c
CONV_WIDTH = 4
MLP_EXPANSION = 3


def _lambda_init(shape, dtype):
    """Lambda such that a^c = sigmoid(Lambda)^c is uniform in [0.9, 0.999] (Griffin, Sec. 2.4)."""
    a_to_c = jax.random.uniform(hk.next_rng_key(), shape, minval=0.9, maxval=0.999)
    a = a_to_c ** (1.0 / GATE_EXPONENT)
    return jnp.log(a / (1.0 - a)).astype(dtype)


def rg_lru_step(x, h, gate_a, gate_x, lam):
    """One RG-LRU step for a batch: x, h (B, D); gate_a, gate_x (B, D) pre-activations; lam (D,)."""
    log_a = -GATE_EXPONENT * jax.nn.sigmoid(gate_a) * jax.nn.softplus(-lam)
    a = jnp.exp(log_a)
    return a * h + jnp.sqrt(1.0 - a ** 2) * (jax.nn.sigmoid(gate_x) * x)


def _gate(x, heads: int, name: str):
    """A gate's pre-activation: a dense layer (one head), or H independent dense layers on the H blocks
    of x's features (block-diagonal weights), initialised as haiku's dense layers are."""
    if heads == 1:
        return hk.Linear(x.shape[-1], name=name)(x)
    size = x.shape[-1] // heads
    w = hk.get_parameter(f"{name}_w", (heads, size, size),
                         init=hk.initializers.TruncatedNormal(stddev=1.0 / size ** 0.5))
    b = hk.get_parameter(f"{name}_b", (x.shape[-1],), init=jnp.zeros)
    blocks = jnp.einsum("bhi,hij->bhj", x.reshape(x.shape[:-1] + (heads, size)), w)
    return blocks.reshape(x.shape) + b


class HawkBlock(hk.Module):
    """``block(x (B, D), state) -> (y (B, D), state)``; ``initial_state(batch, width)`` starts it.
    ``mlp_width``: the gated MLP's hidden width (``MLP_EXPANSION`` x D by default); ``heads``: the
    gates' blocks (1: dense)."""

    def __init__(self, width: int, mlp_width: int | None = None, heads: int = 1, name: str | None = None):
        super().__init__(name=name)
        if width % heads:
            raise ValueError(f"heads ({heads}) must divide the width ({width})")
        self.width, self.mlp_width, self.heads = width, mlp_width, heads

    @staticmethod
    def initial_state(batch: int, width: int):
        return {"conv": jnp.zeros((batch, CONV_WIDTH - 1, width)), "h": jnp.zeros((batch, width))}

    def __call__(self, x, state):
        width = self.width
        normed = hk.RMSNorm(axis=-1, name="mix_norm")(x)
        gate = jax.nn.gelu(hk.Linear(width, name="gate_branch")(normed))
        inputs = hk.Linear(width, name="recurrent_branch")(normed)
        # Causal depthwise convolution over the last CONV_WIDTH inputs (oldest first).
        window = jnp.concatenate([state["conv"], inputs[:, None]], axis=1)
        kernel = hk.get_parameter("conv_w", (CONV_WIDTH, width),
                                  init=hk.initializers.VarianceScaling(1.0, "fan_in", "uniform", fan_in_axes=[0]))
        conv = jnp.einsum("btd,td->bd", window, kernel) + hk.get_parameter("conv_b", (width,), init=jnp.zeros)
        gate_a = _gate(conv, self.heads, "recurrence_gate")
        gate_x = _gate(conv, self.heads, "input_gate")
        lam = hk.get_parameter("lambda", (width,), init=_lambda_init)
        h = rg_lru_step(conv, state["h"], gate_a, gate_x, lam)
        mixed = x + hk.Linear(width, name="mix_out")(gate * h)
        return gated_mlp(mixed, self.mlp_width), {"conv": window[:, 1:], "h": h}


def gated_mlp(x, hidden_width: int | None = None):
    """The residual block's MLP sub-block (Griffin, Sec. 2.2), inside a haiku transform: x (B, D) plus a
    GeLU-gated MLP of width ``hidden_width`` (``MLP_EXPANSION`` * D by default) of RMSNorm(x)."""
    width = x.shape[-1]
    hidden_width = MLP_EXPANSION * width if hidden_width is None else hidden_width
    normed = hk.RMSNorm(axis=-1, name="mlp_norm")(x)
    hidden = jax.nn.gelu(hk.Linear(hidden_width, name="mlp_gate")(normed))
    hidden = hidden * hk.Linear(hidden_width, name="mlp_in")(normed)
    return x + hk.Linear(width, name="mlp_out")(hidden)

