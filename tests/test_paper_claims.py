"""The COCOA paper's qualitative claims that can be checked exactly (docs/benchmarks/index.md).

On the tree every trajectory is enumerated (6^4 action sequences), so the variances below carry
no sampling error: the comparisons are exact statements about the estimators.
"""

import pytest

from cocoa import gradients
from cocoa.benchmarks import cocoa_claims


# Ground-truth variants beyond the claims' agents, and two that are biased on this tree.
_UNBIASED = ("reinforce", "advantage-gt", "q-critic-gt", "trajcv-gt", "hca-state-gt", "cocoa-reward-gt")
_EXTRA = ("q-critic", "hca-return-gt")


@pytest.fixture(scope="module")
def overlap_two_records():
    """The claims' agents and more estimators at overlap 2, in one analysis (an agent's record does not
    depend on the others analysed with it)."""
    names = list(dict.fromkeys(cocoa_claims.TREE_AGENTS + _UNBIASED + _EXTRA))
    return gradients.analyse("Tree-v0", names, env_params={"overlap": 2}, model_updates=0, seed=0)


@pytest.fixture(scope="module")
def tree_records(overlap_two_records):
    """``cocoa bench claims``' tree measurements at three overlaps: exact enumeration, oracle models."""
    at_two = [r for r in overlap_two_records if r["agent"] in cocoa_claims.TREE_AGENTS]
    records = [r for overlap in (0, 4) for r in cocoa_claims.tree_records(overlap)] + at_two
    assert all(r["exact_variance"] for r in records)
    assert all(r["bias"] < 1e-9 for r in records)  # ground-truth variants: unbiased
    return records


@pytest.fixture(scope="module")
def tree_variance(tree_records):
    """variance (dB) per overlap and agent, at one shared policy."""
    table = {}
    for r in tree_records:
        table.setdefault(r["env_params"]["overlap"], {})[r["agent"]] = r["variance_db"]
    return table


def test_tree_overlap_zero_hca_state_variance_equals_reinforce(tree_variance):
    # Every state has a unique history, so the exact coefficients are 0 or 1 / pi: HCA-state is REINFORCE.
    assert tree_variance[0]["hca-state-gt"] == pytest.approx(tree_variance[0]["reinforce"], abs=1e-3)


def test_tree_cocoa_reward_has_the_lowest_variance(tree_variance):
    for overlap, variance in tree_variance.items():
        assert variance["cocoa-reward-gt"] < variance["hca-state-gt"] - 1.0, overlap
        assert variance["cocoa-reward-gt"] < variance["reinforce"] - 1.0, overlap


def test_tree_hca_state_improves_as_overlap_grows(tree_variance):
    gap = {o: v["reinforce"] - v["hca-state-gt"] for o, v in tree_variance.items()}
    assert gap[0] < gap[2] < gap[4]
    assert gap[4] > 0.5  # dB


def test_tree_ground_truth_variants_are_unbiased_exactly(overlap_two_records):
    """Enumerated over every trajectory, each ground-truth estimator's mean gradient is the true
    gradient (bias and the gap between the enumerated mean and the expected gradient ~ float eps)."""
    by_agent = {r["agent"]: r for r in overlap_two_records}
    for name in _UNBIASED:
        assert by_agent[name]["exact_variance"]
        assert by_agent[name]["bias"] < 1e-9, name
        assert by_agent[name]["mean_gap"] < 1e-9, name
    # The same check sees the bias of an untrained critic and of HCA-return on this tree.
    assert by_agent["q-critic"]["bias"] > 1e-3
    assert by_agent["hca-return-gt"]["mean_gap"] < 1e-9


def test_the_claims_reports_tree_rows_pass_on_the_real_tree(tree_records):
    assert [row["status"] for row in cocoa_claims.tree_rows(tree_records)] == ["pass", "pass"]
