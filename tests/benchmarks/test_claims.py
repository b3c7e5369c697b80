"""The claims rows (``cocoa bench claims``): each passes and fails on its threshold, says "not run"
when its runs are missing, and the report gathers them with their docs links."""

import json
import re

import pytest

from cocoa.benchmarks import claims, cocoa_claims, records, suites
from cocoa.benchmarks.claim_table import STATUSES


def _rows(curve_per_seed, updates):
    """Evaluation rows: seed s has treasure rate curve_per_seed[s][i] at updates[i]."""
    return [{"update": u, "seed": s, "episodes": u * 8, "return": 0.0, "treasure_rate": float(v)}
            for s, curve in enumerate(curve_per_seed) for u, v in zip(updates, curve)]


GOOD = {("cocoa-reward", 23): _rows([[0.0, 0.9, 1.0]] * 8, [0, 2000, 2250]),
        ("cocoa-reward", 103): _rows([[0.0, 0.95, 0.95]] * 8, [0, 5000, 10000]),
        ("reinforce", 103): _rows([[0.0, 0.05, 0.1]] * 8, [0, 5000, 10000]),
        ("advantage", 103): _rows([[0.0, 0.1, 0.2]] * 8, [0, 5000, 10000])}


def _status(rows):
    return [r["status"] for r in rows]


def test_the_key_to_door_claims_pass_fail_and_go_unrun_on_their_thresholds():
    assert _status(cocoa_claims.key_to_door_rows(GOOD)) == ["pass"] * 5 + ["not run"] * 2
    bad = dict(GOOD)
    bad[("cocoa-reward", 23)] = _rows([[0.0, 0.5, 1.0]] * 8, [0, 2000, 2250])  # late: 0.5 at update 2,000
    bad[("cocoa-reward", 103)] = _rows([[0.0, 0.95, 0.4]] + [[0.0, 0.95, 0.95]] * 7, [0, 5000, 10000])  # a collapse
    bad[("advantage", 103)] = _rows([[0.0, 0.5, 0.5]] * 8, [0, 5000, 10000])
    assert _status(cocoa_claims.key_to_door_rows(bad)) == ["fail", "fail", "pass", "fail", "pass", "not run", "not run"]
    # COCOA ahead by less than two standard errors: fail.
    close = dict(GOOD)
    close[("advantage", 103)] = _rows([[0.0, 1.0, 1.0]] * 4 + [[0.0, 0.9, 0.9]] * 4, [0, 5000, 10000])
    assert _status(cocoa_claims.key_to_door_rows(close))[4] == "fail"
    missing = cocoa_claims.key_to_door_rows({})
    assert _status(missing) == ["not run"] * 7
    assert all(r["command"] for r in missing) and "no cocoa-reward run at L = 23" in missing[0]["measured"]


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
    assert len(rows) == 18 and {r["status"] for r in rows} <= set(STATUSES)
    assert _status(rows[:9]) == ["pass"] * 5 + ["not run"] * 2 + ["pass"] * 2
    assert _status(rows[9:]) == ["not run"] * 9  # the coala part has not run
    assert "7 pass, 0 fail, 11 not run." in report
    links = re.findall(r"\[(docs/[^\]]+)\]\(([^)]+)\)", report)
    assert {page for page, _ in links} >= {"docs/benchmarks/index.md", "docs/environments/tree.md",
                                           "docs/estimators/coala.md", "docs/environments/cleanup_lite.md"}
    assert all((tmp_path / target).resolve().is_file() for _, target in links), "every docs link resolves"
    assert (tmp_path / claims.TREE_FIGURE).stat().st_size > 10_000 and "tree_variance.png" in report
    assert (tmp_path / claims.TREE_BARS).stat().st_size > 10_000 and "tree_db.png" in report  # dB bars
    assert "cocoa-reward at L = 103: 0.95 ± 0.00 after 10,000 updates" in report


@pytest.mark.parametrize("name", ["claims", "claims-key-to-door", "coala", "coala-sequence", "coala-cleanup"])
def test_every_special_suite_is_listed_and_described(name):
    assert name in suites.names() and suites.describe(name)
