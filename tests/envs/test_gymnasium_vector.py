"""gymnasium.make_vec("cocoa/<name>"): one jitted batched step, next-step autoreset; async mode."""

import subprocess
import sys
import textwrap

import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import cocoa  # noqa: F401  (registers the Gymnasium ids)
from cocoa import envs, oracle
from cocoa.envs.gymnasium_vector import CocoaVectorEnv


@pytest.mark.parametrize("name", envs.names())
def test_make_vec_gives_the_jitted_vector_env(name):
    vector = gymnasium.make_vec("cocoa/" + name, num_envs=5)
    assert isinstance(vector, CocoaVectorEnv) and vector.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    observations, infos = vector.reset(seed=0)
    assert observations.shape == (5, *vector.cocoa_env.observation_shape) and observations.dtype == np.float32
    assert vector.observation_space.contains(observations) and infos == {}
    observations, rewards, terminated, truncated, _ = vector.step(vector.action_space.sample())
    assert vector.observation_space.contains(observations)
    assert rewards.shape == terminated.shape == truncated.shape == (5,) and not truncated.any()


def test_next_step_autoreset_resets_with_zero_reward_and_ignores_the_action():
    vector = gymnasium.make_vec("cocoa/LinearKeyToDoor-v0", num_envs=3, length=4, distractor_prob=1.0)
    first, _ = vector.reset(seed=1)
    plan = [0, 1, 3, 0]  # copy 0: key, apple, open the door, treasure; the others never pick the key
    for step in range(4):
        observations, rewards, terminated, _, infos = vector.step(np.array([plan[step], 1, 3]))
        assert terminated.all() == (step == 3)
    assert rewards[0] > 0 and infos["treasure"][0] and not infos["treasure"][1:].any()
    observations, rewards, terminated, truncated, infos = vector.step(np.array([2, 2, 2]))
    np.testing.assert_array_equal(observations, first)  # the reset observation
    assert (rewards == 0).all() and not terminated.any() and not truncated.any()
    assert not infos["_treasure"].any()  # nothing happened in the reset step
    observations, *_ = vector.step(np.array([0, 0, 0]))
    assert not np.array_equal(observations, first)  # stepping again moves on


def test_sampled_returns_match_the_oracle():
    """Mean return of uniformly random actions over 4,000 episodes against the exact J (z < 4)."""
    vector = gymnasium.make_vec("cocoa/LinearKeyToDoor-v0", num_envs=4000, length=7)
    mdp = vector.cocoa_env.tabular_mdp()
    rng = np.random.default_rng(0)
    vector.reset(seed=0)
    returns = np.zeros(4000)
    for _ in range(7):
        _, rewards, *_ = vector.step(rng.integers(0, 4, size=4000))
        returns += rewards
    exact = float(oracle.expected_return(mdp, jnp.full((mdp.num_states, 4), 0.25)))
    assert abs(returns.mean() - exact) < 4 * returns.std(ddof=1) / np.sqrt(returns.size)


def test_bad_use_is_an_error():
    vector = CocoaVectorEnv("Tree-v0", num_envs=2)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        vector.step(np.array([0, 0]))
    vector.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(2,\); got \(3,\)"):
        vector.step(np.array([0, 0, 0]))
    with pytest.raises(ValueError, match=r"actions must be integers in \[0, 6\); got 9"):
        vector.step(np.array([0, 9]))
    with pytest.raises(ValueError, match=r"actions must be integers in \[0, 6\); got 0.5"):
        vector.step(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="num_envs must be a positive integer; got 0"):
        CocoaVectorEnv("Tree-v0", num_envs=0)
    with pytest.raises(ValueError, match="unknown environment 'Nope'"):
        CocoaVectorEnv("Nope", num_envs=1)


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)


def test_async_mode_is_refused_with_fork_and_works_with_spawn():
    """A forked worker would hang in JAX: it refuses with a message instead, and the parent fails fast.
    Spawned workers start afresh and work. (Subprocesses, so that a regression cannot hang the suite.)"""
    forked = _run("""
        import warnings; warnings.simplefilter("ignore")
        import cocoa, gymnasium
        try:
            gymnasium.make_vec("cocoa/Tree-v0", num_envs=2, vectorization_mode="async").reset(seed=0)
        except Exception as error:
            print("parent failed:", type(error).__name__)
    """)
    assert "parent failed" in forked.stdout, (forked.stdout, forked.stderr)
    assert "cannot run in a process forked after JAX started" in forked.stderr
    assert "vector_kwargs={'context': 'spawn'}" in forked.stderr
    spawned = _run("""
        import cocoa, gymnasium, numpy as np
        if __name__ == "__main__":
            vector = gymnasium.make_vec("cocoa/Tree-v0", num_envs=2, vectorization_mode="async",
                                        vector_kwargs={"context": "spawn"})
            observations, _ = vector.reset(seed=0)
            observations, rewards, *_ = vector.step(np.array([0, 1]))
            print("spawned ok", observations.shape, rewards.shape)
            vector.close()
    """)
    assert "spawned ok (2, " in spawned.stdout, spawned.stderr
