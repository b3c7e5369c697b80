"""Exact trajectory enumeration against the oracle (float64) and against the real rollout's fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cocoa import envs, oracle
from cocoa.agents import tabular_policy
from cocoa.enumeration import count_trajectories, enumerate_trajectories
from cocoa.rollout import rollout
from cocoa.types import TabularMDP

EPSILON = 0.05


def key_to_door(length):
    return envs.make("LinearKeyToDoor-v0", length=length, layout_seed=1)


def random_logits(mdp, seed=0):
    return np.random.default_rng(seed).normal(size=(mdp.num_states, mdp.num_actions))


def weighted_visits(trajectory, probabilities, num_states):
    """(T, S) Σ_i P(τ_i) 1{S_t = s} over the real (unmasked) steps."""
    states = np.asarray(trajectory.state_index)
    mask = np.asarray(trajectory.mask)
    visits = np.zeros((states.shape[1], num_states))
    for t in range(states.shape[1]):
        np.add.at(visits[t], states[:, t], probabilities * mask[:, t])
    return visits


def small_stochastic_mdp(seed=0):
    """5 states (state 4 terminal), 2 actions, 2 random successors, 3 reward values, horizon 4."""
    rng = np.random.default_rng(seed)
    num_states, num_actions = 5, 2
    successors = rng.integers(0, num_states, size=(num_states, num_actions, 2))
    successors[:, 0, 1] = 4  # action 0 may end the episode
    successor_probs = rng.dirichlet(np.ones(2), size=(num_states, num_actions))
    reward_probs = rng.dirichlet(np.ones(3), size=(num_states, num_actions))
    reward_probs[1, 1] = [0.0, 1.0, 0.0]  # a zero-probability reward branch to prune
    successors[4], successor_probs[4], reward_probs[4] = 4, [1.0, 0.0], [1.0, 0.0, 0.0]
    initial = np.array([0.6, 0.4, 0.0, 0.0, 0.0])
    return TabularMDP(successors=successors.astype(np.int32), successor_probs=successor_probs,
                      reward_values=np.array([0.0, 1.0, -0.5]), reward_probs=reward_probs, initial=initial,
                      observations=np.eye(num_states, dtype=np.float32), terminal=np.arange(5) == 4, horizon=4)


@pytest.mark.parametrize("which", ["key-to-door L=5", "stochastic H=4"])
def test_probabilities_and_expectations_match_the_oracle(which):
    mdp = key_to_door(5).tabular_mdp() if which.startswith("key") else small_stochastic_mdp()
    with jax.enable_x64(True):
        probs = np.asarray(oracle.mixed_policy(jnp.asarray(random_logits(mdp)), EPSILON))
        trajectory, probabilities = enumerate_trajectories(mdp, probs)
        expected_return = float(oracle.expected_return(mdp, probs))
        occupancy = np.asarray(oracle.occupancy(mdp, probs))
    assert probabilities.dtype == np.float64 and np.all(probabilities > 0)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert len(probabilities) == count_trajectories(mdp, probs) == trajectory.batch_size
    if which.startswith("key"):
        assert len(probabilities) == 1600  # 4^3 action paths x (4 + 1)^2 on the two apple cells
    returns = np.asarray(trajectory.rewards).sum(axis=1)
    assert returns @ probabilities == pytest.approx(expected_return, rel=1e-12, abs=1e-12)
    live = ~np.asarray(mdp.terminal)
    np.testing.assert_allclose(weighted_visits(trajectory, probabilities, mdp.num_states), occupancy * live,
                               atol=1e-12)
    # P(the episode ends at step t) = Σ_s d_t(s) Σ_a π(a|s) P(successor terminal | s, a), last step included.
    ends = np.sum(np.asarray(mdp.successor_probs) * ~live[np.asarray(mdp.successors)], axis=-1)
    np.testing.assert_allclose(probabilities @ np.asarray(trajectory.dones),
                               occupancy @ (live * np.sum(probs * ends, axis=-1)), atol=1e-12)


def test_padding_after_the_terminal_state():
    mdp = small_stochastic_mdp()
    probs = np.full((mdp.num_states, mdp.num_actions), 0.5)
    trajectory, probabilities = enumerate_trajectories(mdp, probs)
    states, mask = np.asarray(trajectory.state_index), np.asarray(trajectory.mask)
    dones, rewards = np.asarray(trajectory.dones), np.asarray(trajectory.rewards)
    ended = states == 4
    assert ended.any() and (~ended).any()
    np.testing.assert_array_equal(mask, (~ended).astype(mask.dtype))
    assert np.all(rewards[ended] == 0) and np.all(np.asarray(trajectory.actions)[ended] == 0)
    # dones mark exactly the step that enters the terminal state (or the last step, if it does).
    enters = np.concatenate([ended[:, 1:] & ~ended[:, :-1], np.zeros((len(states), 1), bool)], axis=1)
    np.testing.assert_array_equal(dones[:, :-1], enters[:, :-1])
    assert dones.sum(axis=1).max() == 1
    # Once ended, always ended; and the zero-probability reward branch was pruned.
    assert np.all(np.diff(ended.astype(int), axis=1) >= 0)
    taken = (states == 1) & (np.asarray(trajectory.actions) == 1)
    assert taken.any() and np.all(rewards[taken] == 1.0)
    np.testing.assert_allclose(np.asarray(trajectory.observations), np.eye(5)[states])


def test_fields_match_the_rollout_of_the_real_environment():
    env = key_to_door(5)
    mdp = env.tabular_mdp()
    logits = jnp.asarray(random_logits(mdp, seed=1), jnp.float32)
    probs = oracle.mixed_policy(logits, EPSILON)
    enumerated, _ = enumerate_trajectories(mdp, probs)
    sampled = rollout(env, tabular_policy(mdp, EPSILON), logits, jax.random.PRNGKey(0), batch_size=64,
                      horizon=mdp.horizon)
    for name in ("observations", "actions", "rewards", "dones", "mask", "policy_probs", "state_index"):
        a, b = getattr(enumerated, name), getattr(sampled, name)
        assert a.dtype == b.dtype and a.shape[1:] == b.shape[1:], name
    assert enumerated.info == {}
    # Every sampled episode is one of the enumerated ones, with identical fields.
    keys = {tuple(a) + tuple(np.round(r, 5)): i for i, (a, r) in
            enumerate(zip(np.asarray(enumerated.actions), np.asarray(enumerated.rewards)))}
    for a, r, index in zip(np.asarray(sampled.actions), np.asarray(sampled.rewards), range(64)):
        row = keys[tuple(a) + tuple(np.round(r, 5))]
        for name in ("observations", "dones", "mask", "policy_probs", "state_index"):
            np.testing.assert_allclose(np.asarray(getattr(enumerated, name))[row],
                                       np.asarray(getattr(sampled, name))[index], rtol=1e-6, err_msg=name)


def test_too_many_trajectories_is_an_error():
    mdp = key_to_door(7).tabular_mdp()
    uniform = np.full((mdp.num_states, mdp.num_actions), 0.25)
    assert count_trajectories(mdp, uniform) == 32000
    with pytest.raises(ValueError, match=r"has 32,000 trajectories .* more than max_trajectories=20,000"):
        enumerate_trajectories(mdp, uniform, max_trajectories=20_000)


def test_bad_policy_is_an_error():
    mdp = key_to_door(5).tabular_mdp()
    with pytest.raises(ValueError, match=r"policy_probs must have shape \(S, A\) = \(11, 4\); got \(11, 3\)"):
        enumerate_trajectories(mdp, np.full((11, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"sum to one per state"):
        enumerate_trajectories(mdp, np.full((11, 4), 0.3))
