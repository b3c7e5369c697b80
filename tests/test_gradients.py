"""Gradient-quality analysis: per-trajectory gradients, exact (enumerated) vs sampled metrics, the
analysis records and the `cocoa gradients` command."""

import dataclasses
import functools
import json

import jax
import numpy as np
import pytest

from cocoa import agents, cli, envs, gradients, metrics, oracle, policy_gradients
from cocoa.agents import Agent, AgentState
from cocoa.enumeration import enumerate_trajectories
from cocoa.rollout import rollout
from estimator_checks import Unscaled  # tests/: the biased control

LENGTH = 5  # key-to-door with 1600 trajectories: enumerable
NUM_SAMPLES = 4000
# |z| of one comparison under the null exceeds 5 with probability ~6e-7 (normal approximation).
Z_BOUND = 5.0


@pytest.fixture(scope="module")
def setting():
    env = envs.make("LinearKeyToDoor-v0", length=LENGTH, layout_seed=1)
    mdp = env.tabular_mdp()
    agent = agents.make_for_env("reinforce", env)
    policy_params = gradients.shared_policy_params(env, "init", seed=3)
    state = AgentState(policy_params, policy_opt_state=None, model_params={}, model_opt_state=None)
    trajectories, probabilities = enumerate_trajectories(mdp, agent.policy_table(policy_params, mdp))
    enumerated = np.asarray(policy_gradients.per_trajectory_gradients(agent, state, trajectories), np.float64)
    true = np.asarray(policy_gradients.true_gradient(agent, state, mdp), np.float64)
    expected = np.asarray(policy_gradients.expected_gradient(agent, state, mdp), np.float64)
    return dict(env=env, mdp=mdp, agent=agent, state=state, trajectories=trajectories,
                probabilities=probabilities, enumerated=enumerated, true=true, expected=expected)


def test_enumerated_mean_is_the_oracle_expected_gradient(setting):
    num_params = sum(x.size for x in jax.tree.leaves(setting["state"].policy_params))
    assert setting["enumerated"].shape == (1600, num_params)
    mean = setting["probabilities"] @ setting["enumerated"]
    scale = np.linalg.norm(setting["expected"])
    assert scale > 0.1
    assert np.linalg.norm(mean - setting["expected"]) < 1e-5 * scale
    assert np.linalg.norm(setting["expected"] - setting["true"]) < 1e-5 * scale  # REINFORCE is unbiased


def test_enumeration_exact_bias(setting):
    mean = setting["probabilities"] @ setting["enumerated"]
    assert float(metrics.bias(mean, setting["true"])) < 1e-9
    # The biased control, on the same trajectories: clearly biased.
    biased_agent = Agent(Unscaled(), num_actions=4)
    biased = policy_gradients.per_trajectory_gradients(biased_agent, setting["state"], setting["trajectories"])
    biased_mean = setting["probabilities"] @ np.asarray(biased, np.float64)
    assert float(metrics.bias(biased_mean, setting["true"])) > 0.05


def test_exact_variance_equals_sampled_variance_within_sampling_error(setting):
    env, agent, state = setting["env"], setting["agent"], setting["state"]
    sample = jax.jit(functools.partial(rollout, env, agent.behaviour_probs, batch_size=NUM_SAMPLES, horizon=LENGTH))
    sampled = np.asarray(policy_gradients.per_trajectory_gradients(agent, state, sample(state.policy_params,
                                                                               jax.random.PRNGKey(7))), np.float64)
    true, expected = setting["true"], setting["expected"]
    exact = float(metrics.variance(setting["enumerated"], true, expected, setting["probabilities"]))
    # Per-trajectory squared deviations: their mean is the sampled variance, their spread its standard error.
    deviations = np.sum((sampled - expected) ** 2, axis=1) / np.sum(true ** 2)
    assert deviations.mean() == pytest.approx(float(metrics.variance(sampled, true, expected)), rel=1e-5)
    standard_error = deviations.std(ddof=1) / np.sqrt(NUM_SAMPLES)
    z = (deviations.mean() - exact) / standard_error
    assert abs(z) < Z_BOUND, f"z = {z:.2f}"
    # The same test rejects the enumerated variance computed without the probabilities.
    unweighted = float(metrics.variance(setting["enumerated"], true, expected))
    assert abs((deviations.mean() - unweighted) / standard_error) > Z_BOUND


def test_first_step_only(setting):
    agent, state, mdp = setting["agent"], setting["state"], setting["mdp"]
    first = np.asarray(policy_gradients.per_trajectory_gradients(agent, state, setting["trajectories"], first_step_only=True),
                       np.float64)
    true_first = np.asarray(policy_gradients.true_gradient(agent, state, mdp, first_step_only=True))
    expected_first = np.asarray(policy_gradients.expected_gradient(agent, state, mdp, first_step_only=True))
    mean = setting["probabilities"] @ first
    scale = np.linalg.norm(true_first)
    assert scale > 1e-3 and np.linalg.norm(true_first - setting["true"]) > 0.01 * scale  # a different quantity
    assert np.linalg.norm(mean - true_first) < 1e-5 * scale
    np.testing.assert_allclose(expected_first, true_first, rtol=1e-5, atol=1e-7 * scale)


def test_train_models_trains_only_the_model(setting):
    env = setting["env"]
    agent = agents.make_for_env("advantage", env)
    state = dataclasses.replace(agent.init(jax.random.PRNGKey(0), env.observation_shape),
                                policy_params=setting["state"].policy_params)
    trained, losses = gradients.train_models(agent, state, env, 60, 8, jax.random.PRNGKey(1))
    assert losses.shape == (60,) and np.all(np.isfinite(losses))
    # The value network approaches V^pi of the fixed policy (occupancy-weighted squared error).
    mdp = setting["mdp"]
    probs = agent.policy_table(state.policy_params, mdp)
    true_values, occupancy = oracle.state_values(mdp, probs), oracle.occupancy(mdp, probs)

    def value_error(model_params):
        values = agent.estimator.values(model_params, mdp.observations)
        return float(np.sum(occupancy * (values[None] - true_values) ** 2))

    assert value_error(trained.model_params) < 0.2 * value_error(state.model_params)
    unchanged = jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.all(a == b)), trained.policy_params,
                                             state.policy_params))
    assert all(unchanged)  # only the model trains
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.any(a != b)), trained.model_params,
                                           state.model_params))
    assert all(changed)
    # Nothing to train without a model; the oracle's model for a ground-truth variant.
    same, none = gradients.train_models(setting["agent"], setting["state"], env, 10, 8, jax.random.PRNGKey(1))
    assert same is setting["state"] and none.size == 0
    exact_agent = agents.make_for_env("advantage-gt", env)
    exact, _ = gradients.train_models(exact_agent, state, env, 10, 8, jax.random.PRNGKey(1))
    np.testing.assert_allclose(exact.model_params["values"],
                               exact_agent.exact_model(state.policy_params)["values"])


@pytest.fixture(scope="module")
def records():
    return gradients.analyse("LinearKeyToDoor-v0", ["reinforce", "advantage", "advantage-gt"],
                             env_params={"length": LENGTH}, model_updates=20, seed=0)


FIELDS = {"env", "env_params", "agent", "policy", "bias", "variance", "snr", "cosine", "bias_db", "variance_db",
          "snr_db", "samples", "exact_variance", "first_step_only", "mean_gap", "model_updates", "seed",
          "true_gradient_norm", "squared_bias", "variance_unnormalised", "mean_squared_error"}


def test_analyse_records(records):
    assert [r["agent"] for r in records] == ["reinforce", "advantage", "advantage-gt"]
    for record in records:
        assert FIELDS <= set(record)
        assert record["env"] == "LinearKeyToDoor-v0" and record["env_params"] == {"length": LENGTH}
        assert record["exact_variance"] is True and record["samples"] == 1600 and record["policy"] == "init"
        # Enumerated: no sampling error, so the mean of the estimates is ḡ and 1 / SNR = variance + bias.
        assert record["mean_gap"] < 1e-8
        assert 1 / record["snr"] == pytest.approx(record["variance"] + record["bias"], rel=1e-4)
        assert record["cosine"] == pytest.approx(1.0, abs=1e-6)
        # Every estimator here is unbiased: a baseline changes only the variance.
        assert record["bias"] < 1e-8 and record["bias_db"] < -80
    by_agent = {r["agent"]: r for r in records}
    assert by_agent["advantage-gt"]["variance"] < by_agent["reinforce"]["variance"]
    assert by_agent["advantage"]["model_loss"] is not None and by_agent["reinforce"]["model_loss"] is None


def test_analyse_samples_when_asked_and_trains_the_policy():
    records = gradients.analyse("LinearKeyToDoor-v0", ["reinforce"], env_params={"length": LENGTH},
                                policy="trained:5", samples=300, exact_if_possible=False, first_step_only=True)
    (record,) = records
    assert record["exact_variance"] is False and record["samples"] == 300
    assert record["policy"] == "trained:5" and record["first_step_only"] is True
    assert record["bias"] < 1e-8 and record["mean_gap"] > 0  # sampling error, unlike the enumerated case


@pytest.mark.parametrize("kwargs, message", [
    (dict(agent_names=["reinforce", "nope"]), r"unknown agent 'nope'; known agents: .*advantage.*reinforce"),
    (dict(policy="trained"), r"policy must be 'init' or 'trained:N'"),
    (dict(policy="trained:0"), r"got 'trained:0'"),
    (dict(samples=0), r"samples must be an integer >= 1; got 0"),
    (dict(batch_size=0), r"batch_size must be an integer >= 1; got 0"),
])
def test_analyse_errors(kwargs, message):
    arguments = dict(env="LinearKeyToDoor-v0", agent_names=["reinforce"], env_params={"length": LENGTH})
    with pytest.raises(ValueError, match=message):
        gradients.analyse(**{**arguments, **kwargs})


def test_cli_writes_report_plot_and_records(tmp_path, capsys):
    out = tmp_path / "gradients"
    code = cli.main(["gradients", "--env", "LinearKeyToDoor-v0", "--length", str(LENGTH), "--agents",
                     "reinforce,advantage", "--model-updates", "5", "--out", str(out), "--no-progress"])
    assert code == 0
    records = json.loads((out / "gradients.json").read_text())
    assert [r["agent"] for r in records] == ["reinforce", "advantage"]
    for record in records:
        assert FIELDS <= set(record)
    report = (out / "report.md").read_text()
    assert "| agent | bias | variance | SNR | cosine | bias dB | variance dB | SNR dB | samples | exact? |" in report
    assert "| reinforce |" in report and "| advantage |" in report and "yes (enumerated)" in report
    assert "cocoa gradients --env LinearKeyToDoor-v0 --length 5 --agents reinforce,advantage" in report
    assert (out / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| reinforce |" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--agents", "reinforce,nope"], "unknown agent 'nope'; known agents: advantage, advantage-gt"),
    (["--policy", "best"], "policy must be 'init' or 'trained:N'"),
    (["--lenght", "5"], "unknown option --lenght for LinearKeyToDoor-v0"),
])
def test_cli_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "x"
    assert cli.main(["gradients", "--length", str(LENGTH), *argv, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
