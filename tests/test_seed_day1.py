"""The seed's own tests (tests/test_day1_data.py, section 2.5/2.6 validations), on a real run."""
from __future__ import annotations

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2026-01-01")
FEATURE_DATE = AS_OF - pd.Timedelta(days=90)      # the timeline: 3 episodes of 30 days before as_of
CHURN_SCENARIOS = ["Trust_Erosion", "Network_Contagion", "Tier_Cliff_Anxiety", "Active_Churn",
                   "Passive_Disengagement"]


def test_synthetic_data_quality(default_run):
    df = default_run.csv("partners")
    assert len(df) == 10000
    assert 0.15 <= df["churn_label"].mean() <= 0.25
    # Pareto check: top 20% should hold > 75% of commissions (DESIGN.md section 4)
    top_20_pct = df.nlargest(2000, "avg_commission_3m")
    assert top_20_pct["avg_commission_3m"].sum() / df["avg_commission_3m"].sum() > 0.75


def test_churn_rate_meets_target(default_run, compose):
    # the label: churn in the label window among partners active at the feature date (the
    # cohort, partners_engineered), calibrated exactly: round(0.20 x cohort) churners
    cohort = default_run.csv("partners_engineered")
    assert cohort["churn_label"].sum() == round(0.20 * len(cohort))
    # partners also holds the declared share of non-masters who left before the feature date
    partners = default_run.csv("partners")
    gone = pd.to_datetime(partners["churned_at"]) <= FEATURE_DATE
    assert gone.sum() == round(compose([]).churn.earlier.share * (~partners["is_master_affiliate"]).sum())
    assert len(cohort) == len(partners) - gone.sum()


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


def test_golden_contagion_is_real(default_run, compose):
    """P00003's network features are made true by network_relationships: its subs left
    before the feature date (4 of them in the declared recent days up to it)."""
    partners = default_run.csv("partners").set_index("partner_id")
    net = default_run.csv("network_relationships")
    subs = partners.loc[net.loc[net["master_affiliate_id"] == "P00003", "sub_affiliate_id"]]
    churned_at = pd.to_datetime(subs["churned_at"])
    gone = churned_at <= FEATURE_DATE
    recent = gone & (churned_at > FEATURE_DATE - pd.Timedelta(days=compose([]).network.recent_days))
    assert recent.sum() == 4
    assert round((1 - gone.mean()) * 100, 2) == 35


def test_network_relationships(default_run):
    net = default_run.csv("network_relationships")
    partners = default_run.csv("partners")
    masters = partners[partners["is_master_affiliate"]]
    per_master = net["master_affiliate_id"].value_counts().reindex(masters["partner_id"], fill_value=0)
    # the declared shares: half the masters recruited no one, the others 10-50 subs each
    assert (per_master == 0).sum() == round(0.5 * len(masters))
    assert per_master[per_master > 0].between(10, 50).all()
    assert net["sub_affiliate_id"].value_counts().max() == 1, "Sub-affiliates should have only ONE parent"
    assert not net["sub_affiliate_id"].isin(masters["partner_id"]).any()
    # not every non-master is a sub: about a fifth are independent
    independent = 1 - len(net) / (~partners["is_master_affiliate"]).sum()
    assert 0.1 < independent < 0.35
    # recruited within both lives, before the feature date and within a year of it
    recruited = pd.to_datetime(net["recruited_at"])
    assert ((FEATURE_DATE - recruited).dt.days.between(0, 365)).all()
    by_id = partners.set_index("partner_id")
    for side in ("master_affiliate_id", "sub_affiliate_id"):
        created = pd.to_datetime(by_id.loc[net[side], "created_at"]).to_numpy()
        gone = pd.to_datetime(by_id.loc[net[side], "churned_at"]).to_numpy()
        assert (recruited.to_numpy() >= created).all()
        assert not (recruited.to_numpy() >= gone).any()          # NaT compares False
    # a relationship is active while both partners are
    both = by_id.loc[net["master_affiliate_id"], "churned_at"].isna().to_numpy() & \
        by_id.loc[net["sub_affiliate_id"], "churned_at"].isna().to_numpy()
    assert (net["is_active"].to_numpy() == both).all()


def test_dates_are_consistent(default_run):
    partners = default_run.csv("partners")
    churned = partners[partners["churn_label"]]
    assert (pd.to_datetime(churned["churned_at"]) > pd.to_datetime(churned["created_at"])).all()
    assert (pd.to_datetime(churned["churned_at"]) <= AS_OF).all()
    assert (pd.to_datetime(partners["created_at"]) <= FEATURE_DATE).all()


def test_network_features(default_run):
    df = default_run.csv("partners")
    masters = df[df["is_master_affiliate"]]
    non_masters = df[~df["is_master_affiliate"]]
    assert masters["subnetwork_avg_health_score"].notna().all()
    assert non_masters["subnetwork_avg_health_score"].isna().all()
    assert non_masters["subnetwork_recent_churn_count"].isna().all()
    # health recomputed from the edges and the subs' churn dates as of the feature date
    net = default_run.csv("network_relationships")
    gone = pd.to_datetime(df.set_index("partner_id")["churned_at"]) <= FEATURE_DATE
    share = net.assign(c=gone.loc[net["sub_affiliate_id"]].to_numpy()).groupby("master_affiliate_id")["c"].mean()
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
