"""Benchmark runner: a suite writes its report, and an interrupted suite keeps and resumes runs."""

import dataclasses
import json

import pytest

from cocoa.benchmarks import records, runner, suites


def _smoke():
    return suites.get("smoke")


def test_smoke_suite_writes_report_and_results(tmp_path):
    report = runner.run_suite(_smoke(), tmp_path, progress=False, log=lambda _: None)
    text = report.read_text()
    for agent in ("reinforce", "advantage", "cocoa-reward"):
        assert f"| {agent} | LinearKeyToDoor-v0 |" in text
    assert "learning_curves.png" in text and (tmp_path / "learning_curves.png").stat().st_size > 10_000
    summaries = json.loads((tmp_path / "results.json").read_text())
    assert [s["config"]["agent"] for s in summaries] == ["reinforce", "advantage", "cocoa-reward"]
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].startswith("run_id,env,agent,env_length,update,seed,episodes,return")
    spec = _smoke().runs[0]
    expected_rows = 3 * spec.train.seeds * (spec.train.updates // spec.train.eval_interval + 1)
    assert len(lines) == 1 + expected_rows


def test_interrupted_suite_keeps_finished_runs_and_resumes(tmp_path, monkeypatch):
    suite = _smoke()
    real_train_run = runner.train_run
    calls = []

    def interrupted_after_first(spec, progress=True):
        calls.append(spec.agent)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_run(spec, progress)

    monkeypatch.setattr(runner, "train_run", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(suite, tmp_path, progress=False, log=lambda _: None)
    first, second, third = suite.runs
    assert runner.is_finished(tmp_path, first) and not runner.is_finished(tmp_path, second)
    assert not runner.is_finished(tmp_path, third)
    kept = (runner.run_dir(tmp_path, first) / "summary.json").read_text()

    calls.clear()
    monkeypatch.setattr(runner, "train_run", lambda spec, progress=True: (calls.append(spec.agent),
                                                                         real_train_run(spec, progress))[1])
    report = runner.run_suite(suite, tmp_path, progress=False, log=lambda _: None)
    assert calls == ["advantage", "cocoa-reward"], "only the unfinished runs are trained again"
    assert (runner.run_dir(tmp_path, first) / "summary.json").read_text() == kept
    assert "not finished" not in report.read_text()


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    good = _smoke().runs[0]
    bad = dataclasses.replace(good, env_params={"length": 1})
    suite = suites.Suite("mixed", "one good run, one bad", (bad, good))
    messages = []
    report = runner.run_suite(suite, tmp_path, progress=False, log=messages.append).read_text()
    assert runner.is_finished(tmp_path, good) and not runner.is_finished(tmp_path, bad)
    failed = runner.failures(suite, tmp_path)
    assert list(failed) == [bad.run_id] and "length" in failed[bad.run_id]
    assert "1 run(s) failed" in report and bad.run_id in report and "| reinforce |" in report
    assert "Traceback" in (runner.run_dir(tmp_path, bad) / "error.txt").read_text()
    assert any("FAILED" in m for m in messages)


def test_changed_config_is_not_mistaken_for_a_finished_run(tmp_path):
    spec = _smoke().runs[0]
    runner.run_one(spec, tmp_path, progress=False)
    assert runner.is_finished(tmp_path, spec)
    folder = runner.run_dir(tmp_path, spec)
    summary = json.loads((folder / "summary.json").read_text())
    summary["config"]["train"]["updates"] += 1
    (folder / "summary.json").write_text(json.dumps(summary))
    assert not runner.is_finished(tmp_path, spec)


def test_run_ids_are_unique_and_readable():
    """Within a suite every id differs; across suites an id is shared only by the same run (the
    claims suite's L = 103 runs are the paper sweep's)."""
    by_id = {}
    for suite in suites.SUITES.values():
        ids = [spec.run_id for spec in suite.runs]
        assert len(ids) == len(set(ids))
        for spec in suite.runs:
            assert by_id.setdefault(spec.run_id, spec.to_dict()) == spec.to_dict()
    assert suites.get("quick").runs[0].run_id.startswith("reinforce_LinearKeyToDoor_length43_")


@pytest.mark.parametrize("name", sorted(suites.SUITES))
def test_every_run_of_every_suite_builds_its_environment_and_agent(name):
    """Suites are data: every run names an environment, parameters, an agent and options that exist,
    checked without training."""
    from cocoa import agents, envs

    for spec in suites.get(name).runs:
        env = envs.make(spec.env, **spec.env_params)
        changed = runner.changed_environments(spec.env, spec.env_params, spec.env_changes)
        agents.make_for_env(spec.agent, env, **runner.with_reward_support(spec.agent, spec.agent_config,
                                                                         [env, *changed.values()]))
        assert "/" not in spec.run_id and ":" not in spec.run_id


def test_a_reward_switch_run_trains_with_the_rewards_of_both_environments(tmp_path):
    spec = dataclasses.replace(suites.get("smoke").runs[2], env_params={"length": 7, "door_opens_with_key": True},
                               env_changes={20: {"treasure_reward": -0.2}})
    assert spec.run_id != dataclasses.replace(spec, env_changes={}).run_id
    before, after = runner.changed_environments(spec.env, spec.env_params, {0: {}, **spec.env_changes}).values()
    config = runner.with_reward_support(spec.agent, spec.agent_config, [before, after])
    assert min(config["reward_values"]) < 0 < max(config["reward_values"])
    summary = runner.run_one(spec, tmp_path, progress=False)
    assert summary["config"]["env_changes"] == {"20": {"treasure_reward": -0.2}}
    assert runner.is_finished(tmp_path, spec)


def test_the_report_knows_the_metrics_of_registered_and_gymnasium_environments():
    from cocoa import envs

    assert envs.metric_names("LinearKeyToDoor-v0") == ("treasure_rate", "distractor_rate")
    assert envs.metric_names("gymnasium:CartPole-v1") == ()
    with pytest.raises(ValueError, match="unknown environment 'Nope-v0'"):
        envs.metric_names("Nope-v0")


def test_a_run_with_shadows_saves_their_gradient_quality_and_its_plot(tmp_path):
    spec = dataclasses.replace(suites.get("smoke").runs[0], shadows=("advantage", "cocoa-reward"), shadow_samples=16,
                               shadow_first_step_only=True)
    suite = suites.Suite("shadowed", "one run with two shadows", (spec,))
    runner.run_suite(suite, tmp_path, progress=False, log=lambda _: None)
    folder = runner.run_dir(tmp_path, spec)
    rows = (folder / records.SHADOW_FILE).read_text().splitlines()
    evaluations = spec.train.updates // spec.train.eval_interval + 1
    assert rows[0].startswith("update,seed,agent") and len(rows) == 1 + evaluations * spec.train.seeds * 2
    assert (folder / "shadow.png").stat().st_size > 10_000
    assert json.loads((folder / records.SUMMARY_FILE).read_text())["config"]["shadows"]["agents"] == \
        ["advantage", "cocoa-reward"]


def test_a_task_interleaving_run_reports_its_context_credit_matrices(tmp_path):
    spec = suites.RunSpec(env="TaskInterleaving-v0", agent="cocoa-reward", credit_matrix=True,
                          train=suites.TrainConfig(updates=4, batch_size=2, seeds=1, eval_interval=4, eval_episodes=4))
    report = runner.run_suite(suites.Suite("credit", "one run", (spec,)), tmp_path, progress=False,
                              log=lambda _: None).read_text()
    matrices = json.loads((runner.run_dir(tmp_path, spec) / records.CREDIT_MATRIX_FILE).read_text())
    assert {k: len(v) for k, v in matrices.items()} == {"learned": 5, "exact": 5}  # 5 contexts
    assert "## Context credit matrix: cocoa-reward on TaskInterleaving-v0" in report and "| context 4 |" in report


def test_a_suite_mixing_environments_reports_each_ones_own_metric(tmp_path):
    from cocoa.benchmarks.report import write_report

    specs = [suites.RunSpec(env="UmbrellaChain-v0", agent="reinforce"), suites.RunSpec(env="DiscountingChain-v0", agent="reinforce")]
    for spec, metric in zip(specs, ("correct_rate", "bonus_rate")):
        rows = [{"update": u, "seed": s, "episodes": u, "return": 0.5, metric: 0.25 * s + u / 100} for u in (0, 10) for s in (0, 1)]
        summary = {"config": spec.to_dict(), "final": {}, "wall_seconds": 1.0, "env_steps_per_second": 1.0}
        records.save_record(runner.run_dir(tmp_path, spec), {"summary": summary, "rows": rows})
    text = write_report(suites.Suite("chains", "two chains", tuple(specs)), tmp_path).read_text()
    assert "| its own metric |" in text and "correct rate 0.225 ± 0.125" in text and "bonus rate 0.225 ± 0.125" in text
    assert "- UmbrellaChain-v0 `{}`: final correct rate" in text and "- DiscountingChain-v0 `{}`: final bonus rate" in text
