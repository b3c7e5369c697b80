"""The claims rows (``cocoa bench claims``): each passes and fails on its threshold, says "not run"
when its runs are missing, and the report gathers them with their docs links."""

import json
import re

import numpy as np
import pytest

from cocoa import cli
from cocoa.benchmarks import claim_table, claims, cocoa_claims, records, suites, tree_variance
from cocoa.benchmarks import report as suite_report
from cocoa.benchmarks.claim_table import STATUSES


def _rows(curve_per_seed, updates):
    """Evaluation rows: seed s has treasure rate curve_per_seed[s][i] at updates[i]."""
    return [{"update": u, "seed": s, "episodes": u * 8, "return": 0.0, "treasure_rate": float(v)}
            for s, curve in enumerate(curve_per_seed) for u, v in zip(updates, curve)]


_LONG = [0, 5000, 10000]
GOOD = {("cocoa-reward", 23): _rows([[0.0, 0.9, 1.0]] * 8, [0, 2000, 2250]),
        ("cocoa-reward", 103): _rows([[0.0, 0.95, 0.95]] * 8, _LONG),
        ("reinforce", 23): _rows([[0.0, 0.2, 0.3]] * 8, _LONG),
        ("reinforce", 103): _rows([[0.0, 0.05, 0.1]] * 8, _LONG),
        ("advantage", 23): _rows([[0.0, 0.9, 1.0]] * 8, _LONG),
        ("advantage", 103): _rows([[0.0, 0.1, 0.2]] * 8, _LONG)}
# The rest of the paper's sweep at L = 23 and 103.
SWEEP = {("cocoa-feature", 103): _rows([[0.0, 0.9, 0.9]] * 8, _LONG),
         ("q-critic", 23): _rows([[0.0, 0.8, 0.9]] * 8, _LONG),
         ("q-critic", 103): _rows([[0.0, 0.2, 0.3]] * 8, _LONG),
         ("trajcv", 23): _rows([[0.0, 0.8, 0.9]] * 8, _LONG),
         ("trajcv", 103): _rows([[0.0, 0.0, 0.1]] * 8, _LONG),
         ("hca-state", 23): _rows([[0.0, 0.5, 0.6]] * 8, _LONG),
         ("hca-state", 103): _rows([[0.0, 0.1, 0.1]] * 8, _LONG)}
# Row order: early; COCOA-reward, COCOA-feature keep it; REINFORCE, Advantage, Q-critic, TrajCV,
# HCA-state fall off; COCOA-reward ahead of REINFORCE and Advantage; both COCOAs ahead of every baseline.
FALLS_OFF = slice(3, 8)


def _status(rows):
    return [r["status"] for r in rows]


def test_the_key_to_door_claims_pass_fail_and_go_unrun_on_their_thresholds():
    assert _status(cocoa_claims.key_to_door_rows({**GOOD, **SWEEP})) == ["pass"] * 10
    assert _status(cocoa_claims.key_to_door_rows(GOOD)) == (["pass", "pass", "not run", "pass", "pass"]
                                                            + ["not run"] * 3 + ["pass", "not run"])
    bad = {**GOOD, **SWEEP}
    bad[("cocoa-reward", 23)] = _rows([[0.0, 0.5, 1.0]] * 8, [0, 2000, 2250])  # late: 0.5 at update 2,000
    bad[("cocoa-reward", 103)] = _rows([[0.0, 0.95, 0.4]] + [[0.0, 0.95, 0.95]] * 7, _LONG)  # a collapse
    bad[("advantage", 103)] = _rows([[0.0, 0.9, 1.0]] * 8, _LONG)  # as at L = 23: no drop
    bad[("q-critic", 103)] = _rows([[0.0, 0.9, 0.9]] * 8, _LONG)  # keeps the treasure: ahead of COCOA-feature
    # An Advantage as good at L = 103 as at L = 23 neither falls off nor trails COCOA-reward there.
    assert _status(cocoa_claims.key_to_door_rows(bad)) == ["fail", "fail", "pass", "pass", "fail", "fail", "pass",
                                                           "pass", "fail", "fail"]
    # COCOA ahead by less than two standard errors: fail.
    close = dict(GOOD)
    close[("advantage", 103)] = _rows([[0.0, 1.0, 1.0]] * 4 + [[0.0, 0.9, 0.9]] * 4, _LONG)
    assert _status(cocoa_claims.key_to_door_rows(close))[8] == "fail"
    missing = cocoa_claims.key_to_door_rows({})
    assert _status(missing) == ["not run"] * 10
    assert all(r["command"] for r in missing) and "no cocoa-reward run at L = 23" in missing[0]["measured"]
    both = cocoa_claims.key_to_door_rows(GOOD)[9]["measured"]
    assert "cocoa-feature" in both and "q-critic" in both and "trajcv" in both and "hca-state" in both


def test_falling_off_is_read_on_the_rate_averaged_over_training():
    # The paper's figure plots the rate averaged over training against L. A baseline that finds the key late at
    # L = 103 (final 0.9, average 0.3, against 0.63 at L = 23) falls off on it; the row shows the final rate too.
    runs = dict(GOOD)
    runs[("advantage", 103)] = _rows([[0.0, 0.0, 0.9]] * 8, _LONG)
    advantage = cocoa_claims.key_to_door_rows(runs)[FALLS_OFF][1]
    assert advantage["status"] == "pass" and "final at L = 103 0.90 ± 0.00 (8 seeds)" in advantage["measured"]
    assert "0.63 ± 0.00 at L = 23, 0.30 ± 0.00 at L = 103 (drop 0.33 ± 0.00)" in advantage["measured"]
    # A drop within two standard errors of the seeds' spread fails.
    runs[("advantage", 23)] = _rows([[0.0, 0.9, 1.0]] * 4 + [[0.0, 0.1, 0.2]] * 4, _LONG)
    runs[("advantage", 103)] = _rows([[0.0, 0.8, 1.0]] * 4 + [[0.0, 0.1, 0.1]] * 4, _LONG)
    assert cocoa_claims.key_to_door_rows(runs)[FALLS_OFF][1]["status"] == "fail"
    # Without its L = 23 run the row is not run, and says which run is missing.
    del runs[("advantage", 23)]
    missing = cocoa_claims.key_to_door_rows(runs)[FALLS_OFF][1]
    assert missing["status"] == "not run" and "no advantage run at L = 23" in missing["measured"]


def _shadow(figures, seeds=4, rates=(0.0, 0.5, 1.0)):
    """(evaluation rows, shadow rows): at evaluation i every seed has treasure rate rates[i] and shadow
    ``agent`` has figures[agent][metric] + 0.1 seed at every evaluation."""
    updates = [500 * i for i in range(len(rates))]
    rows = [{"update": u, "seed": s, "episodes": 8 * u, "return": 0.0, "treasure_rate": r}
            for s in range(seeds) for u, r in zip(updates, rates)]
    shadow = [{"update": u, "seed": s, "agent": agent, "first_step_only": True, "true_gradient_norm": 0.5,
               "mean_squared_error": 2.0, "variance_unnormalised": 1.5, "squared_bias": 0.5,
               **{metric: value + 0.1 * s for metric, value in values.items()}}
              for agent, values in figures.items() for s in range(seeds) for u in updates]
    return rows, shadow


SHADOW_GOOD = {"reinforce": {"snr_db": -50.0, "bias_db": -99.0, "variance_db": 50.0},
               "advantage": {"snr_db": -40.0, "bias_db": -90.0, "variance_db": 40.0},
               "q-critic": {"snr_db": -20.0, "bias_db": 20.0, "variance_db": -100.0},
               "hca-state": {"snr_db": -48.0, "bias_db": -80.0, "variance_db": 48.0},
               "cocoa-reward": {"snr_db": -15.0, "bias_db": 0.0, "variance_db": 5.0}}


def test_the_shadow_claims_pass_and_fail_on_their_thresholds():
    assert _status(cocoa_claims.shadow_rows([_shadow(SHADOW_GOOD)])) == ["pass"] * 3
    bad = {**SHADOW_GOOD, "q-critic": {"snr_db": -10.0, "bias_db": -5.0, "variance_db": -100.0},
           "hca-state": {"snr_db": -48.0, "bias_db": -80.0, "variance_db": 44.0}}  # 6 dB below REINFORCE
    assert _status(cocoa_claims.shadow_rows([_shadow(bad)])) == ["fail", "fail", "fail"]
    assert _status(cocoa_claims.shadow_rows([])) == ["not run"] * 3
    assert all(r["command"].startswith("cocoa bench shadow-key-to-door") for r in cocoa_claims.shadow_rows([]))
    unbiased = {**SHADOW_GOOD, "reinforce": {**SHADOW_GOOD["reinforce"], "bias_db": float("-inf")}}
    bias_row = cocoa_claims.shadow_rows([_shadow(unbiased)])[1]  # REINFORCE's exact zero bias: -inf dB
    assert bias_row["status"] == "pass" and "reinforce -inf" in bias_row["measured"]
    without_hca = {a: v for a, v in SHADOW_GOOD.items() if a != "hca-state"}
    assert _status(cocoa_claims.shadow_rows([_shadow(without_hca)])) == ["pass", "pass", "not run"]


def test_the_shadow_gaps_are_paired_by_evaluation():
    # Seeds differ by 10 dB in both estimators alike (a common policy): COCOA-reward 2 dB ahead at every
    # evaluation passes, though two standard errors of the unpaired means (about 9 dB) would swallow the gap.
    rows, shadow = _shadow(SHADOW_GOOD)
    for r in shadow:
        r["snr_db"] = {"cocoa-reward": 2.0, "q-critic": 0.0}.get(r["agent"], -90.0) + 10.0 * r["seed"]
    row = cocoa_claims.shadow_rows([(rows, shadow)])[0]
    assert row["status"] == "pass" and "gap to q-critic 2.0 ± 0.0" in row["measured"]
    # The same 2 dB on average, ahead on two seeds and behind on the other two: the paired gap's error is large.
    for r in shadow:
        if r["agent"] == "cocoa-reward":
            r["snr_db"] += (6.0 if r["seed"] % 2 else -6.0)
    assert cocoa_claims.shadow_rows([(rows, shadow)])[0]["status"] == "fail"
    difference = cocoa_claims.progress_binned(rows, shadow, "cocoa-reward", "snr_db", minus="q-critic")
    assert sorted(set(np.round(difference, 6))) == [-4.0, 8.0]
    with pytest.raises(claim_table.Missing, match="no trajcv shadow measurement"):
        cocoa_claims.progress_binned(rows, shadow, "cocoa-reward", "snr_db", minus="trajcv")


def test_each_shadow_row_takes_its_estimators_from_the_run_with_most_seeds_that_measured_them():
    # A 16-seed run without HCA-state beside a 4-seed run with it (the suite's split: HCA-state's model is
    # most of the cost). The SNR and bias rows come from the 16-seed run, the variance row from the 4-seed one.
    without_hca = {a: v for a, v in SHADOW_GOOD.items() if a != "hca-state"}
    many, few = _shadow(without_hca, seeds=16), _shadow(SHADOW_GOOD)
    for run in ([many, few], [few, many]):
        index = cocoa_claims.shadow_index([(suites.SUITES["shadow-key-to-door"].runs[i], *r) for i, r in enumerate(run)])
        assert [len({r["seed"] for r in rows}) for rows, _ in index] == [16, 4]
        snr, bias, variance = cocoa_claims.shadow_rows(index)
        assert _status([snr, bias, variance]) == ["pass"] * 3
        assert "(16 seeds)" in snr["measured"] and "(16 seeds)" in bias["measured"] and "4 seeds" in variance["measured"]
        assert "hca-state -47.9" in snr["measured"]  # the few-seed run's estimator is still compared
    # HCA-state the runner-up, measured only in the few-seed run that also holds COCOA-reward: paired there.
    close = {**SHADOW_GOOD, "hca-state": {**SHADOW_GOOD["hca-state"], "snr_db": -16.0}}
    snr = cocoa_claims.shadow_rows([many, _shadow(close)])[0]
    assert "gap to hca-state 1.0 ± 0.0, paired in the 4-seed run" in snr["measured"] and snr["status"] == "pass"
    # Measured only where COCOA-reward was not: compared unpaired, so the seeds' spread counts.
    alone = _shadow({"reinforce": SHADOW_GOOD["reinforce"], "hca-state": close["hca-state"]})
    snr = cocoa_claims.shadow_rows([many, alone])[0]
    assert "gap to hca-state 1.6 ± 0.1, unpaired: another run" in snr["measured"]  # 16 seeds' -14.2, 4 seeds' -15.8
    # Without a run holding both HCA-state and REINFORCE the variance row is not run, and says why.
    only_hca = _shadow({"hca-state": SHADOW_GOOD["hca-state"]})
    variance = cocoa_claims.shadow_rows([many, only_hca])[2]
    assert variance["status"] == "not run" and "both hca-state and reinforce" in variance["measured"]


def test_the_shadow_figures_average_over_bins_of_the_treasure_rate_as_the_paper_does():
    # Seed 0 spends three evaluations near rate 0 (SNR -30) and one at rate 1 (SNR 0): per seed the
    # plain mean is -22.5, the paper's binned mean the mean of its two occupied bins, -15.
    rows = [{"update": u, "seed": 0, "treasure_rate": r} for u, r in zip(range(4), (0.0, 0.01, 0.02, 1.0))]
    shadow = [{"update": u, "seed": 0, "agent": "cocoa-reward", "snr_db": v} for u, v in zip(range(4), (-30.0,) * 3 + (0.0,))]
    shadow.append({"update": 3, "seed": 0, "agent": "reinforce", "snr_db": float("inf")})  # left out, as the paper's
    assert sorted(cocoa_claims.progress_binned(rows, shadow, "cocoa-reward", "snr_db")) == [-30.0, 0.0]
    with pytest.raises(claim_table.Missing, match="no reinforce shadow measurement"):
        cocoa_claims.progress_binned(rows, shadow, "reinforce", "snr_db")


def _tree(variances):
    """Records of tree_records' form: variances[agent] is its dB at overlaps 0, 1, ..."""
    return [{"env": "Tree-v0", "env_params": {"overlap": o}, "policy": "init", "first_step_only": False,
             "agent": agent, "variance_db": float(v), "bias_db": -130.0, "snr_db": -float(v)}
            for agent, values in variances.items() for o, v in enumerate(values)]


def test_the_tree_claims_pass_and_fail_on_their_thresholds():
    good = {"reinforce": [18.7, 18.3], "advantage-gt": [18.5, 18.0], "hca-state-gt": [18.7, 17.5],
            "cocoa-reward-gt": [15.0, 14.5], "q-critic-gt": [6.3, 6.1]}
    assert _status(cocoa_claims.tree_rows(_tree(good))) == ["pass", "pass"]
    bad = {**good, "hca-state-gt": [17.0, 14.0]}  # below REINFORCE at overlap 0, below COCOA at overlap 1
    assert _status(cocoa_claims.tree_rows(_tree(bad))) == ["fail", "fail"]
    assert _status(cocoa_claims.tree_rows([])) == ["not run", "not run"]


def test_the_claims_report_gathers_every_part_with_links(tmp_path):
    suite = suites.get(claims.KEY_TO_DOOR)
    for spec in suite.runs:
        rows = GOOD[(spec.agent, spec.env_params["length"])]
        summary = {"config": spec.to_dict(), "final": {}, "wall_seconds": 1.0, "env_steps_per_second": 1.0}
        records.save_record(tmp_path / "key-to-door" / "runs" / spec.run_id, {"summary": summary, "rows": rows})
    good = {"reinforce": [18.7, 18.3], "advantage-gt": [18.5, 18.0], "hca-state-gt": [18.7, 17.5],
            "cocoa-reward-gt": [15.0, 14.5], "q-critic-gt": [6.3, 6.1]}
    for overlap in (0, 1):
        records.atomic_write(tmp_path / "tree" / f"overlap{overlap}.json",
                             json.dumps([r for r in _tree(good) if r["env_params"]["overlap"] == overlap]))
    report = claims.write_report(tmp_path).read_text()
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert len(rows) == 30 and {r["status"] for r in rows} <= set(STATUSES)
    assert _status(rows[:15]) == (["pass", "pass", "not run", "pass", "pass"] + ["not run"] * 3 + ["pass", "not run"]
                                  + ["not run"] * 3 + ["pass"] * 2)  # key-to-door, shadow training, the tree
    assert _status(rows[15:]) == ["not run"] * 15  # the coala part has not run
    assert "7 pass, 0 fail, 23 not run." in report
    links = re.findall(r"\[(docs/[^\]]+)\]\(([^)]+)\)", report)
    assert {page for page, _ in links} >= {"docs/benchmarks/index.md", "docs/environments/tree.md",
                                           "docs/estimators/coala.md", "docs/environments/cleanup_lite.md"}
    assert all((tmp_path / target).resolve().is_file() for _, target in links), "every docs link resolves"
    assert (tmp_path / claims.TREE_FIGURE).stat().st_size > 10_000 and "tree_variance.png" in report
    assert (tmp_path / claims.TREE_BARS).stat().st_size > 10_000 and "tree_db.png" in report  # dB bars
    assert "cocoa-reward at L = 103: 0.95 ± 0.00 after 10,000 updates" in report


def _save(folder, spec, rows, shadow=None):
    summary = {"config": spec.to_dict(), "final": {}, "wall_seconds": 1.0, "env_steps_per_second": 1.0}
    records.save_record(folder / "runs" / spec.run_id,
                        {"summary": summary, "rows": rows, **({"shadow_rows": shadow} if shadow else {})})


def test_the_claims_report_reads_the_paper_sweep_and_shadow_training_where_they_ran(tmp_path):
    runs = {**GOOD, **SWEEP}
    for spec in suites.get(claims.PAPER_SWEEP).runs:  # the sweep at L = 23 and 103, into the claims' own folder
        if (spec.agent, spec.env_params["length"]) in runs:
            _save(tmp_path / "key-to-door", spec, runs[(spec.agent, spec.env_params["length"])])
    for spec in suites.get(claims.KEY_TO_DOOR).runs:
        _save(tmp_path / "key-to-door", spec, GOOD[(spec.agent, spec.env_params["length"])])
    many, few = suites.get(claims.SHADOW).runs  # 16 seeds without HCA-state, 4 with it
    assert many.train.seeds == 16 and "hca-state" not in many.shadows and few.train.seeds == 4
    _save(tmp_path / claims.SHADOW, many, *_shadow({a: v for a, v in SHADOW_GOOD.items() if a != "hca-state"}, 16))
    _save(tmp_path / claims.SHADOW, few, *_shadow(SHADOW_GOOD))
    claims.write_report(tmp_path)
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert _status(rows[:13]) == ["pass"] * 13
    assert "cocoa-reward -14.2 ± 0.1 dB (16 seeds)" in rows[10]["measured"] and "4 seeds" in rows[12]["measured"]
    # The shadow suite's own report checks the same three claims, and tabulates the shadows' figures.
    report = suite_report.write_report(suites.get(claims.SHADOW), tmp_path / claims.SHADOW).read_text()
    assert "## Claims" in report and "## Shadow estimators" in report and "shadow.png" in report
    assert "| cocoa-reward | -14.8 ± 0.0 | 0.2 ± 0.0 | 5.1 ± 0.0 | 0.5 -> 0.5 | 2 -> 2 | 1.5 -> 1.5 | 0.5 -> 0.5 |" in report
    own = json.loads((tmp_path / claims.SHADOW / "claims.json").read_text())
    assert [r["claim"] for r in own] == [r["claim"] for r in rows[10:13]]
    # Without a headline metric to bin by: the plain mean over evaluations and seeds.
    plain = suite_report.shadow_table(*_shadow(SHADOW_GOOD, rates=(0.0, 0.0, 0.0)), None)
    assert "averaged over the evaluations and seeds" in plain[0] and "| reinforce | -49.9 ± 0.0 | -98.9 ± 0.0 |" in plain[4]


def test_the_tree_suite_reports_its_saved_overlaps_and_measures_only_the_missing_ones(tmp_path, monkeypatch):
    good = {"reinforce": [18.7] * 7, "advantage-gt": [18.5] * 7, "hca-state-gt": [18.7] + [17.5] * 6,
            "cocoa-reward-gt": [15.0] * 7, "q-critic-gt": [6.3] * 7}
    for overlap in cocoa_claims.TREE_OVERLAPS[:-1]:
        records.atomic_write(tmp_path / f"overlap{overlap}.json",
                             json.dumps([r for r in _tree(good) if r["env_params"]["overlap"] == overlap]))
    measured = []

    def last_overlap(overlap, progress=False):
        measured.append(overlap)
        return [r for r in _tree(good) if r["env_params"]["overlap"] == overlap]

    monkeypatch.setattr(cocoa_claims, "tree_records", last_overlap)
    assert cli.main(["bench", "tree-variance", "--out", str(tmp_path), "--no-progress"]) == 0
    assert measured == [cocoa_claims.TREE_OVERLAPS[-1]]  # the saved overlaps are kept, not measured again
    report = (tmp_path / "report.md").read_text()
    assert _status(json.loads((tmp_path / "claims.json").read_text())) == ["pass", "pass"]
    assert "2 pass, 0 fail, 0 not run." in report and "overlap 6: reinforce 18.7 dB" in report
    assert (tmp_path / tree_variance.FIGURE).stat().st_size > 10_000 and tree_variance.FIGURE in report
    assert (tmp_path / tree_variance.BARS).stat().st_size > 10_000 and tree_variance.BARS in report


@pytest.mark.parametrize("name", ["claims", "claims-key-to-door", "tree-variance", "coala", "coala-sequence",
                                  "coala-cleanup"])
def test_every_special_suite_is_listed_and_described(name):
    assert name in suites.names() and suites.describe(name)
