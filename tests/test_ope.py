"""Off-policy estimators (issue "Evaluate over time", item 4): the formulas against
hand-computed cases, the outcome model's cross-fitting, and at 100k partners under a
targeted logging policy SNIPW and DR within 4 standard errors of the exact value (seed 42,
so a pass is deterministic; 4 SE is a two-sided miss of 6e-5 for an unbiased estimator)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from simulator import ope

# three logged decisions over two types: (outcome, type taken, its propensity)
LOG = ope.Logged(y=np.array([1.0, 0.0, 1.0]), a=np.array([0, 1, 1]), propensity=np.array([0.5, 0.25, 0.5]),
                 x=np.zeros((3, 1)))
PI = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])     # the target policy: type 0, 1, 0
MODEL = np.array([[0.4, 0.2], [0.1, 0.3], [0.6, 0.5]])   # predicted churn under each type


def test_the_estimators_by_hand():
    # w = pi[a] / propensity = [1/0.5, 1/0.25, 0/0.5] = [2, 4, 0]
    assert ope.ipw(LOG, PI)[0] == pytest.approx((2 * 1 + 4 * 0 + 0 * 1) / 3)
    assert ope.snipw(LOG, PI)[0] == pytest.approx((2 * 1 + 0) / (2 + 4 + 0))
    assert ope.dm(MODEL, PI)[0] == pytest.approx((0.4 + 0.3 + 0.6) / 3)
    # dr: dm term + w * (y - model[a]) = 0.4 + 2 * 0.6, 0.3 + 4 * (0 - 0.3), 0.6 + 0
    assert ope.dr(LOG, PI, MODEL)[0] == pytest.approx((1.6 + -0.9 + 0.6) / 3)
    terms = np.array([2.0, 0.0, 0.0])
    assert ope.ipw(LOG, PI)[1] == pytest.approx(terms.std(ddof=1) / np.sqrt(3))
    v = 1 / 3                                  # snipw's delta method: sqrt(sum w^2 (y - v)^2) / sum w
    assert ope.snipw(LOG, PI)[1] == pytest.approx(np.sqrt(4 * (1 - v) ** 2 + 16 * v ** 2) / 6)


def test_the_outcome_model_is_cross_fitted_and_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    a = rng.integers(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x[:, 0] - 1 + a)))).astype(float)
    log = ope.Logged(y, a, np.full(4000, 0.5), x)
    m = ope.outcome_model(log, 2)
    truth = 1 / (1 + np.exp(-(x[:, :1] - 1 + np.array([[0, 1]]))))
    assert np.abs(m - truth).mean() < 0.03
    flipped = ope.outcome_model(ope.Logged(np.where(np.arange(4000) == 0, 1 - y, y), a, log.propensity, x), 2)
    assert flipped[0].tolist() == m[0].tolist()               # row 0 is scored by the other fold's model
    assert not np.array_equal(flipped[1], m[1])               # whose own model saw row 0


@pytest.mark.slow
def test_snipw_and_dr_recover_the_truth_under_a_targeted_logging_policy(tmp_path):
    out = tmp_path / "run"
    run_cli("n_partners=100000", "activity=none", "db=none", "output.report=false", "experiment=targeted_calls",
            out_dir=out)
    partners = pd.read_parquet(out / "partners_engineered.parquet")
    rec = np.where(partners["avg_commission_3m"] > 2000, "call",
                   np.where(partners["login_trend_30d"] < 0, "email", "none"))
    preds = tmp_path / "preds.csv"
    pd.DataFrame({"partner_id": partners["partner_id"], "recommended_intervention": rec}).to_csv(preds, index=False)
    from simulator.evaluate import main

    assert main([str(out), "--predictions", str(preds), "--ope", "--out", str(tmp_path / "ev")]) == 0
    o = json.loads((tmp_path / "ev" / "evaluation.json").read_text())["ope"]
    assert o["n"] == len(partners)
    for name in ("snipw", "dr"):
        assert abs(o[name]["error"]) < 4 * o[name]["se"], (name, o[name])
    assert o["ipw"]["truth"] == o["dr"]["truth"] > 0
    md = (tmp_path / "ev" / "evaluation.md").read_text()
    assert "## Off-policy estimates of the submitted policy" in md and "| SNIPW |" in md
    page = (tmp_path / "ev" / "evaluation.html").read_text()
    assert "Off-policy estimates of the submitted policy" in page and "<td>SNIPW</td>" in page
