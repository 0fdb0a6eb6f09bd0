"""The feature pipeline: closed-form statistics against sums worked by hand, and the 18
features of a real run recomputed independently (pandas, numpy.polyfit, VADER) from the
history tables it wrote, each partner's rows counted back from its own observation end
(the feature date, or the day before it left); every row inside the partner's life."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.errors import ConfigError
from simulator.histories import reduce as R

AS_OF = pd.Timestamp("2026-01-01")
FEATURE_DATE = AS_OF - pd.Timedelta(days=90)        # the default timeline: 3 episodes of 30 days
DAY = pd.Timedelta(days=1)
HISTORY_DATES = {"activity_daily": ["activity_date"], "commissions_daily": ["commission_date"],
                 "conversions_weekly": ["week_start"], "payouts": ["due_date", "paid_at"],
                 "support_tickets": ["opened_at"]}
FEATURES = ["login_count_30d", "login_trend_30d", "days_since_last_interaction", "dashboard_usage_score",
            "asset_download_count_30d", "revenue_velocity", "conversion_rate_wow", "traffic_quality_score",
            "commission_trend_90d", "payment_delay_flag", "unresolved_ticket_count", "negative_sentiment_score",
            "subnetwork_avg_health_score", "subnetwork_recent_churn_count", "tier_proximity_score",
            "tenure_months", "avg_commission_3m", "commission_volatility"]
NETWORK = ["subnetwork_avg_health_score", "subnetwork_recent_churn_count"]
YOUNG = ["revenue_velocity", "conversion_rate_wow", "commission_trend_90d", "commission_volatility"]   # null when
#   the partner is too young to measure them (simulator/histories/commissions.py, weekly.py)


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
    agg = commissions.reduce(h, {"cents": cents, "early_totals": None, "first": np.array([0])})
    assert agg["avg_3m"][0] == pytest.approx((900 + 600 + 450) / 3)
    assert agg["second_difference"][0] == pytest.approx(450 - 2 * 600 + 900)
    assert agg["monthly_std"][0] == pytest.approx(np.std(monthly))


def test_a_young_partners_commissions_reduce_over_its_live_months_only():
    """45 live days of a 120-day grid: the last month whole, the one before on its last 15
    days; nothing before. Averages the 2 live months' totals, no second difference, the
    spread of the 2 months' rates (a partial month per live day x 30), and the trend of the
    45 live days (no zeros before joining)."""
    from types import SimpleNamespace

    from simulator.histories import commissions

    h = SimpleNamespace(options={"months": 4, "spread": 5.0})
    daily = np.zeros(120)
    daily[75:90] = 2000.0                                  # $20 a day, 15 days: $300
    daily[90:] = np.linspace(2000, 4000, 30)               # $900
    agg = commissions.reduce(h, {"cents": daily[None, :], "early_totals": None, "first": np.array([75])})
    assert agg["avg_3m"][0] == pytest.approx((300 + 900) / 2)
    assert np.isnan(agg["second_difference"][0])           # not measured: 2 live months of 3
    assert agg["monthly_std"][0] == pytest.approx(np.std([300 * 30 / 15, 900]))
    amounts = daily[75:] / 100
    slope = np.polyfit(np.arange(45), amounts, 1)[0]
    assert agg["trend_90d"][0] == pytest.approx(slope / amounts.mean() * 30)
    young = commissions.reduce(h, {"cents": daily[None, :], "early_totals": None, "first": np.array([91])})
    assert np.isnan(young["trend_90d"][0]) and np.isnan(young["monthly_std"][0])   # 29 live days: one month


def test_young_partners_weeks_and_payouts_by_hand():
    from types import SimpleNamespace

    from simulator.histories import payments, weekly

    h = SimpleNamespace(options={"weeks": 3, "noise": 0.0, "column": "rate"})
    rates = np.array([[0.1, 0.2, 0.4]] * 3)
    agg = weekly.reduce(h, {"rates": rates, "first": np.array([0, 1, 2])})    # 3, 2 and 1 live weeks
    assert agg["wow"][:2].tolist() == pytest.approx([0.2, 0.2]) and np.isnan(agg["wow"][2])   # one week: null
    assert agg["mean_rate"].tolist() == pytest.approx([0.7 / 3, 0.3, 0.4])
    # payouts: a flagged partner of 60 days (late, paid), of 12 (late, due on its first day) and
    # of 3 (too young to be paid late: outstanding); an unflagged one of 1 day
    h = SimpleNamespace(options={"months": 3, "late_after_days": 7, "typical_delay": 2})
    rng = lambda part: np.random.default_rng(len(part))
    b = payments.generate(h, {"late": np.array([True, True, True, False]), "live": np.array([60, 12, 3, 1])},
                          rng, True)
    assert b["live"].sum(axis=1).tolist() == [1, 1, 1, 1]                 # due 30 days before, or on day 1
    assert b["due"][:, -1].tolist() == [30, 11, 2, 0]
    assert b["outstanding"].tolist() == [False, False, True, False]
    assert payments.reduce(h, b)["latest_late"].tolist() == [True, True, True, False]
    assert 8 <= b["delays"][1, -1] <= 11 and b["delays"][3, -1] == 0


def test_ticket_negativity_is_vader_on_each_text():
    from types import SimpleNamespace

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from simulator.histories import tickets

    # one topic, two tones: an opening, a body and a closing each (options as the kind's check leaves them)
    phrases = ((("I am furious.",), ("Hello,",)),
               (((("Terrible support.",), ("Please update my bank details.",))),),
               (("Awful.",), ("Thanks.",)))
    h = SimpleNamespace(options={"tones": {"angry": None, "calm": None}, "topics": {"payout": None},
                                 "phrases": phrases})
    texts = tickets.templates(h)
    assert texts == ("I am furious. Terrible support. Awful.", "Hello, Please update my bank details. Thanks.")
    block = {"owner": np.array([0, 0, 2]), "open": np.array([True, False, True]),
             "template": np.array([0, 1, 0]), "m": 3}
    agg = tickets.reduce(h, block)
    vader = SentimentIntensityAnalyzer()
    angry = max(0.0, -vader.polarity_scores(texts[0])["compound"])
    calm = max(0.0, -vader.polarity_scores(texts[1])["compound"])
    assert angry > 0.5 and calm == 0
    assert agg["negativity"].tolist() == pytest.approx([(angry + calm) / 2, 0.0, angry])
    assert agg["open_count"].tolist() == [1, 0, 1]


# ------------------------------------------------------------------ a real run, recomputed

@pytest.fixture(scope="module")
def world(default_run):
    return {name: default_run.parquet(name) for name in
            ["partners", "partners_engineered", "network_relationships", "activity_daily",
             "commissions_daily", "conversions_weekly", "payouts", "support_tickets"]}


@pytest.fixture(scope="module")
def small_world():
    """A default world of 3,000 partners with clean tables, generated and validated in process."""
    from simulator import compose, generate

    return generate(compose(["n_partners=3000", "faults=none"]))   # (the rows generated; test_faults: faulty ones)


def _rounded(computed, stored, decimals: int) -> bool:
    """``stored`` is ``computed`` rounded (half a unit, and float noise at the ties); null
    exactly where ``computed`` is (a young partner's statistic that is not measured)."""
    computed, stored = np.asarray(computed, float), np.asarray(stored, float)
    if not (np.isnan(computed) == np.isnan(stored)).all():
        return False
    gap = np.abs(computed - stored)[~np.isnan(computed)]
    return bool(np.all(gap <= 0.5 * 10.0 ** -decimals + 1e-9))


def _ends(p: pd.DataFrame) -> pd.Series:
    """Each partner's observation end: the feature date, or the day before it left."""
    left = p["churned_at"] - DAY
    return left.where(left < FEATURE_DATE, FEATURE_DATE)


def _live(p: pd.DataFrame) -> np.ndarray:
    """Each partner's live days: joining day to observation end, both included."""
    return ((_ends(p) - p["created_at"]).dt.days + 1).to_numpy()


def _back(frame: pd.DataFrame, date: str, p: pd.DataFrame) -> np.ndarray:
    """Days from each row's date to its partner's observation end."""
    ends = _ends(p).set_axis(p["partner_id"].astype(str))
    return (ends.reindex(frame["partner_id"].astype(str)).to_numpy() - frame[date].to_numpy()) // DAY


def _matrix(frame: pd.DataFrame, value: str, date: str, p: pd.DataFrame, k: int, per: int = 1) -> np.ndarray:
    """partners x k periods of ``per`` days (oldest first, the last ending on the partner's
    observation end) from a long history table; NaN where the partner has no row."""
    back = _back(frame, date, p) // per
    wide = frame.assign(back=back, pid=frame["partner_id"].astype(str)).pivot(index="pid", columns="back",
                                                                               values=value)
    return wide.reindex(index=p["partner_id"].astype(str), columns=range(k - 1, -1, -1)).to_numpy(dtype=float)


def _recent(frame: pd.DataFrame, date: str, p: pd.DataFrame, days: int) -> pd.DataFrame:
    """Each partner's sums over the ``days`` days up to its observation end."""
    recent = frame[_back(frame, date, p) < days]
    return recent.groupby("partner_id", observed=True).sum(numeric_only=True).reindex(p["partner_id"], fill_value=0)


def test_seed_validate_features(world, compose):
    """The seed's validate_features, on the model-ready table of a real run: nulls only
    where documented (a network feature of a non-master, a change too young to measure, a
    value a declared warehouse fault lost)."""
    df = world["partners_engineered"]
    cfg = compose([])
    lost = set(cfg["faults"]["missing"])                  # faults.missing: dashboard, traffic quality
    faulty = {*cfg["faults"]["late"], *cfg["faults"]["duplicates"], *(o["history"] for o in cfg["faults"]["outages"].values())}
    spoiled = {f for f, d in cfg["activity"]["features"].items() if d["from"] in faulty}   # read from a faulty table
    partners = world["partners"].set_index("partner_id").loc[df["partner_id"]]
    for feat in FEATURES:
        assert feat in df.columns, f"Missing feature: {feat}"
        if feat in NETWORK:                               # masters only: null means "not applicable"
            assert (df[feat].isna() == ~df["is_master_affiliate"]).all()
        elif feat in YOUNG:                               # a change too young to measure: null
            assert (df.loc[df[feat].isna(), "tenure_months"] < 3).all(), f"NaNs in {feat}"
        elif feat in lost:                                # lost by the warehouse: the partners table keeps it
            assert 0 < df[feat].isna().mean() < 0.1 and partners[feat].notna().all(), feat
            kept = df[feat].notna().to_numpy()
            same = df.loc[kept, feat].to_numpy() == partners.loc[kept, feat].to_numpy()
            assert same.all() if feat not in spoiled else 0.5 < same.mean() < 1, feat
        else:
            assert df[feat].isna().sum() == 0, f"NaNs in {feat}"


def test_seed_feature_engineering(default_run):
    """The seed's test_feature_engineering, on the CSV as the seed reads it."""
    df = pd.read_csv(default_run.dir / "partners_engineered.csv")
    assert len([c for c in df.columns if c not in ["partner_id", "created_at"]]) >= 18
    assert {"is_master_affiliate", "churn_label", "churn_scenario"} <= set(df.columns)


def test_seed_network_features(world, compose):
    """The seed's network features recomputed from the relationships and the subs' churn
    dates as of the feature date (no later information)."""
    p, edges = world["partners"].set_index("partner_id"), world["network_relationships"]
    feature_date = AS_OF - pd.Timedelta(days=90)
    recent_days = compose([]).network.recent_days          # "recent": the declared window
    subs = p.loc[edges["sub_affiliate_id"]]
    gone = subs["churned_at"] <= feature_date
    recent = gone & (subs["churned_at"] > feature_date - pd.Timedelta(days=recent_days))
    by_master = pd.DataFrame({"m": edges["master_affiliate_id"].to_numpy(), "churned": gone.to_numpy(),
                              "recent": recent.to_numpy()}).groupby("m")
    masters = p[p["is_master_affiliate"]]
    with_subs = masters.index.intersection(by_master.size().index)
    health = (1 - by_master["churned"].mean()) * 100
    assert np.allclose(masters.loc[with_subs, "subnetwork_avg_health_score"], health.loc[with_subs].round(2))
    assert (masters.loc[with_subs, "subnetwork_recent_churn_count"] == by_master["recent"].sum().loc[with_subs]).all()
    assert p.loc[~p["is_master_affiliate"], NETWORK].isna().all().all()


def test_engineered_table_is_the_partners_columns(world, compose):
    """The cohort at risk at the feature date (joined by it, not yet gone), with the
    partners table's values, but those a declared warehouse fault lost (faults.missing:
    null here, the true value in partners) and those computed from a faulty history table
    (tests/test_faults.py recomputes them from its rows)."""
    p, eng = world["partners"], world["partners_engineered"]
    assert list(eng.columns) == ["partner_id", *FEATURES, "is_master_affiliate", "churn_label", "churn_scenario"]
    cohort = ~(p["churned_at"] <= AS_OF - pd.Timedelta(days=90))
    truth = p.loc[cohort, eng.columns].reset_index(drop=True)
    lost = eng.isna() & truth.notna()
    assert set(lost.columns[lost.any()]) == {"dashboard_usage_score", "traffic_quality_score"}
    features = compose([])["activity"]["features"]
    spoiled = [f for f in eng.columns if f in features and features[f]["from"] == "daily"]
    assert len(spoiled) == 6
    differ = (eng[spoiled] != truth[spoiled]) & ~lost[spoiled]
    assert differ.any().all() and (differ.mean() < 0.25).all()
    pd.testing.assert_frame_equal(eng.drop(columns=spoiled), truth.mask(lost).astype(eng.dtypes.to_dict())
                                  .drop(columns=spoiled), check_categorical=False)


def test_every_history_row_is_inside_its_partners_life(small_world):
    """No row before the partner joined, none after its observation end: on or before the
    feature date always, before its churn date when it left."""
    p = small_world["partners"].set_index("partner_id")
    for table, cols in HISTORY_DATES.items():
        frame = small_world[table]
        pid = frame["partner_id"].astype(str)
        created = p["created_at"].reindex(pid).to_numpy()
        churned = p["churned_at"].reindex(pid).to_numpy()
        for col in cols:
            d = frame[col].to_numpy()
            dated = ~np.isnat(d)
            assert dated.all() or col == "paid_at", (table, col)   # only an outstanding payout is unpaid
            assert (d[dated] >= created[dated]).all(), (table, col, "before joining")
            assert (d[dated] <= np.datetime64(FEATURE_DATE)).all(), (table, col, "after the feature date")
            left = dated & ~np.isnat(churned)
            assert (d[left] < churned[left]).all(), (table, col, "on or after leaving")


def test_day_histories_cover_each_life_up_to_their_grid(small_world):
    """A row on every live day of the grid: the last on the observation end, the first on
    the joining day (or the grid's first day for an older partner)."""
    p = small_world["partners"]
    ends, live = _ends(p).to_numpy(), _live(p)
    for table, date, k in (("activity_daily", "activity_date", 60), ("commissions_daily", "commission_date", 180)):
        frame = small_world[table]
        g = frame.groupby("partner_id", observed=True)[date]
        assert (g.size().reindex(p["partner_id"]).to_numpy() == np.minimum(live, k)).all(), table
        assert (g.max().reindex(p["partner_id"]).to_numpy() == ends).all(), table
        young = live < k
        assert (g.min().reindex(p["partner_id"]).to_numpy()[young] == p["created_at"].to_numpy()[young]).all()
    assert (live < 60).any() and (live >= 180).any()          # the small world has young and old partners


def test_young_partners_changes_are_null(small_world):
    """The convention for partners too young for a statistic (simulator/histories/): null,
    not measured, rather than a block of exact zeros that would give their age away."""
    p = small_world["partners"]
    live = _live(p)
    assert p.loc[live < 61, "revenue_velocity"].isna().all()            # fewer than 3 live months
    assert p.loc[live < 14, "conversion_rate_wow"].isna().all()          # fewer than 2 live weeks
    assert p.loc[live < 30, "commission_trend_90d"].isna().all()         # fewer than 30 live days
    assert p.loc[live <= 30, "commission_volatility"].isna().all()       # one live month
    assert p.loc[live > 90, ["revenue_velocity", "conversion_rate_wow", "commission_trend_90d",
                             "commission_volatility"]].notna().all().all()
    young = live < 90
    for f in ("revenue_velocity", "commission_trend_90d", "commission_volatility", "conversion_rate_wow"):
        assert (p.loc[young, f] == 0).mean() < 0.02, f                   # no heap at 0
    payouts = small_world["payouts"]
    assert payouts.groupby("partner_id", observed=True).size().reindex(p["partner_id"]).ge(1).all()


def test_engagement_features_recomputed_from_daily_activity(small_world):
    p, daily = small_world["partners"], small_world["activity_daily"]
    ids = p["partner_id"]
    logins = _matrix(daily, "logins", "activity_date", p, 60)
    assert logins.shape == (len(p), 60)
    live = _live(p)
    assert (np.isnan(logins) == (np.arange(60)[None, :] < 60 - live[:, None])).all()   # rows on live days only
    logins = np.nan_to_num(logins)                          # before joining: no logins
    assert (logins[:, -30:].sum(axis=1) == p["login_count_30d"]).all()
    # the trend: the 30-day login count on each of the last 30 days, and its least-squares slope
    counts = pd.DataFrame(logins.T).rolling(30).sum().to_numpy()[-30:]
    trend = np.polyfit(np.arange(30), counts, 1)[0]
    assert _rounded(trend, p["login_trend_30d"], 3)
    last = daily[daily["logins"] > 0].groupby("partner_id", observed=True)["activity_date"].max()
    assert ((_ends(p).to_numpy() - last.reindex(ids).to_numpy()) // DAY == p["days_since_last_interaction"]).all()
    recent = _recent(daily, "activity_date", p, 30)
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
    amounts = _matrix(daily, "amount", "commission_date", p, 180).reshape(len(p), 6, 30)
    days = (~np.isnan(amounts)).sum(axis=2)                # rows per month: its live days
    live = days > 0
    months = np.nansum(amounts, axis=2)
    rates = months / np.maximum(days, 1) * 30              # a partial month at its rate per 30 days
    recent = live[:, -3:].sum(axis=1)
    assert _rounded(months[:, -3:].sum(axis=1) / recent, p["avg_commission_3m"], 2)
    velocity = np.where(recent == 3, rates[:, -1] - 2 * rates[:, -2] + rates[:, -3], np.nan)
    assert _rounded(velocity, p["revenue_velocity"], 2)
    volatility = [np.std(r[ok]) if ok.sum() >= 2 else np.nan for r, ok in zip(rates, live)]
    assert _rounded(volatility, p["commission_volatility"], 2)
    # the 90-day trend over the partner's rows in the last 90 days (grouped by how many; 30 at least)
    last90 = amounts.reshape(len(p), 180)[:, -90:]
    rows = (~np.isnan(last90)).sum(axis=1)
    trend = np.full(len(p), np.nan)                       # null with fewer than 30 live days
    for n in np.unique(rows[rows >= 30]):
        sel = rows == n
        y = last90[sel][:, -n:]
        with np.errstate(divide="ignore", invalid="ignore"):
            trend[sel] = np.nan_to_num(np.polyfit(np.arange(n), y.T, 1)[0] / y.mean(axis=1) * 30)
    assert _rounded(trend, p["commission_trend_90d"], 3)
    # tier proximity from the computed average and the declared thresholds; tenure from the start date
    tiers = load_spec(compose([])).resolved["population"]["tiers"]
    threshold = p["tier"].astype(str).map(tiers)
    assert _rounded((p["avg_commission_3m"] - threshold) / threshold, p["tier_proximity_score"], 4)
    assert (((_ends(p) - p["created_at"]).dt.days // 30) == p["tenure_months"]).all()


def test_trust_and_performance_features_recomputed(world):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    p = world["partners"]
    ids = p["partner_id"]
    weekly = world["conversions_weekly"]
    assert (_back(weekly, "week_start", p) % 7 == 6).all()            # whole weeks ending on the end
    rates = _matrix(weekly, "conversion_rate", "week_start", p, 8, per=7)
    wow = rates[:, -1] - rates[:, -2]                       # null with fewer than 2 weeks
    assert _rounded(wow, p["conversion_rate_wow"], 4)
    payouts = world["payouts"].sort_values("due_date").groupby("partner_id", observed=True).nth(-1)
    payouts = payouts.set_index(payouts["partner_id"].astype(str)).reindex(ids)
    late = (payouts["delay_days"] > 7) | payouts["paid_at"].isna()    # paid late, or outstanding
    assert (late.to_numpy() == p["payment_delay_flag"]).all()
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


@pytest.mark.parametrize("feature", ["login_trend_30d", "revenue_velocity", "commission_trend_90d",
                                     "conversion_rate_wow"])
def test_churners_decline_before_they_churn(world, feature):
    """Behaviour leads to churn: churners' velocity features are lower than the rest's by
    more than 5 standard errors of the difference (the roads to churn decline, never the label)."""
    p = world["partners_engineered"]
    a, b = p.loc[p["churn_label"], feature], p.loc[~p["churn_label"], feature]
    assert a.mean() - b.mean() < -5 * np.sqrt(a.var() / len(a) + b.var() / len(b))


@pytest.mark.parametrize("feature, churner, healthy, churner_sd, healthy_sd", [
    ("login_trend_30d", -0.15, 0.05, 0.25, 0.2),
    ("revenue_velocity", -80, 10, 40, 30),
    ("commission_trend_90d", -0.08, 0.02, 0.12, 0.08),
    ("conversion_rate_wow", -0.03, 0.01, 0.02, 0.015),
])
def test_velocity_features_separate_as_the_seed_declares(world, feature, churner, healthy, churner_sd, healthy_sd):
    """Class-conditional means of the *computed* features in the cohort near the seed's
    section 2.4 (its numbers, written here, not read from features.class_means).

    Tolerance: 4 standard errors of the realized class mean (sampling; stats.json's miss
    rule), plus a tenth of the declared class standard deviation (floor effects: a partner
    with 2 logins a month cannot show a steep rise, one averaging $20 a month cannot
    decelerate by $80).
    """
    p = world["partners_engineered"]
    gap = []
    for label, declared, sd in ((True, churner, churner_sd), (False, healthy, healthy_sd)):
        x = p.loc[p["churn_label"] == label, feature]
        tol = 4 * x.std() / np.sqrt(len(x)) + 0.1 * sd
        assert abs(x.mean() - declared) < tol, (label, x.mean(), declared, tol)
        gap.append(x.mean())
    assert gap[0] - gap[1] < 0.8 * (churner - healthy)      # churners decline: most of the declared gap


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
    churners, others = eng.loc[eng["churn_label"], "login_trend_30d"], eng.loc[~eng["churn_label"], "login_trend_30d"]
    assert churners.mean() < others.mean() - 5 * np.sqrt(churners.var() / len(churners) + others.var() / len(others))


def test_a_history_that_cannot_realize_its_column_is_refused(compose):
    from simulator.engine import simulate
    from simulator.load import load_spec

    spec = load_spec(compose(["n_partners=3000",      # a few silences longer than the 60-day history
                              "population.columns.days_since_last_interaction.expr="
                              "'where(silence_drawn > 25, 75, floor(silence_drawn))'"]))
    with pytest.raises(ConfigError, match=r"activity\.histories\.daily: days_since_last_interaction computed"):
        simulate(spec)


def test_an_unrealizable_golden_pin_is_refused(compose):
    from simulator.engine import simulate
    from simulator.load import load_spec

    spec = load_spec(compose(["n_partners=3000", "golden.records.P00002.negative_sentiment_score=0.99"]))
    with pytest.raises(ConfigError, match=r"golden\.records\.P00002 \(P00002\): negative_sentiment_score is pinned"):
        simulate(spec)


def test_live_days_are_declared_once_and_at_least_one(compose):
    from simulator.engine import simulate
    from simulator.load import load_spec

    with pytest.raises(ConfigError, match=r"activity\.live_days: missing: each partner's live days"):
        load_spec(compose(["~activity.live_days"]))
    spec = load_spec(compose(["n_partners=3000", "activity.live_days='tenure_days - 5'"]))
    with pytest.raises(ConfigError, match=r"activity\.live_days: must be at least 1 day for every partner"):
        simulate(spec)


def test_history_dates_count_back_from_each_partners_observation_end():
    from simulator.histories import NO_DATE
    from simulator.stages.activity import _dates

    end = np.array(["2025-10-03", "2025-08-01"], dtype="datetime64[us]")
    days = np.array([0, 29, 0, NO_DATE], dtype=np.int16)
    got = _dates(end.view(np.int64), np.array([0, 0, 1, 1]), days)
    assert got.tolist() == [np.datetime64("2025-10-03", "us").item(), np.datetime64("2025-09-04", "us").item(),
                            np.datetime64("2025-08-01", "us").item(), None]


def test_histories_as_csv_on_request(tmp_path):
    from conftest import run_cli

    run_cli("n_partners=1500", "db=none", "output.report=false", "activity.formats=[csv]", "faults=none",
            out_dir=tmp_path)
    assert not list(tmp_path.glob("activity_daily.parquet"))
    daily = pd.read_csv(tmp_path / "activity_daily.csv", parse_dates=["activity_date"])
    partners = pd.read_csv(tmp_path / "partners.csv", parse_dates=["created_at", "churned_at"])
    logins = _recent(daily, "activity_date", partners, 30)["logins"]
    assert (logins.to_numpy() == partners["login_count_30d"].to_numpy()).all()
    tickets = pd.read_csv(tmp_path / "support_tickets.csv")
    assert set(tickets["status"]) <= {"open", "resolved"} and tickets["text"].str.len().min() > 10


def test_auto_writes_histories_only_up_to_the_declared_size(compose):
    from simulator.load import load_spec

    assert load_spec(compose(["n_partners=500"])).files_only          # auto, under 250,000
    assert not load_spec(compose(["n_partners=500", "activity.auto_write_max=100"])).files_only
    assert load_spec(compose(["n_partners=500", "activity.auto_write_max=100", "activity.write=true"])).files_only
