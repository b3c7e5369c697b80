"""The Hawk block: its RG-LRU against a float64 reference, its memory, its shapes and state."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from cocoa.hawk import GATE_EXPONENT, HawkBlock, rg_lru_step


def _rg_lru_reference(x, gate_a, gate_x, lam):
    """Griffin's Eq. for the RG-LRU, step by step in float64 from h_0 = 0."""
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))
    a = sigmoid(lam) ** (GATE_EXPONENT * sigmoid(gate_a))
    h, out = np.zeros(x.shape[1]), []
    for t in range(x.shape[0]):
        h = a[t] * h + np.sqrt(1.0 - a[t] ** 2) * sigmoid(gate_x[t]) * x[t]
        out.append(h)
    return np.stack(out)


def test_the_rg_lru_step_matches_the_recurrence_written_out():
    x, gate_a, gate_x = np.random.default_rng(0).normal(size=(3, 7, 4))
    lam = np.random.default_rng(1).normal(size=4)
    h, out = jnp.zeros((1, 4)), []
    for t in range(7):
        h = rg_lru_step(x[t][None], h, gate_a[t][None], gate_x[t][None], lam)
        out.append(h[0])
    np.testing.assert_allclose(np.stack(out), _rg_lru_reference(x, gate_a, gate_x, lam), rtol=1e-5, atol=1e-6)


def _block(width=8):
    network = hk.without_apply_rng(hk.transform(lambda x, state: HawkBlock(width)(x, state)))
    state = HawkBlock.initial_state(2, width)
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((2, width)), state)
    return network, params, state


def test_lambda_starts_with_a_to_the_c_in_the_papers_range():
    _, params, _ = _block(width=64)
    a_to_c = jax.nn.sigmoid(params["hawk_block"]["lambda"]) ** GATE_EXPONENT
    assert float(a_to_c.min()) >= 0.9 - 1e-6 and float(a_to_c.max()) <= 0.999 + 1e-6


def test_the_block_remembers_its_past_through_its_state_and_nothing_else():
    """Stepped over a sequence, the output at step 5 changes when only step 0's input changes (memory
    beyond the convolution's window of 4), and the same inputs from the same state give the same output."""
    network, params, state = _block()
    xs = jax.random.normal(jax.random.PRNGKey(1), (6, 2, 8))

    def run(xs):
        s, out = state, None
        for x in xs:
            out, s = network.apply(params, x, s)
        return out, s

    out, final = run(xs)
    changed, _ = run(xs.at[0].add(1.0))
    assert out.shape == (2, 8) and final["conv"].shape == (2, 3, 8) and final["h"].shape == (2, 8)
    assert float(jnp.abs(out - changed).max()) > 1e-4
    np.testing.assert_array_equal(np.asarray(run(xs)[0]), np.asarray(out))


def test_the_mlp_width_and_the_gate_heads_shape_the_block():
    """heads H: each gate is H independent dense layers on blocks of D / H features (a gate's block h
    reads only the convolution's block h); the MLP's hidden width is its own setting."""
    width, heads = 8, 2
    network = hk.without_apply_rng(hk.transform(
        lambda x, state: HawkBlock(width, mlp_width=5, heads=heads)(x, state)))
    state = HawkBlock.initial_state(2, width)
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((2, width)), state)
    block = params["hawk_block"]
    assert block["recurrence_gate_w"].shape == (2, 4, 4) and block["input_gate_b"].shape == (8,)
    assert "hawk_block/recurrence_gate" not in params and params["hawk_block/mlp_gate"]["w"].shape == (8, 5)
    from cocoa.hawk import _gate

    gate = hk.without_apply_rng(hk.transform(lambda x: _gate(x, heads, "g")))
    gate_params = gate.init(jax.random.PRNGKey(1), jnp.zeros((1, width)))
    x = jax.random.normal(jax.random.PRNGKey(2), (3, width))
    w, b = gate_params["~"]["g_w"], gate_params["~"]["g_b"]
    dense = jnp.zeros((width, width)).at[:4, :4].set(w[0]).at[4:, 4:].set(w[1])  # the block-diagonal matrix
    np.testing.assert_allclose(gate.apply(gate_params, x), x @ dense + b, rtol=1e-5, atol=1e-6)
    default = hk.without_apply_rng(hk.transform(lambda x, state: HawkBlock(width)(x, state)))
    assert default.init(jax.random.PRNGKey(0), jnp.zeros((2, width)), state)["hawk_block/mlp_gate"]["w"].shape == (8, 24)
