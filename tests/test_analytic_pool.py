"""The analytic IPD's mixed pool (cocoa.analytic_pool.train_analytic_pool): exact gradient ascent of memory-1
meta agents against naive learners and each other (the COALA paper's App. C)."""

import numpy as np
import pytest

from cocoa.analytic_pool import ANALYTIC_STARTS, train_analytic_pool
from cocoa.shaping import METRICS

FAST = dict(learning_rate=0.05, updates=800, log_every=100, naive_batch=8, progress=False)


def cooperation(out):
    return 1 / (1 + np.exp(-out["logits"]))


def test_from_tit_for_tat_the_mixed_pool_moves_off_it_and_keeps_cooperating():
    """App. C.1, Fig. 10: tit-for-tat is not an equilibrium of the mixed pool (the shaping gradient
    moves it), but the policies it moves to still cooperate with each other."""
    out = train_analytic_pool(p_naive=0.75, start="tit-for-tat", **FAST)
    assert out["meta_vs_meta_reward"] > 0.95
    assert np.max(np.abs(cooperation(out) - np.asarray(ANALYTIC_STARTS["tit-for-tat"]))) > 0.1
    assert out["update"].tolist() == list(range(100, 801, 100))
    for name in METRICS:  # the sampled runner's metrics, so that the suite reads both alike
        assert out[name + "_curve"].shape == (8,) and out[name] == out[name + "_curve"][-1]


def test_meta_agents_alone_stay_at_mutual_defection_and_shaping_alone_escapes_it():
    alone = train_analytic_pool(p_naive=0.0, **FAST)
    assert alone["meta_vs_meta_reward"] < 0.01 and np.all(cooperation(alone) < 0.01)
    shaping = train_analytic_pool(p_naive=1.0, population=1, **FAST)
    assert shaping["meta_reward"] > 1.0 > shaping["naive_reward"]  # extortion: Sec. 4.2, Finding 1
    assert np.isnan(shaping["meta_vs_meta_reward"])  # a pool of one plays no meta-vs-meta game
    assert cooperation(shaping)[0, 1] > 0.5  # it cooperates after mutual cooperation


@pytest.mark.parametrize("options, message", [
    (dict(start="grim"), "unknown start 'grim'; known: defect, tit-for-tat"),
    (dict(start=["defect"]), r"unknown start \['defect'\]; known"),
    (dict(naive_init="normal"), "unknown naive_init 'normal'; known: uniform, zero"),
    (dict(p_naive=1.5), "p_naive must be a probability"),
    (dict(discount=1.0), "discount must be a number in"),
    (dict(learning_rate=0.0), "learning_rate must be a finite positive number"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite positive number; got inf"),
    (dict(updates=100, log_every=30), r"updates \(100\) must be a whole number of log_every blocks \(30\)"),
    (dict(population=1, p_naive=0.5), "population must be an integer >= 2"),
])
def test_bad_settings_name_themselves(options, message):
    with pytest.raises(ValueError, match=message):
        train_analytic_pool(**options)
