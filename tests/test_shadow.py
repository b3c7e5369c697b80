"""Shadow training: estimators train their models on the main agent's batches and are measured."""

import csv

import jax
import numpy as np
import pytest

from cocoa import agents, cli, envs
from cocoa.train import TrainConfig, train


def test_shadows_train_on_the_same_batches_without_changing_the_main_run():
    env = envs.make("LinearKeyToDoor-v0", length=5)
    agent = agents.make_for_env("reinforce", env)
    shadows = [agents.make_for_env("advantage", env), agents.make_for_env("cocoa-reward-gt", env)]
    config = TrainConfig(updates=40, eval_interval=20, seeds=2, eval_episodes=8)
    seen = []
    alone = train(env, agent, config, progress=False)
    together = train(env, agent, config, progress=False, shadows=shadows,
                     on_shadows=lambda update, states, shadow_states, env: seen.append((update, shadow_states)))
    assert alone.rows == together.rows  # shadows only watch
    assert [update for update, _ in seen] == [0, 20, 40]
    first, last = seen[0][1][0].model_params, seen[-1][1][0].model_params
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), first, last))
    assert max(moved) > 0  # the advantage shadow's value network learned
    assert jax.tree.leaves(together.final_shadow_states[0].model_params)[0].shape[0] == 2  # per seed


@pytest.mark.parametrize("first_step_only", [False, True])
def test_cli_shadow_writes_quality_curves(tmp_path, first_step_only):
    out = tmp_path / "run"
    code = cli.main(["train", "--agent", "reinforce", "--length", "5", "--updates", "20", "--eval-interval", "10",
                     "--seeds", "2", "--shadow", "cocoa-reward-gt,advantage", "--shadow-samples", "64",
                     "--out", str(out), "--no-progress"] + ["--shadow-first-step-only"] * first_step_only)
    assert code == 0
    with open(out / "shadow.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2 * 2  # evaluations x seeds x shadows
    assert {"update", "seed", "agent", "bias", "variance", "snr", "cosine", "bias_db", "variance_db",
            "snr_db"} <= set(rows[0])
    exact = [float(r["bias"]) for r in rows if r["agent"] == "cocoa-reward-gt"]
    assert max(exact) < 1e-6  # ground truth: unbiased at every evaluation
    assert (out / "shadow.png").stat().st_size > 10_000
    assert {r["first_step_only"] for r in rows} == {str(first_step_only)}
    # Un-normalised beside the ratios: variance = variance_unnormalised / |g*|^2.
    for row in rows:
        norm = float(row["true_gradient_norm"])
        assert float(row["variance"]) == pytest.approx(float(row["variance_unnormalised"]) / norm ** 2, rel=1e-3)


def test_cli_shadow_rejects_unknown_names(tmp_path, capsys):
    assert cli.main(["train", "--length", "5", "--shadow", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown agent 'nope'" in capsys.readouterr().err


def test_shadow_quality_checks_its_input():
    import pytest

    from cocoa import shadow

    env = envs.make("LinearKeyToDoor-v0", length=5)
    agent = agents.make_for_env("reinforce", env)
    state = jax.vmap(agent.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 1), env.observation_shape)
    with pytest.raises(ValueError, match="samples must be an integer >= 2"):
        shadow.shadow_quality(env, agent, [], 0, state, (), samples=1)
    with pytest.raises(ValueError, match="got 1 shadows but 0 shadow states"):
        shadow.shadow_quality(env, agent, [agent], 0, state, ())
