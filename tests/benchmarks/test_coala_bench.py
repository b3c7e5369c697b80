"""``cocoa bench coala``: the records of results.json, the claims rows, resuming."""

import dataclasses
import json

import pytest

from cocoa.benchmarks import coala


def test_a_small_suite_writes_its_records_and_claims_and_resumes(tmp_path, monkeypatch):
    runs = [run for run in coala.default_runs(updates=4, seeds=(0, 1), sizes=(2, 3, 2), log_every=2)
            if run.name in ("shaping-memory-1-coala-p1", "mixed-memory-1-coala-p0.75", "mixed-tabular-coala-p0.75")]
    report = coala.run_suite(tmp_path, runs, progress=False)
    records = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in records] == [r.name for r in runs]
    shaping, mixed, tabular = records
    assert (shaping["policy"], mixed["policy"], tabular["policy"]) == ("memory-1", "memory-1", "tabular")
    for record in records:
        for field in ("setting", "rule", "policy", "p_naive", "seeds", "meta_reward", "naive_reward",
                      "meta_vs_meta_reward", "meta_cooperation"):
            assert field in record
        assert record["seeds"] == [0, 1] and len(record["meta_cooperation"]) == 3  # one per inner episode
    assert shaping["setting"] == "shaping" and shaping["meta_vs_meta_reward"] is None  # never played: null
    assert mixed["p_naive"] == 0.75 and -1.0 <= mixed["meta_vs_meta_reward"] <= 2.0
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert len(rows) == 7 and {r["status"] for r in rows} <= {"pass", "fail", "not run"}  # the coala suite's claims
    assert all(r["paper"] and r["where"] and r["threshold"] and r["docs"].startswith("docs/") for r in rows)
    assert rows[3]["status"] == "not run"  # the pool without naive learners was not in this suite
    assert "## Claims" in report.read_text() and (tmp_path / "curves.png").exists()
    assert (tmp_path / "cooperation.png").exists()

    # A rerun trains nothing: every finished run is read back.
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(coala, "train_shaping", refuse)
    coala.run_suite(tmp_path, runs, progress=False)
    assert json.loads((tmp_path / "results.json").read_text()) == records


def test_the_claims_pass_and_fail_on_their_thresholds():
    def record(setting, rule, p, meta=0.0, naive=0.0, mvm=0.0, policy="memory-1"):
        return {"setting": setting, "rule": rule, "p_naive": p, "policy": policy, "meta_reward": meta,
                "naive_reward": naive, "meta_vs_meta_reward": mvm, "seeds": [0, 1], "updates": 2000}

    records = [record("shaping", "coala", 1.0, 1.1, 0.2), record("shaping", "m-fos", 1.0, 0.24),
               record("shaping", "batch-unaware", 1.0, 0.9)]
    rows = coala.claims(records)
    assert rows[0]["status"] == "fail"  # batch-unaware within 0.3 of COALA
    records[2]["meta_reward"] = 0.2
    assert coala.claims(records)[0]["status"] == "pass"
    assert [r["status"] for r in coala.claims(records)[1:]] == ["not run"] * 14  # the suite's other 6, 2 GRU, 2 Hawk, 2 + 2 CleanUp
    # The mixed-pool claim is read per policy: memory-1 agents cooperating do not pass the tabular row.
    records += [record("mixed", "coala", 0.75, mvm=0.95), record("mixed", "m-fos", 0.75, mvm=0.0),
                record("mixed", "batch-unaware", 0.75, mvm=0.1)]
    records.append(dict(records[-3], policy="tabular", meta_vs_meta_reward=0.6, meta_vs_meta_cooperation=[1.0, 0.2]))
    rows = coala.claims(records)
    assert [r["status"] for r in rows[1:3]] == ["pass", "fail"] and "tabular" in rows[2]["setting"]
    assert "1.00 0.20" in rows[2]["measured"]  # the cooperation per inner episode, where the late ones defect
    records[-1]["meta_vs_meta_reward"] = 0.9
    assert coala.claims(records)[2]["status"] == "pass"


def test_the_cli_knows_the_suite():
    from cocoa.benchmarks import suites

    assert "coala" in suites.names()
    with pytest.raises(ValueError, match="known suites: .*coala"):
        suites.get("nope")


def _status(rows, claim_start):
    """The status of the one claim row whose text starts with ``claim_start``."""
    (status,) = [r["status"] for r in rows if r["claim"].startswith(claim_start)]
    return status


@pytest.mark.parametrize("suite, policy, label", [("coala-sequence", "gru", "GRU"), ("coala-hawk", "hawk", "Hawk")])
def test_each_sequence_suite_runs_its_policy_and_its_claims_read_only_its_records(suite, policy, label):
    runs = coala.runs_of(suite)
    assert {run.policy for run in runs} == {policy} and len({run.name for run in runs}) == len(runs) == 6
    assert not {run.name for run in runs} & {run.name for run in coala.default_runs()}
    # The GRU: one Adam step of 3e-3 per batch; the Hawk block: the paper's PPO, Adam 3e-4, 4 epochs x 2 minibatches.
    expected = {"gru": (0.003, 1, 1), "hawk": (0.0003, 4, 2)}[policy]
    assert {(run.meta_learning_rate, run.meta_epochs, run.meta_minibatches) for run in runs} == {expected}
    # The Hawk suite plays 32 co-players per agent for 300 updates (with 8 its pools stalled below the claim's
    # level and a shaping seed stopped extorting), the GRU suite 8 for 1,000.
    meta_batch, updates = {"gru": (8, 1000), "hawk": (32, 300)}[policy]
    assert {(run.meta_batch, run.updates) for run in runs} == {(meta_batch, updates)}
    other = "Hawk" if label == "GRU" else "GRU"

    def record(rule, mvm):
        return {"setting": "mixed", "rule": rule, "p_naive": 0.75, "policy": policy, "meta_reward": 0.2,
                "naive_reward": 0.0, "meta_vs_meta_reward": mvm, "seeds": [0], "updates": 1000}

    rows = coala.claims([record("coala", 0.9), record("m-fos", 0.0), record("batch-unaware", 0.1)])
    assert _status(rows, f"With sequence policies ({label}) mixed") == "pass"
    assert _status(rows, f"With sequence policies ({label}) COALA extorts") == "not run"
    assert _status(rows, f"With sequence policies ({other}) mixed") == "not run"
    (mixed,) = [r for r in rows if r["claim"].startswith(f"With sequence policies ({label}) mixed")]
    (shaping,) = [r for r in rows if r["claim"].startswith(f"With sequence policies ({label}) COALA")]
    assert label in mixed["setting"] and f"cocoa bench {suite} " in shaping["command"]
    assert all(f"meta-batch {meta_batch} per agent," in r["setting"] for r in (mixed, shaping))
    rows = coala.claims([record("coala", 0.0), record("m-fos", 0.0), record("batch-unaware", 0.0)])
    assert _status(rows, f"With sequence policies ({label}) mixed") == "fail"
    assert {r["claim"] for r in coala.claims([], suite)} == {r["claim"] for r in rows if label in r["claim"]}


def test_a_gru_run_with_the_gated_mlp_has_a_name_of_its_own():
    plain = coala.CoalaRun("mixed", "coala", policy="gru", p_naive=0.75)
    assert plain.name == "mixed-gru-coala-p0.75"
    assert dataclasses.replace(plain, gru_mlp=True).name == "mixed-gru-mlp-coala-p0.75"


def test_the_sequence_suite_refuses_a_policy_that_is_not_a_sequence_policy():
    with pytest.raises(ValueError, match="policy must be a sequence policy, 'gru' or 'hawk'; got 'tabular'"):
        coala.sequence_runs("tabular")


def test_a_small_cleanup_suite_writes_a_cleanup_report(tmp_path):
    runs = [run for run in coala.cleanup_runs(updates=2, sizes=(4, 2, 2), meta_batch=2, log_every=1)
            if run.setting == "shaping" and run.rule == "coala"]
    assert [run.name for run in runs] == ["cleanup-shaping-gru-coala-p1"]
    report = coala.run_suite(tmp_path, runs, progress=False, suite=coala.CLEANUP_NAME).read_text()
    (record,) = json.loads((tmp_path / "results.json").read_text())
    assert record["meta_critic"] is True  # the suite's meta agents train the paper's critic
    assert record["env"] == "CleanUpLite-v0" and record["sizes"] == {"T": 4, "M": 2, "B": 2}
    assert record["steps_per_update"] == 2 * 2 * 2 * 4 and len(record["meta_cooperation"]) == 2
    assert 0.0 <= record["meta_reward"] <= 1.0 and 0.0 <= record["meta_cooperation"][-1] <= 1.0
    assert report.startswith("# COALA-PG on CleanUp-lite") and (tmp_path / "cooperation.png").exists()
    rows = json.loads((tmp_path / "claims.json").read_text())  # the suite's own claims only
    assert len(rows) == 2 and all("CleanUp" in r["claim"] for r in rows) and "Sec. 5, CleanUp" in report


def test_a_changed_run_is_trained_again_and_an_unchanged_one_is_not(tmp_path, monkeypatch):
    (run,) = [r for r in coala.default_runs(updates=2, seeds=(0,), sizes=(2, 2, 2), log_every=1)
              if r.name == "shaping-memory-1-coala-p1"]
    coala.run_suite(tmp_path, [run], progress=False)
    trained = []
    real = coala.train_shaping
    monkeypatch.setattr(coala, "train_shaping", lambda *a, **k: trained.append(1) or real(*a, **k))
    coala.run_suite(tmp_path, [run], progress=False)
    assert trained == []
    changed = dataclasses.replace(run, meta_learning_rate=0.1)  # same name, another configuration
    assert changed.name == run.name
    coala.run_suite(tmp_path, [changed], progress=False)
    assert trained == [1]
    (record,) = json.loads((tmp_path / "results.json").read_text())
    assert record["meta_learning_rate"] == 0.1 and (record["meta_epochs"], record["meta_minibatches"]) == (1, 1)
    ppo = dataclasses.replace(changed, meta_epochs=2, meta_minibatches=2)
    coala.run_suite(tmp_path, [ppo], progress=False)
    assert trained == [1, 1]
    (record,) = json.loads((tmp_path / "results.json").read_text())
    assert (record["meta_epochs"], record["meta_minibatches"]) == (2, 2)


def test_the_cleanup_claims_read_cleanup_records_only():
    def record(setting, rule, p, meta=0.0, naive=0.0, mvm=0.0, env="CleanUpLite-v0"):
        return {"env": env, "setting": setting, "rule": rule, "p_naive": p, "policy": "gru", "meta_reward": meta,
                "naive_reward": naive, "meta_vs_meta_reward": mvm, "meta_vs_meta_cooperation": [0.1, 0.3],
                "seeds": [0], "updates": 500, "steps_per_update": 4096}

    shaping = [record("shaping", "coala", 1.0, 0.3, 0.1), record("shaping", "m-fos", 1.0, 0.2),
               record("shaping", "batch-unaware", 1.0, 0.25)]
    mixed = [record("mixed", "coala", 0.75, mvm=0.3), record("mixed", "m-fos", 0.75, mvm=0.28),
             record("mixed", "batch-unaware", 0.75, mvm=0.1)]
    rows = coala.claims(shaping + mixed)
    cleanup = [r for r in rows if "CleanUp" in r["claim"]]
    assert [r["status"] for r in cleanup] == ["pass", "fail", "not run", "not run"]  # 0.3 is not 1.1 x 0.28
    assert "river" in cleanup[1]["measured"] and "4,096 steps" in cleanup[1]["measured"]
    # the GRU IPD claims do not read CleanUp records, nor the paper-scale rows GRU ones
    assert [r["status"] for r in rows if r not in cleanup[:2]] == ["not run"] * (len(rows) - 2)
    assert "cocoa bench coala-cleanup-paper " in cleanup[2]["command"]
    hawk = [dict(r, policy="hawk") for r in shaping + mixed]
    assert [r["status"] for r in coala.claims(hawk, coala.CLEANUP_PAPER_NAME)] == ["pass", "fail"]
    shaping[0]["naive_reward"] = 0.4  # the naive learners get more than COALA: no shaping to its advantage
    assert _status(coala.claims(shaping), "On CleanUp-lite COALA shapes") == "fail"
    ipd = [dict(r, env="IteratedPrisonersDilemma-v0") for r in shaping]
    assert _status(coala.claims(ipd), "On CleanUp-lite COALA shapes") == "not run"


def test_the_coala_suites_are_known_by_name():
    from cocoa.benchmarks import suites

    assert {coala.NAME, coala.SEQUENCE_NAME, coala.HAWK_NAME, coala.CLEANUP_NAME,
            coala.CLEANUP_PAPER_NAME} <= set(suites.names())
    assert all(suites.describe(name) for name in coala.SUITES)
    assert {run.env for run in coala.runs_of(coala.CLEANUP_NAME)} == {"CleanUpLite-v0"}
    with pytest.raises(ValueError, match="unknown COALA suite 'nope'; known: coala, coala-sequence, coala-hawk, "
                                         "coala-cleanup, coala-cleanup-paper"):
        coala.runs_of("nope")


def test_the_paper_scale_cleanup_suite_has_the_paper_s_settings_and_runs_small(tmp_path):
    """App. B.4 of the COALA paper (Tables 5, 7, 8): the sizes, optimisers and naive learners of its two
    CleanUp-lite settings; the same runs, shrunk, train through the suite and keep their settings in the record."""
    runs = {(run.setting, run.rule): run for run in coala.runs_of(coala.CLEANUP_PAPER_NAME)}
    assert len(runs) == 6 and {run.policy for run in runs.values()} == {"hawk"}
    shaping, mixed = runs["shaping", "coala"], runs["mixed", "coala"]
    assert (shaping.sizes, shaping.meta_batch, shaping.population, shaping.updates) == ((64, 100, 32), 512, 1, 3000)
    assert (mixed.sizes, mixed.meta_batch, mixed.population, mixed.p_naive, mixed.updates) == ((64, 5, 64), 512, 3,
                                                                                              0.75, 30000)
    assert (shaping.meta_epochs, shaping.meta_minibatches) == (4, 2) and (mixed.meta_epochs, mixed.meta_minibatches) == (1, 1)
    assert [runs["shaping", r].meta_learning_rate for r in coala.RULES] == [1e-3, 3e-3, 1e-3]
    assert [runs["mixed", r].meta_learning_rate for r in coala.RULES] == [0.1, 0.03, 0.03]
    assert dict(shaping.shaping) == dict(hawk_mlp_width=32, hawk_heads=2, reward_scale=0.1, meta_max_grad_norm=1.0, meta_grad_chunks=16,
                                         naive_learning_rate=0.005, naive_discount=0.99, naive_inits=10)
    assert dict(mixed.shaping) == dict(hawk_mlp_width=32, hawk_heads=2, reward_scale=0.1, meta_max_grad_norm=1.0, meta_grad_chunks=16,
                                       meta_optimizer="sgd", naive_optimizer="sgd", naive_learning_rate=1.0,
                                       dynamic_naive=True)
    assert all(run.meta_critic and run.normalize_advantages and len(run.seeds) == 5 for run in runs.values())
    small = [dataclasses.replace(run, sizes=(4, 2, 2), meta_batch=32, updates=2, log_every=1, seeds=(0,))
             for run in (shaping, mixed)]
    coala.run_suite(tmp_path, small, progress=False, suite=coala.CLEANUP_PAPER_NAME)
    records = {r["setting"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    assert records["mixed"]["shaping"]["dynamic_naive"] is True and records["shaping"]["shaping"]["naive_inits"] == 10
    assert records["mixed"]["steps_per_update"] == 3 * 32 * 2 * 2 * 4
    assert all(r["meta_reward"] is not None for r in records.values())
    assert records["mixed"]["meta_vs_meta_reward"] is not None


def test_a_run_s_extra_settings_must_be_shaping_settings_it_does_not_set_itself():
    with pytest.raises(ValueError, match="shaping must hold \\(name, value\\) pairs of ShapingConfig settings"):
        coala.CoalaRun("shaping", "coala", shaping=(("meta_batch", 4),))
    with pytest.raises(ValueError, match="got 'reward_scale'"):
        coala.CoalaRun("shaping", "coala", shaping=("reward_scale",))
    with pytest.raises(ValueError, match="meta_grad_chunks \\(3\\) must divide the co-players of a minibatch"):
        coala.cleanup_paper_runs(meta_grad_chunks=3)  # refused when the suite is defined, before any run
    run = coala.CoalaRun("shaping", "coala", shaping=(("reward_scale", 0.1),))
    assert coala._record_path("out", run) != coala._record_path("out", dataclasses.replace(run, shaping=()))
