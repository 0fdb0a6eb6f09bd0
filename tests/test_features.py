"""The feature pipeline: closed-form statistics against sums worked by hand, and the 18
features of a real run recomputed independently (pandas, numpy.polyfit, VADER) from the
history tables it wrote."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.errors import ConfigError
from simulator.histories import reduce as R

AS_OF = pd.Timestamp("2026-01-01")
FEATURES = ["login_count_30d", "login_trend_30d", "days_since_last_interaction", "dashboard_usage_score",
            "asset_download_count_30d", "revenue_velocity", "conversion_rate_wow", "traffic_quality_score",
            "commission_trend_90d", "payment_delay_flag", "unresolved_ticket_count", "negative_sentiment_score",
            "subnetwork_avg_health_score", "subnetwork_recent_churn_count", "tier_proximity_score",
            "tenure_months", "avg_commission_3m", "commission_volatility"]
NETWORK = ["subnetwork_avg_health_score", "subnetwork_recent_churn_count"]


# ------------------------------------------------------------------ known answers, by hand

def test_slope_by_hand():
    # t = -1.5, -0.5, 0.5, 1.5; sum t^2 = 5; sum t*y = -1.5 - 1.5 + 1 + 9 = 7
    assert R.slope(np.array([[1.0, 3.0, 2.0, 6.0]]))[0] == pytest.approx(7 / 5)
    assert R.slope(np.array([[4.0, 4.0, 4.0]]))[0] == 0


def test_rolling_slope_by_hand_and_as_weights():
    x = np.array([[1, 0, 2, 1, 3]])
    # 2-day sums: 1, 2, 3, 4; the last three (2, 3, 4) rise by 1 a day
    assert R.rolling_sums(x, 2).tolist() == [[1, 2, 3, 4]]
    assert R.rolling_slope(x, 2, 3)[0] == pytest.approx(1.0)
    # the slope is linear in the counts: the generator builds histories to it through these weights
    rng = np.random.default_rng(0)
    y = rng.poisson(2.0, (50, 60))
    assert np.allclose(y @ R.rolling_slope_weights(60, 30, 30), R.rolling_slope(y, 30, 30))


def test_days_since_last_by_hand():
    x = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 5]])
    assert R.periods_since_last(x).tolist() == [2, 3, 4, 0]


def test_second_difference_week_over_week_and_volatility_by_hand():
    months = np.array([[100.0, 400.0, 100.0, 150.0, 170.0]])
    assert R.second_difference(months)[0] == pytest.approx(170 - 2 * 150 + 100)   # -30
    assert R.last_change(np.array([[0.05, 0.06, 0.02]]))[0] == pytest.approx(-0.04)
    mean = months.mean()
    assert R.std(months)[0] == pytest.approx(np.sqrt(((months - mean) ** 2).sum() / 5))


def test_monthly_totals_and_relative_trend_by_hand():
    daily = np.concatenate([np.full(30, 10.0), np.full(30, 20.0), np.full(30, 30.0)])[None, :]
    assert R.totals(daily, 30).tolist() == [[300.0, 600.0, 900.0]]
    # t - 44.5 summed over each 30-day block: -900, 0, +900; sum t^2 = 90 (90^2 - 1) / 12
    per_day = (10 * -900 + 30 * 900) / (90 * (90 ** 2 - 1) / 12)
    assert R.relative_slope(daily, 30)[0] == pytest.approx(per_day / 20 * 30)
    assert R.relative_slope(np.zeros((1, 90)), 30)[0] == 0


def test_composites_by_hand(compose):
    """The two composite scores, as declared in YAML, on aggregates chosen by hand."""
    from simulator.expr import evaluate
    from simulator.load import load_spec

    spec = load_spec(compose([]))
    feats = {f.name: f.column for f in spec.stage("activity").features}
    # 10 logins, 80 clicks, 120 minutes, 15 features: 0.4*80/160 + 0.3*120/240 + 0.3*15/30 = 0.5
    agg = {"logins_30d": np.array([10, 0]), "clicks_30d": np.array([80, 0]), "minutes_30d": np.array([120.0, 0]),
           "features_used_30d": np.array([15, 0])}
    assert evaluate(feats["dashboard_usage_score"].expr, agg, 2).tolist() == pytest.approx([0.5, 0.0])
    # 100 sessions, 20 bounced, 7,200 s over the 80 engaged: (1 - 0.2) * min(90 / 180, 1) = 0.4
    agg = {"sessions_30d": np.array([100, 0]), "bounces_30d": np.array([20, 0]),
           "session_seconds_30d": np.array([7200, 0])}
    assert evaluate(feats["traffic_quality_score"].expr, agg, 2).tolist() == pytest.approx([0.4, 0.0])


def test_commission_block_reduces_to_hand_sums():
    from types import SimpleNamespace

    from simulator.histories import commissions

    h = SimpleNamespace(options={"months": 4, "spread": 5.0})
    monthly = [300.0, 900.0, 600.0, 450.0]                 # dollars per 30-day month
    cents = np.repeat(np.array(monthly) * 100 / 30, 30)[None, :]
    agg = commissions.reduce(h, {"cents": cents, "early_totals": None})
    assert agg["avg_3m"][0] == pytest.approx((900 + 600 + 450) / 3)
    assert agg["second_difference"][0] == pytest.approx(450 - 2 * 600 + 900)
    assert agg["monthly_std"][0] == pytest.approx(np.std(monthly))


def test_ticket_negativity_is_vader_on_each_text():
    from types import SimpleNamespace

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from simulator.histories import tickets

    texts = {"angry": ("Terrible support, I am furious.",), "calm": ("Please update my bank details.",)}
    h = SimpleNamespace(options={"tones": {"angry": None, "calm": None}, "templates": texts})
    block = {"owner": np.array([0, 0, 2]), "open": np.array([True, False, True]),
             "template": np.array([0, 1, 0]), "m": 3}
    agg = tickets.reduce(h, block)
    vader = SentimentIntensityAnalyzer()
    angry = max(0.0, -vader.polarity_scores(texts["angry"][0])["compound"])
    calm = max(0.0, -vader.polarity_scores(texts["calm"][0])["compound"])
    assert angry > 0.5 and calm == 0
    assert agg["negativity"].tolist() == pytest.approx([(angry + calm) / 2, 0.0, angry])
    assert agg["open_count"].tolist() == [1, 0, 1]


# ------------------------------------------------------------------ a real run, recomputed

@pytest.fixture(scope="module")
def world(default_run):
    return {name: default_run.parquet(name) for name in
            ["partners", "partners_engineered", "network_relationships", "activity_daily",
             "commissions_daily", "conversions_weekly", "payouts", "support_tickets"]}


def _rounded(computed, stored, decimals: int) -> bool:
    """``stored`` is ``computed`` rounded (half a unit, and float noise at the ties)."""
    gap = np.abs(np.asarray(computed, float) - np.asarray(stored, float))
    return bool(np.all(gap <= 0.5 * 10.0 ** -decimals + 1e-9))


def _matrix(frame: pd.DataFrame, value: str, date: str, ids: pd.Series) -> np.ndarray:
    """partners x periods (oldest first) from a long history table."""
    wide = frame.pivot(index="partner_id", columns=date, values=value)
    return wide.reindex(ids.astype(str)).sort_index(axis=1).to_numpy(dtype=float)


def test_seed_validate_features(world):
    """The seed's validate_features, on the model-ready table of a real run."""
    df = world["partners_engineered"]
    for feat in FEATURES:
        assert feat in df.columns, f"Missing feature: {feat}"
        if feat in NETWORK:                               # masters only: null means "not applicable"
            assert (df[feat].isna() == ~df["is_master_affiliate"]).all()
        else:
            assert df[feat].isna().sum() == 0, f"NaNs in {feat}"


def test_seed_feature_engineering(default_run):
    """The seed's test_feature_engineering, on the CSV as the seed reads it."""
    df = pd.read_csv(default_run.dir / "partners_engineered.csv")
    assert len([c for c in df.columns if c not in ["partner_id", "created_at"]]) >= 18
    assert {"is_master_affiliate", "churn_label", "churn_scenario"} <= set(df.columns)


def test_seed_network_features(world):
    """The seed's network features recomputed from the relationships and the sub-affiliates."""
    p, edges = world["partners"].set_index("partner_id"), world["network_relationships"]
    subs = p.loc[edges["sub_affiliate_id"]]
    recent = subs["churn_label"] & (subs["churned_at"] >= AS_OF - pd.Timedelta(days=30))
    by_master = pd.DataFrame({"m": edges["master_affiliate_id"].to_numpy(), "churned": subs["churn_label"].to_numpy(),
                              "recent": recent.to_numpy()}).groupby("m")
    masters = p[p["is_master_affiliate"]]
    with_subs = masters.index.intersection(by_master.size().index)
    health = (1 - by_master["churned"].mean()) * 100
    assert np.allclose(masters.loc[with_subs, "subnetwork_avg_health_score"], health.loc[with_subs].round(2))
    assert (masters.loc[with_subs, "subnetwork_recent_churn_count"] == by_master["recent"].sum().loc[with_subs]).all()
    assert p.loc[~p["is_master_affiliate"], NETWORK].isna().all().all()


def test_engineered_table_is_the_partners_columns(world):
    p, eng = world["partners"], world["partners_engineered"]
    assert list(eng.columns) == ["partner_id", *FEATURES, "is_master_affiliate", "churn_label", "churn_scenario"]
    pd.testing.assert_frame_equal(eng, p[eng.columns], check_categorical=False)


def test_engagement_features_recomputed_from_daily_activity(world):
    p, daily = world["partners"], world["activity_daily"]
    ids = p["partner_id"]
    logins = _matrix(daily, "logins", "activity_date", ids)
    assert logins.shape == (len(p), 60)
    assert (logins[:, -30:].sum(axis=1) == p["login_count_30d"]).all()
    # the trend: the 30-day login count on each of the last 30 days, and its least-squares slope
    counts = pd.DataFrame(logins.T).rolling(30).sum().to_numpy()[-30:]
    trend = np.polyfit(np.arange(30), counts, 1)[0]
    assert _rounded(trend, p["login_trend_30d"], 3)
    last = daily[daily["logins"] > 0].groupby("partner_id", observed=True)["activity_date"].max()
    assert ((AS_OF - last.reindex(ids)).dt.days.to_numpy() == p["days_since_last_interaction"]).all()
    recent = daily[daily["activity_date"] > AS_OF - pd.Timedelta(days=30)].groupby("partner_id", observed=True).sum(
        numeric_only=True).reindex(ids)
    assert (recent["asset_downloads"].to_numpy() == p["asset_download_count_30d"]).all()
    per_login = np.maximum(recent["logins"].to_numpy(), 1)
    usage = np.minimum(0.4 * recent["dashboard_clicks"] / (16 * per_login) + 0.3 * recent["minutes_spent"]
                       / (24 * per_login) + 0.3 * recent["features_used"] / (3 * per_login), 1)
    assert _rounded(usage, p["dashboard_usage_score"], 3)
    engaged = np.maximum(recent["sessions"] - recent["bounces"], 1)
    quality = (1 - recent["bounces"] / np.maximum(recent["sessions"], 1)) * np.minimum(
        recent["session_seconds"] / engaged / 180, 1)
    assert _rounded(quality, p["traffic_quality_score"], 3)


def test_financial_features_recomputed_from_commissions(world, compose):
    from simulator.load import load_spec

    p, daily = world["partners"], world["commissions_daily"]
    amounts = _matrix(daily, "amount", "commission_date", p["partner_id"])
    months = amounts.reshape(len(p), 6, 30).sum(axis=2)
    assert _rounded(months[:, -3:].mean(axis=1), p["avg_commission_3m"], 2)
    assert _rounded(months[:, -1] - 2 * months[:, -2] + months[:, -3], p["revenue_velocity"], 2)
    assert _rounded(months.std(axis=1), p["commission_volatility"], 2)
    last90 = amounts[:, -90:]
    trend = np.polyfit(np.arange(90), last90.T, 1)[0] / last90.mean(axis=1) * 30
    assert _rounded(np.nan_to_num(trend), p["commission_trend_90d"], 3)
    # tier proximity from the computed average and the declared thresholds; tenure from the start date
    tiers = load_spec(compose([])).resolved["population"]["tiers"]
    threshold = p["tier"].astype(str).map(tiers)
    assert _rounded((p["avg_commission_3m"] - threshold) / threshold, p["tier_proximity_score"], 4)
    assert (((AS_OF - p["created_at"]).dt.days // 30) == p["tenure_months"]).all()


def test_trust_and_performance_features_recomputed(world):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    p = world["partners"]
    ids = p["partner_id"]
    rates = _matrix(world["conversions_weekly"], "conversion_rate", "week_start", ids)
    assert _rounded(rates[:, -1] - rates[:, -2], p["conversion_rate_wow"], 4)
    payouts = world["payouts"].sort_values("due_date").groupby("partner_id", observed=True).last().reindex(ids)
    assert ((payouts["delay_days"] > 7).to_numpy() == p["payment_delay_flag"]).all()
    tickets = world["support_tickets"]
    open_ = tickets[tickets["status"] == "open"].groupby("partner_id", observed=True).size()
    assert (open_.reindex(ids, fill_value=0).to_numpy() == p["unresolved_ticket_count"]).all()
    vader = SentimentIntensityAnalyzer()
    texts = tickets["text"].astype(str)
    score = {t: max(0.0, -vader.polarity_scores(t)["compound"]) for t in texts.unique()}
    mean = texts.map(score).groupby(tickets["partner_id"].astype(str)).mean().reindex(ids, fill_value=0.0)
    assert _rounded(mean.to_numpy(), p["negative_sentiment_score"], 2)


def test_golden_pins_are_realized_by_their_histories(world):
    p = world["partners"].set_index("partner_id")
    assert p.loc["P00001", "login_trend_30d"] == -0.4
    assert p.loc["P00005", "login_trend_30d"] == 0.2
    assert p.loc["P00002", ["days_since_last_interaction", "unresolved_ticket_count"]].tolist() == [18, 3]
    assert p.loc["P00002", "negative_sentiment_score"] == 0.85
    # (the recomputations above prove these values are what the history tables give)


@pytest.mark.parametrize("feature, churner, healthy, churner_sd, healthy_sd", [
    ("login_trend_30d", -0.15, 0.05, 0.25, 0.2),
    ("revenue_velocity", -80, 10, 40, 30),
    ("commission_trend_90d", -0.08, 0.02, 0.12, 0.08),
    ("conversion_rate_wow", -0.03, 0.01, 0.02, 0.015),
])
def test_velocity_features_separate_as_the_seed_declares(world, feature, churner, healthy, churner_sd, healthy_sd):
    """Class-conditional means of the *computed* features near the seed's section 2.4.

    Tolerance: 2 standard errors of the realized class mean (sampling), plus a tenth of
    the declared class standard deviation (floor effects: a partner with 2 logins a month
    cannot show a steep rise, one averaging $20 a month cannot decelerate by $80).
    """
    p = world["partners"]
    gap = []
    for label, declared, sd in ((True, churner, churner_sd), (False, healthy, healthy_sd)):
        x = p.loc[p["churn_label"] == label, feature]
        tol = 2 * x.std() / np.sqrt(len(x)) + 0.1 * sd
        assert abs(x.mean() - declared) < tol, (label, x.mean(), declared, tol)
        gap.append(x.mean())
    assert gap[0] - gap[1] < 0.8 * (churner - healthy)      # churners decline: most of the declared gap


def test_gradient_boosting_separates_churners(world):
    """A gradient-boosted classifier on the 18 features alone (no labels, no ids)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    df = world["partners_engineered"]
    X = df[FEATURES].astype(float).to_numpy()
    y = df["churn_label"].to_numpy()
    rng = np.random.default_rng(0)
    test = rng.random(len(df)) < 0.3
    model = HistGradientBoostingClassifier(random_state=0).fit(X[~test], y[~test])
    auc = roc_auc_score(y[test], model.predict_proba(X[test])[:, 1])
    assert auc > 0.85, auc                                   # README states the observed AUC


# ------------------------------------------------------------------ properties of the engine

def test_features_do_not_depend_on_writing_or_blocks(compose):
    """Reduced-only histories (activity.write=false) give the same partners, over several blocks."""
    from simulator.engine import simulate
    from simulator.stages.activity import BLOCK
    from simulator.load import load_spec

    n = BLOCK + 3000
    written = simulate(load_spec(compose([f"n_partners={n}", "interventions=none"]))).tables
    reduced = simulate(load_spec(compose([f"n_partners={n}", "interventions=none", "activity.write=false"]))).tables
    pd.testing.assert_frame_equal(written["partners"], reduced["partners"])
    assert "activity_daily" in written and "activity_daily" not in reduced
    assert written["activity_daily"]["partner_id"].nunique() == n


def test_reduced_histories_never_hold_all_daily_rows(compose):
    """At 100k partners without writing, peak memory stays well under the daily rows' size."""
    import tracemalloc

    from simulator.engine import simulate
    from simulator.load import load_spec

    n = 100_000
    spec = load_spec(compose([f"n_partners={n}", "interventions=none", "activity.write=false"]))
    all_daily_rows = n * (60 * 8 + 180) * 8                   # 8 daily int64 columns + daily commissions
    tracemalloc.start()
    simulate(spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < all_daily_rows / 2, (peak, all_daily_rows)


def test_drawn_features_mode_still_selectable(tmp_path):
    from conftest import run_cli

    run_cli("activity=none", "db=none", "output.report=false", out_dir=tmp_path)
    eng = pd.read_parquet(tmp_path / "partners_engineered.parquet")
    assert list(eng.columns)[1:19] == FEATURES
    assert not (tmp_path / "activity_daily.parquet").exists()
    churners = eng.loc[eng["churn_label"], "login_trend_30d"]
    assert abs(churners.mean() + 0.15) < 4 * 0.25 / np.sqrt(len(churners))   # drawn: sampling error only


def test_a_history_that_cannot_realize_its_column_is_refused(compose):
    from simulator.engine import simulate
    from simulator.load import load_spec

    spec = load_spec(compose(["n_partners=3000", "population.columns.days_since_last_interaction.clip.max=90"]))
    with pytest.raises(ConfigError, match=r"activity\.histories\.daily: days_since_last_interaction computed"):
        simulate(spec)


def test_an_unrealizable_golden_pin_is_refused(compose):
    from simulator.engine import simulate
    from simulator.load import load_spec

    spec = load_spec(compose(["n_partners=3000", "golden.records.P00002.negative_sentiment_score=0.99"]))
    with pytest.raises(ConfigError, match=r"golden\.records\.P00002 \(P00002\): negative_sentiment_score is pinned"):
        simulate(spec)


def test_histories_as_csv_on_request(tmp_path):
    from conftest import run_cli

    run_cli("n_partners=400", "db=none", "output.report=false", "activity.formats=[csv]", out_dir=tmp_path)
    assert not list(tmp_path.glob("activity_daily.parquet"))
    daily = pd.read_csv(tmp_path / "activity_daily.csv", parse_dates=["activity_date"])
    partners = pd.read_csv(tmp_path / "partners.csv")
    recent = daily[daily["activity_date"] > AS_OF - pd.Timedelta(days=30)]
    logins = recent.groupby("partner_id")["logins"].sum().reindex(partners["partner_id"])
    assert (logins.to_numpy() == partners["login_count_30d"].to_numpy()).all()
    tickets = pd.read_csv(tmp_path / "support_tickets.csv")
    assert set(tickets["status"]) <= {"open", "resolved"} and tickets["text"].str.len().min() > 10


def test_auto_writes_histories_only_up_to_the_declared_size(compose):
    from simulator.load import load_spec

    assert load_spec(compose(["n_partners=500"])).files_only          # auto, under 250,000
    assert not load_spec(compose(["n_partners=500", "activity.auto_write_max=100"])).files_only
    assert load_spec(compose(["n_partners=500", "activity.auto_write_max=100", "activity.write=true"])).files_only
