"""The seed's own tests (tests/test_day1_data.py, section 2.5/2.6 validations), on a real run."""
from __future__ import annotations

import numpy as np
import pandas as pd

CHURN_SCENARIOS = ["Trust_Erosion", "Network_Contagion", "Tier_Cliff_Anxiety", "Active_Churn",
                   "Passive_Disengagement"]


def test_synthetic_data_quality(default_run):
    df = default_run.csv("partners")
    assert len(df) == 10000
    assert 0.15 <= df["churn_label"].mean() <= 0.25
    # Pareto check: top 20% should hold > 75% of commissions (DESIGN.md section 4)
    top_20_pct = df.nlargest(2000, "avg_commission_3m")
    assert top_20_pct["avg_commission_3m"].sum() / df["avg_commission_3m"].sum() > 0.75


def test_churn_rate_meets_target(default_run):
    # Non-masters are calibrated exactly (1/n); masters add contagion on top: 5% of rows
    # whose rate can at most double, so the whole stays within 0.01 of the target.
    df = default_run.csv("partners")
    non_masters = df[~df["is_master_affiliate"]]
    assert abs(non_masters["churn_label"].mean() - 0.20) <= 1 / len(non_masters) + 5 / len(non_masters)
    assert abs(df["churn_label"].mean() - 0.20) < 0.01


def test_scenario_distribution(default_run):
    df = default_run.csv("partners")
    counts = df["churn_scenario"].value_counts()
    assert counts["Healthy"] > len(df) * 0.75
    for scenario in CHURN_SCENARIOS:
        assert scenario in counts.index, f"Missing {scenario}"
    # every churner has a non-Healthy scenario and every non-churner Healthy
    assert ((df["churn_scenario"] != "Healthy") == df["churn_label"]).all()


def test_scenarios_follow_priority(default_run):
    df = default_run.csv("partners")
    churned = df[df["churn_label"]]
    trust = churned["payment_delay_flag"] & (churned["days_since_last_interaction"] > 14)
    assert (churned.loc[trust, "churn_scenario"] == "Trust_Erosion").all()
    contagion = ~trust & churned["is_master_affiliate"] & (churned["subnetwork_recent_churn_count"] > 2)
    assert (churned.loc[contagion, "churn_scenario"] == "Network_Contagion").all()
    cliff = ~trust & ~contagion & (churned["tier_proximity_score"] < 0.05)
    assert (churned.loc[cliff, "churn_scenario"] == "Tier_Cliff_Anxiety").all()


def test_golden_records(default_run):
    df = default_run.csv("partners").set_index("partner_id")
    for pid in ["P00001", "P00002", "P00003", "P00004", "P00005"]:
        assert pid in df.index
    p1, p2, p3, p4, p5 = (df.loc[f"P0000{i}"] for i in range(1, 6))
    assert (p1["tier"], p1["avg_commission_3m"], p1["tier_proximity_score"]) == ("Platinum", 5100, 0.02)
    assert p1["login_trend_30d"] == -0.4 and p1["churn_label"]
    assert p1["churn_scenario"] == "Tier_Cliff_Anxiety"
    assert p2["payment_delay_flag"] and p2["days_since_last_interaction"] == 18
    assert p2["unresolved_ticket_count"] == 3 and p2["negative_sentiment_score"] == 0.85
    assert p2["churn_scenario"] == "Trust_Erosion"
    assert p3["is_master_affiliate"] and p3["churn_label"]
    assert p3["subnetwork_recent_churn_count"] == 4 and p3["subnetwork_avg_health_score"] == 35
    assert p3["churn_scenario"] == "Network_Contagion"
    assert (p4["region"], p4["payment_rail_type"]) == ("Brazil", "P2P") and p4["payment_delay_flag"]
    assert p4["churn_label"]
    assert p5["tier"] == "Gold" and p5["login_trend_30d"] == 0.2 and not p5["payment_delay_flag"]
    assert not p5["churn_label"] and p5["churn_scenario"] == "Healthy"
    # P00005's unpinned commission comes from the distribution and obeys the Gold band
    assert 2000 <= p5["avg_commission_3m"] < 5000
    assert len(df) == 10000                   # golden rows replace generated ones


def test_golden_contagion_is_real(default_run):
    """P00003's network features are made true by network_relationships."""
    partners = default_run.csv("partners").set_index("partner_id")
    net = default_run.csv("network_relationships")
    subs = partners.loc[net.loc[net["master_affiliate_id"] == "P00003", "sub_affiliate_id"]]
    churned_at = pd.to_datetime(subs["churned_at"])
    recent = subs["churn_label"] & (churned_at >= pd.Timestamp("2026-01-01") - pd.Timedelta(days=30))
    assert recent.sum() == 4
    assert round((1 - subs["churn_label"].mean()) * 100, 2) == 35


def test_network_relationships(default_run):
    net = default_run.csv("network_relationships")
    partners = default_run.csv("partners")
    masters = partners[partners["is_master_affiliate"]]
    per_master = net["master_affiliate_id"].value_counts().reindex(masters["partner_id"], fill_value=0)
    assert per_master.between(0, 50).all()
    # 10-50 while the pool lasts (masters in id order): full blocks, then at most one
    # partial block when the pool runs out, then masters without subs
    counts = per_master.to_numpy()
    short = np.flatnonzero(counts < 10)
    if short.size:
        assert (counts[short[0] + 1:] == 0).all()
        assert net["sub_affiliate_id"].nunique() == (~partners["is_master_affiliate"]).sum()
    assert (counts[: short[0] if short.size else None] >= 10).all()
    assert net["sub_affiliate_id"].value_counts().max() == 1, "Sub-affiliates should have only ONE parent"
    assert not net["sub_affiliate_id"].isin(masters["partner_id"]).any()
    recruited = pd.to_datetime(net["recruited_at"])
    days = (pd.Timestamp("2026-01-01") - recruited).dt.days
    assert days.between(0, 365).all()
    # 30-365 days before as_of, except that nobody is recruited before master and sub joined
    created = pd.to_datetime(partners.set_index("partner_id")["created_at"])
    joined = np.maximum(created.loc[net["master_affiliate_id"]].to_numpy(),
                        created.loc[net["sub_affiliate_id"]].to_numpy())
    assert (recruited.to_numpy() >= joined).all()
    assert ((days >= 30) | (recruited.to_numpy() == joined)).all()


def test_dates_are_consistent(default_run):
    partners = default_run.csv("partners")
    churned = partners[partners["churn_label"]]
    assert (pd.to_datetime(churned["churned_at"]) >= pd.to_datetime(churned["created_at"])).all()
    assert (pd.to_datetime(partners["created_at"]) <= pd.Timestamp("2026-01-01")).all()


def test_network_features(default_run):
    df = default_run.csv("partners")
    masters = df[df["is_master_affiliate"]]
    non_masters = df[~df["is_master_affiliate"]]
    assert masters["subnetwork_avg_health_score"].notna().all()
    assert non_masters["subnetwork_avg_health_score"].isna().all()
    assert non_masters["subnetwork_recent_churn_count"].isna().all()
    # health recomputed from the edges equals the stored feature for every master
    net = default_run.csv("network_relationships")
    label = df.set_index("partner_id")["churn_label"]
    share = net.assign(c=label.loc[net["sub_affiliate_id"]].to_numpy()).groupby("master_affiliate_id")["c"].mean()
    health = masters.set_index("partner_id")["subnetwork_avg_health_score"]
    expected = ((1 - share) * 100).round(2).reindex(health.index, fill_value=np.nan).fillna(100.0)
    assert np.allclose(health, expected)


def test_masters_churn_more_through_contagion(default_run):
    df = default_run.csv("partners")
    masters = df[df["is_master_affiliate"]]
    hit = masters["subnetwork_recent_churn_count"] > 2
    assert masters.loc[hit, "churn_label"].mean() > masters.loc[~hit, "churn_label"].mean()


def test_csv_and_parquet_agree(default_run):
    a = default_run.csv("partners")
    b = default_run.parquet("partners")
    assert list(a.columns) == list(b.columns)
    assert (a["partner_id"] == b["partner_id"]).all()
    assert np.allclose(a["avg_commission_3m"], b["avg_commission_3m"])
    assert (a["churn_label"] == b["churn_label"]).all()
