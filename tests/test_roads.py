"""Signals that carry risk, not the label: the latent roads, their agreement with the
scenario rules, the oracle, and the difficulty knob (issue "Signals that carry risk")."""
from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import run_cli
from simulator.load import load_spec

FEATURES = ["login_count_30d", "login_trend_30d", "days_since_last_interaction", "dashboard_usage_score",
            "asset_download_count_30d", "revenue_velocity", "conversion_rate_wow", "traffic_quality_score",
            "commission_trend_90d", "payment_delay_flag", "unresolved_ticket_count", "negative_sentiment_score",
            "subnetwork_avg_health_score", "subnetwork_recent_churn_count", "tier_proximity_score",
            "tenure_months", "avg_commission_3m", "commission_volatility"]


def test_no_feature_is_drawn_after_the_label(compose):
    """Every step that writes one of the 18 features runs before the label window's churn
    pass (the one that writes the label of the cohort): none can read the label. The
    network's features read who left *before* the feature date (the first pass) only."""
    from simulator.plan import build_plan

    spec = load_spec(compose([]))
    plan = build_plan(spec)
    label = spec.role("label")
    last_label_pass = max(i for i, s in enumerate(plan) if label in s.writes)
    for feature in FEATURES:
        writers = [i for i, s in enumerate(plan) if feature in s.writes]
        assert writers and max(writers) < last_label_pass, (feature, [plan[i].name for i in writers])
    assert not any(label in s.reads for s in plan[:last_label_pass] if s.writes & set(FEATURES))


def test_the_oracle_is_the_labels_own_probability(default_run):
    """true_churn_probability = 1 - prod_k (1 - clip(q_k (1 + e_k), 0, 1)) over the partner's
    three decisions (effects are relative), q_k the hazard at decision k's period start
    (decision_truth's P(Churned | none): the control has no noise; a master's moves with its
    subs' churn) and e_k the realized effects. Checked on the partners who stayed (all three
    decisions are written); uplift_signal is rounded to 0.001, so each term is within
    0.0005 q_k."""
    iv = default_run.csv("interventions")
    truth = default_run.csv("decision_truth").set_index("intervention_id")
    partners = default_run.csv("partners").set_index("partner_id")
    stayed = partners.index[~partners["churn_label"]].intersection(iv["partner_id"])
    rows = iv[iv["partner_id"].isin(stayed)]
    q = truth.loc[rows["intervention_id"], "base_churn_probability"].to_numpy()
    keep = pd.Series(np.log1p(-np.clip(q * (1 + rows["uplift_signal"].to_numpy()), 0, 1 - 1e-12)))
    oracle = 1 - np.exp(keep.groupby(rows["partner_id"].to_numpy()).sum())
    assert rows.groupby("partner_id").size().eq(3).all()
    assert np.abs(oracle - partners.loc[oracle.index, "true_churn_probability"]).max() < 3 * 0.0005 + 1e-9
    left_early = pd.to_datetime(partners["churned_at"]) <= pd.Timestamp("2025-10-03")
    assert left_early.any() and partners.loc[left_early, "true_churn_probability"].isna().all()


def test_a_rule_edited_away_from_its_roads_signature_fails_the_run(tmp_path):
    """Trust_Erosion's road is silent 15 days or more; a rule asking for more than 16 misses
    a third of its partners (silence_drawn < 2 of an exponential(5)), under the declared 95%:
    the invariant fails the run (exit 3) and nothing is published."""
    out = tmp_path / "run"
    proc = run_cli("n_partners=2000", "db=none",
                   "scenarios.rules.Trust_Erosion.when='payment_delay_flag and days_since_last_interaction > 16'",
                   out_dir=out, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "Trust_Erosion road match scenarios.rules.Trust_Erosion.when" in proc.stderr
    assert not (out / "partners.csv").exists()


def test_roads_are_ground_truth_in_partners_not_in_the_model_table(default_run):
    partners, cohort = default_run.csv("partners"), default_run.csv("partners_engineered")
    assert "churn_path" in partners and "churn_path" not in cohort
    churners = partners.set_index("partner_id").loc[cohort.loc[cohort["churn_label"], "partner_id"]]
    # a road leads to its own scenario: most churners on a scenario's road carry its name
    for road in ["Trust_Erosion", "Tier_Cliff_Anxiety", "Active_Churn", "Passive_Disengagement"]:
        on = churners[churners["churn_path"] == road]
        assert len(on) > 100 and (on["churn_scenario"] == road).mean() > 0.9, road


def test_the_signal_knob_orders_the_oracle(compose):
    """churn.signal scales every rule's weight: a weaker signal, a lower oracle AUC (the
    churn probability given the latent state ranks churners less well), on one seed."""
    from simulator import generate

    auc = {}
    for signal in (0.35, 1.0, 3.0):
        tables = generate(compose(["n_partners=3000", "activity=none", "db=none", f"churn.signal={signal}"]))
        from simulator.review.learnability import auc as rank_auc
        p, cohort = tables["partners"].set_index("partner_id"), tables["partners_engineered"]
        auc[signal] = rank_auc(cohort["churn_label"].to_numpy(),
                               p.loc[cohort["partner_id"], "true_churn_probability"].to_numpy())
    assert auc[0.35] < auc[1.0] < auc[3.0], auc
