"""The `cocoa` command: train writes its files, bad input gives a clear error and exit code 2."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cocoa import cli


def test_train_writes_metrics_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--env", "LinearKeyToDoor-v0", "--length", "7", "--agent", "reinforce",
                     "--updates", "20", "--seeds", "2", "--batch", "4", "--eval-interval", "10",
                     "--eval-episodes", "8", "--out", str(out), "--no-progress"])
    assert code == 0
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["update", "seed", "episodes", "return"]
    assert {"treasure_rate", "distractor_rate"} <= set(rows[0])
    assert [(int(r["update"]), int(r["seed"]), int(r["episodes"])) for r in rows] == [
        (0, 0, 0), (0, 1, 0), (10, 0, 40), (10, 1, 40), (20, 0, 80), (20, 1, 80)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["env_params"] == {"length": 7}
    assert summary["config"]["train"]["seeds"] == 2
    assert summary["env_steps"] == 20 * 4 * 7 * 2
    assert summary["env_steps_per_second"] > 0 and summary["compile_seconds"] > 0
    assert set(summary["final"]) == {"return", "exact_return", "treasure_rate", "distractor_rate"}
    assert "final (mean over 2 seeds)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--lenght", "7"], "unknown option --lenght for LinearKeyToDoor-v0; its parameters are: --length"),
    (["train", "--length", "seven"], "--length expects an int; got 'seven'"),
    (["train", "--agent", "nope"], "unknown agent 'nope'; known agents: advantage, advantage-gt, cocoa-feature, cocoa-reward,"),
    (["train", "--env", "Nope-v0"], "unknown environment 'Nope-v0'; known environments: DiscountingChain-v0, LinearKeyToDoor-v0"),
    (["train", "--env", "IteratedPrisonersDilemma-v0"],
     "IteratedPrisonersDilemma-v0 is a two-player game, not a single-agent environment: the co-player shaping"),
    (["train", "--updates", "0"], "updates must be a positive integer; got 0"),
    (["train", "--length", "2"], "length must be an integer >= 3"),
    (["train", "--epsilon", "2"], "epsilon must lie in [0, 1]; got 2.0"),
    (["train", "--learning-rate", "nan"], "learning_rate must be a finite positive number; got nan"),
    (["bench", "nope"], "unknown benchmark suite 'nope'; known suites: quick"),
    (["train", "--agent-option", "td_lambda=x", "--agent", "q-critic"], "--agent-option td_lambda expects a float; got 'x'"),
    (["train", "--env-option", "length=x"], "--env-option length expects an int; got 'x'"),
    (["train", "--env-option", "length"], "--env-option expects NAME=VALUE; got 'length'"),
    (["train", "--env", "gymnasium:CartPole-v1", "--agent", "cocoa-reward"],
     "cocoa-reward needs the finite reward support of gymnasium:CartPole-v1"),
    (["train", "--env", "gymnasium:CartPole-v1", "--shadow", "advantage"], "--shadow needs the exact gradient"),
    (["train", "--env", "gymnasium:FrozenLake-v1", "--env-option", "slippery=1"],
     "gymnasium.make('FrozenLake-v1', slippery=1) failed"),
    (["train", "--env", "gymnasium:Nope-v3"], "unknown Gymnasium environment 'Nope-v3'"),
    (["train", "--env-change", "5:length"], "--env-change expects UPDATE:NAME=VALUE"),
    (["train", "--updates", "10", "--env-change", "20:treasure_reward=-1"], "the update must lie in [1, 9]"),
    (["train", "--env-change", "5:lenght=3"], "unknown option --env-option lenght for LinearKeyToDoor-v0"),
])
def test_bad_input_names_the_value(tmp_path, capsys, argv, message):
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "x")]
    else:
        argv = argv + ["--out", str(tmp_path / "y")]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "summary.json").exists()


def test_train_on_gymnasium_envs_by_table_and_by_host_loop(tmp_path, capsys):
    out = tmp_path / "lake"
    assert cli.main(["train", "--env", "gymnasium:FrozenLake-v1", "--env-option", "is_slippery=false",
                     "--env-option", "horizon=20", "--agent", "cocoa-reward", "--updates", "4", "--eval-interval", "2",
                     "--eval-episodes", "4", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["env_params"] == {"is_slippery": False, "horizon": 20}
    assert set(summary["final"]) == {"return", "exact_return"}
    out = tmp_path / "cartpole"
    assert cli.main(["train", "--env", "gymnasium:CartPole-v1", "--agent", "advantage", "--updates", "4",
                     "--eval-interval", "2", "--eval-episodes", "4", "--seeds", "2", "--out", str(out),
                     "--no-progress"]) == 0
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["update"]), int(r["seed"])) for r in rows] == [(u, s) for u in (0, 2, 4) for s in (0, 1)]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["final"]) == {"return"} and summary["env_steps"] >= 4 * 8 * 2 * 8
    assert "env-steps/s" in capsys.readouterr().out


def test_env_change_switches_the_treasure_and_is_recorded(tmp_path):
    out = tmp_path / "switch"
    assert cli.main(["train", "--length", "5", "--door-opens-with-key", "true", "--agent", "cocoa-reward",
                     "--updates", "6", "--eval-interval", "3", "--eval-episodes", "4",
                     "--env-change", "2:treasure_reward=-0.2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["env_changes"] == {"2": {"treasure_reward": -0.2}}
    with open(out / "metrics.csv") as handle:
        assert sorted({int(row["update"]) for row in csv.DictReader(handle)}) == [0, 2, 3, 6]


def test_gradients_on_a_gymnasium_table(tmp_path):
    out = tmp_path / "gradients"
    assert cli.main(["gradients", "--env", "gymnasium:FrozenLake-v1", "--env-option", "horizon=8",
                     "--agents", "advantage-gt", "--model-updates", "0", "--samples", "32",
                     "--max-enumerated", "10", "--out", str(out), "--no-progress"]) == 0
    records = json.loads((out / "gradients.json").read_text())
    assert [r["agent"] for r in records] == ["advantage-gt"] and records[0]["bias"] < 1e-6 * records[0]["variance"]
    assert records[0]["env"] == "gymnasium:FrozenLake-v1" and records[0]["env_params"] == {"horizon": 8}


def test_list_shows_envs_agents_and_suites(capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    for expected in ("LinearKeyToDoor-v0", "--length 23", "reinforce", "advantage", "td_lambda", "quick",
                     "two-player games", "IteratedPrisonersDilemma-v0  episode_length=10", "CleanUpLite-v0  rows=5"):
        assert expected in text


def test_train_defaults_to_the_papers_settings_and_flags_override_them(tmp_path, capsys):
    from cocoa.benchmarks import presets

    base = ["train", "--env", "LinearKeyToDoor-v0", "--length", "7", "--agent", "cocoa-reward", "--updates", "2",
            "--batch", "2", "--eval-interval", "2", "--eval-episodes", "2", "--no-progress"]
    assert cli.main(base + ["--out", str(tmp_path / "paper")]) == 0
    config = json.loads((tmp_path / "paper" / "summary.json").read_text())["config"]["agent_config"]
    assert config == presets.paper_agent_config("LinearKeyToDoor-v0", {"length": 7}, "cocoa-reward")
    assert config["learning_rate"] == 3e-4 and config["model_learning_rate"] == 3e-3
    assert config["entropy_coef"] == pytest.approx(0.03 * (20 / 4) ** 0.6826, rel=1e-3)
    assert "the COCOA paper's settings" in capsys.readouterr().out

    assert cli.main(base + ["--learning-rate", "0.01", "--agent-option", "model_first=true",
                            "--agent-option", "policy_features=none", "--out", str(tmp_path / "override")]) == 0
    config = json.loads((tmp_path / "override" / "summary.json").read_text())["config"]["agent_config"]
    assert config["learning_rate"] == 0.01 and config["model_first"] is True
    assert config["policy_features"] == "none" and config["model_learning_rate"] == 3e-3

    assert cli.main(base + ["--no-paper-settings", "--out", str(tmp_path / "plain")]) == 0
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["config"]["agent_config"] == {}


def test_paper_settings_per_estimator():
    from cocoa.benchmarks import presets

    assert presets.paper_agent_config("LinearKeyToDoor-v0", {"length": 103}, "trajcv")["model_learning_rate"] == 1e-2
    assert "model_learning_rate" not in presets.paper_agent_config("LinearKeyToDoor-v0", {}, "reinforce")
    assert presets.paper_agent_config("LinearKeyToDoor-v0", {"length": 43}, "advantage-gt")["learning_rate"] == 1e-3
    assert presets.paper_agent_config("Tree-v0", {}, "cocoa-reward") == {}
    assert [round(presets.key_to_door_entropy(length), 4) for length in (23, 43, 63, 83, 103)] == [
        0.03, 0.0187, 0.0142, 0.0116, 0.01]


def test_nan_during_training_is_a_clear_error_not_a_traceback(tmp_path, capsys, monkeypatch):
    import cocoa.train

    def diverging(*args, **kwargs):
        raise cocoa.train.NonFiniteError("training produced NaN or inf in 'policy_grad_norm' for seed 1")

    monkeypatch.setattr(cocoa.train, "train", diverging)
    assert cli.main(["train", "--length", "5", "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "training stopped: training produced NaN or inf in 'policy_grad_norm' for seed 1" in capsys.readouterr().err


def test_out_is_checked_before_any_training(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    for argv in (["train", "--length", "7", "--agent", "reinforce"], ["gradients", "--length", "4"],
                 ["bench", "smoke"]):
        assert cli.main(argv + ["--out", str(a_file), "--no-progress"]) == 2
        assert f"--out '{a_file}' is a file; expected a folder" in capsys.readouterr().err
    nested = tmp_path / "new" / "deeper"
    assert cli.check_output_folder(nested) == nested and not (tmp_path / "new").exists()  # checked, not left
    blocked = a_file / "below"  # a folder can't be made under a file
    with pytest.raises(cli.CliError, match="is not a writable folder"):
        cli.check_output_folder(blocked)


def test_ctrl_c_exits_130_with_a_clean_message(tmp_path):
    """SIGINT during compilation or training: the clean message and exit status 130, never a crash."""
    command = [sys.executable, "-c", "from cocoa.cli import console; console()", "train", "--length", "7",
               "--agent", "advantage", "--updates", "100000", "--eval-interval", "50", "--out", str(tmp_path / "run")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        seen = ""
        deadline = time.monotonic() + 300
        while "compiling advantage on LinearKeyToDoor-v0" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "compiling" in seen, seen
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        # Python sees the signal once the running XLA call (compilation, on a loaded machine up to a
        # minute or more) returns.
        rest = process.communicate(timeout=300)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, (process.returncode, rest[-2000:])
    assert "interrupted" in rest
