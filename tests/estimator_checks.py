"""Shared statistical checks of credit estimators against the oracle (not a test module).

The setting: key-to-door with L = 7 under a fixed random tabular policy, 20,000 sampled episodes,
and the oracle's exact gradient in float64. Two checks, each with a deliberately wrong control
(``Unscaled``) that the tests show they reject:
- ``gradient_z_scores``: the Monte-Carlo mean of the per-trajectory policy gradient against the
  true gradient, one z-score per component;
- ``credit_z_scores``: the Monte-Carlo mean of C_t(a) per visited (t, S_t) cell against the
  estimator's own ``expected_credit``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from cocoa import envs, oracle
from cocoa.agents import Reinforce, policy_surrogate, tabular_policy
from cocoa.agents.credit import taken
from cocoa.rollout import rollout

LENGTH = 7
EPSILON = 0.05
NUM_EPISODES = 20000
# Max over components of |z|: the gradient has S * A = 15 * 4 = 60 components (fewer with nonzero
# variance), the credit check about 50 cells x actions. Under the null each |z| > 5 has probability
# ~6e-7 (normal approximation, N = 20000), so max |z| > 5 happens by chance w.p. < 1e-4.
Z_BOUND = 5.0
# Cells (t, s) with fewer visits are not z-tested in the credit check (normal approximation).
MIN_VISITS = 200


def key_to_door_setting():
    env = envs.make("LinearKeyToDoor-v0", length=LENGTH, layout_seed=1)
    mdp = env.tabular_mdp()
    logits = np.random.default_rng(0).normal(size=(mdp.num_states, mdp.num_actions)).astype(np.float32)
    policy_fn = tabular_policy(mdp, EPSILON)
    trajectory = jax.jit(lambda key: rollout(env, policy_fn, jnp.asarray(logits), key,
                                             batch_size=NUM_EPISODES, horizon=LENGTH))(jax.random.PRNGKey(42))
    with jax.enable_x64(True):
        logits64 = logits.astype(np.float64)
        probs64 = np.asarray(oracle.mixed_policy(jnp.asarray(logits64), EPSILON))
        true_gradient = np.asarray(oracle.policy_gradient(mdp, logits64, epsilon=EPSILON))
    assert np.abs(true_gradient).max() > 1e-2
    return dict(env=env, mdp=mdp, logits=logits, trajectory=trajectory, probs64=probs64,
                true_gradient=true_gradient)


@jax.jit
def per_trajectory_gradients(logits, credit, state_index, mask):
    """(B, S, A) gradient of each trajectory's surrogate sum_t sum_a pi(a | S_t) C_t(a) w.r.t. the logits."""

    def surrogate(table, credit, states, mask):
        probs = oracle.mixed_policy(table[states], EPSILON)
        return policy_surrogate(probs[None], jax.lax.stop_gradient(credit)[None], mask[None])

    return jax.vmap(jax.grad(surrogate), in_axes=(None, 0, 0, 0))(logits, credit, state_index, mask)


def gradient_z_scores(estimator, model_params, setting):
    trajectory = setting["trajectory"]
    credit = estimator.credit(model_params, trajectory)
    gradients = np.asarray(per_trajectory_gradients(jnp.asarray(setting["logits"]), credit,
                                                    trajectory.state_index, trajectory.mask), np.float64)
    gradients = gradients.reshape(NUM_EPISODES, -1)
    target = setting["true_gradient"].reshape(-1)
    mean, std = gradients.mean(0), gradients.std(0, ddof=1)
    varies = std > 1e-7
    z = (mean[varies] - target[varies]) / (std[varies] / np.sqrt(NUM_EPISODES))
    return z, mean[~varies], target[~varies], int(varies.sum())


def credit_z_scores(estimator, model_params, setting, expected_params=None):
    """z-scores of the Monte-Carlo mean of C_t(a) per (t, S_t) cell against expected_credit[t, s, a].

    ``expected_params`` (default ``model_params``) are the parameters the expectation is taken
    with, e.g. float64 oracle tables while the credit uses float32 ones.
    """
    mdp, trajectory = setting["mdp"], setting["trajectory"]
    credit = np.asarray(estimator.credit(model_params, trajectory), np.float64)  # (N, T, A)
    with jax.enable_x64(True):
        expected = np.asarray(estimator.expected_credit(
            model_params if expected_params is None else expected_params, mdp, setting["probs64"]))
    assert expected.shape == (mdp.horizon, mdp.num_states, mdp.num_actions)
    horizon, num_states, num_actions = expected.shape
    steps = np.broadcast_to(np.arange(LENGTH), (NUM_EPISODES, LENGTH))
    cell = (steps * num_states + np.asarray(trajectory.state_index)).reshape(-1)
    flat = credit.reshape(-1, num_actions)
    counts = np.bincount(cell, minlength=horizon * num_states)
    sums = np.zeros((horizon * num_states, num_actions))
    squares = np.zeros_like(sums)
    np.add.at(sums, cell, flat)
    np.add.at(squares, cell, flat ** 2)
    tested = counts >= MIN_VISITS
    n = counts[tested][:, None]
    mean = sums[tested] / n
    std = np.sqrt(np.maximum(squares[tested] / n - mean ** 2, 0.0) * n / (n - 1))
    target = expected.reshape(-1, num_actions)[tested]
    varies = std > 1e-6
    z = (mean[varies] - target[varies]) / (std[varies] / np.sqrt(np.broadcast_to(n, mean.shape)[varies]))
    return z, mean[~varies], target[~varies], int(tested.sum())


def randomised(params, seed, scale=0.5):
    """Every leaf of a model redrawn as ``scale`` x a standard normal: a model far from both its
    initialisation and the truth (w far from 1, Q_hat far from Q^pi), so that it really shapes the credit."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(treedef, [scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])


class Unscaled(Reinforce):
    """A deliberately biased REINFORCE: G_t on the taken action without the 1 / pi(A_t | S_t) factor.

    Its expected credit is pi(a | s) Q_t(s, a), not Q_t(s, a).
    """

    name = "unscaled"

    def credit(self, model_params, trajectory):
        credit = super().credit(model_params, trajectory)
        return credit * taken(trajectory.policy_probs, trajectory.actions)[..., None]


def lambda_returns_by_hand(rewards, next_values, mask, td_lambda):
    """The lambda-return recursion written out with loops, the reference for the vectorised targets:
    target_t = R_t + (1 - lambda) V_{t+1} + lambda target_{t+1} where step t + 1 is live, else R_t.
    ``next_values[b, t]`` is the bootstrap value of the state after step t."""
    batch, horizon = rewards.shape
    targets = np.zeros_like(rewards)
    for b in range(batch):
        following = 0.0
        for t in reversed(range(horizon)):
            if not mask[b, t]:
                continue
            live_next = t + 1 < horizon and mask[b, t + 1]
            following = rewards[b, t] + ((1 - td_lambda) * next_values[b, t] + td_lambda * following
                                         if live_next else 0.0)
            targets[b, t] = following
    return targets
