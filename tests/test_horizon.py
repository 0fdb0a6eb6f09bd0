"""A horizon of monthly snapshots (timeline.snapshots): every table tells one timeline.

Worlds are generated in-process with the drawn features (activity=none; raw histories run
forward through a horizon are tests/test_forward.py's). What is checked is recomputed
from the tables a user gets: who is in each snapshot, its labels, the masters' network
features as of each snapshot, one decision per active partner per period, each
snapshot's churn rate (solved to within two standard errors), and how the drawn columns
move. Statistical checks use a fixed seed and 4 standard errors.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.run import generate

SNAPSHOTS = 6
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def world(compose):
    return generate(compose(["n_partners=12000", "activity=none", "db=none", "output.report=false",
                             f"timeline.snapshots={SNAPSHOTS}"]))


def _dates(world):
    panel = world["features_panel"]
    return sorted(pd.to_datetime(panel["snapshot_date"].unique()))


def test_snapshots_are_monthly_and_end_on_the_feature_date(world):
    dates = _dates(world)
    assert len(dates) == SNAPSHOTS
    assert all(b - a == 30 * DAY for a, b in zip(dates, dates[1:]))
    assert dates[-1] == pd.Timestamp("2026-01-01") - 90 * DAY          # as_of - the label window


def test_each_snapshot_holds_exactly_the_partners_active_then(world):
    partners, panel = world["partners"].set_index("partner_id"), world["features_panel"]
    joined, gone = pd.to_datetime(partners["created_at"]), pd.to_datetime(partners["churned_at"])
    for day, rows in panel.groupby("snapshot_date"):
        day = pd.Timestamp(day)
        active = partners.index[(joined <= day) & (gone.isna() | (gone > day))]
        assert set(rows["partner_id"]) == set(active), day
        # the label: churn in the 90 days after the snapshot
        g = gone.loc[rows["partner_id"]].to_numpy()
        expected = ~pd.isna(g) & (g > day) & (g <= day + 90 * DAY)
        assert (rows["churn_label"].to_numpy() == expected).all(), day
        assert ((rows["churn_scenario"] == "Healthy").to_numpy() == ~expected).all(), day


def test_partners_join_throughout_the_horizon(world):
    dates = _dates(world)
    joined = pd.to_datetime(world["partners"]["created_at"])
    arrivals = [int(((joined > a) & (joined <= b)).sum()) for a, b in zip(dates, dates[1:])]
    assert min(arrivals) > 0


def test_partners_arrive_at_a_steady_rate_and_the_cohort_holds_its_size(world):
    """The tenure's arrivals: steady. Over the D days played (burn-in and snapshots) the
    arrivals are a share D / (360 + D) of the partners, on uniform days: each 30 days holds
    its expected count within 4 SE (binomial), but the last 60, where a partner's tenure is
    at least its days since its last login. So the cohort holds its size (it doubled when
    every age was the declared exponential's)."""
    days = (6 + SNAPSHOTS - 1) * 30
    first = pd.Timestamp("2026-01-01") - 90 * DAY - days * DAY       # the burn-in's start
    joined = pd.to_datetime(world["partners"]["created_at"])
    n, p = len(joined), days / (360 + days) * 30 / days
    for k in range(days // 30 - 2):
        got = int(((joined > first + 30 * k * DAY) & (joined <= first + 30 * (k + 1) * DAY)).sum())
        assert abs(got - n * p) < 4 * np.sqrt(n * p * (1 - p)), (k, got, n * p)
    sizes = world["features_panel"].groupby("snapshot_date").size()
    assert abs(sizes.iloc[-1] / sizes.iloc[0] - 1) < 0.10, sizes.tolist()


def test_a_written_steady_age_is_not_held_to_its_exponential_in_a_horizon(tmp_path):
    """Written (keep: true), a horizon's steady-arrivals age is a mixture, not the declared
    exponential: stats.json holds no target for it (it was a miss of its mean)."""
    import json

    from conftest import run_cli

    run_cli("n_partners=3000", "experiment=horizon", "population.columns.tenure_drawn.keep=true", "db=none",
            "+population.columns.tenure_band={bins: tenure_drawn, edges: {new: 0, mid: 180, old: 720}}",
            "output.report=false", "output.formats=[parquet]", out_dir=tmp_path / "run")
    targets = json.loads((tmp_path / "run" / "stats.json").read_text())["targets"]
    assert not [t["target"] for t in targets if t["target"].startswith(("population.columns.tenure_drawn",
                                                                        "population.columns.tenure_band"))]
    assert [t for t in targets if t["target"].startswith("population.columns.region")]   # the others are


def test_a_shocked_scale_sets_the_steady_arrivals_share(compose):
    """A shock tripling the tenure's scale in Brazil at the feature date: Brazil's arrivals
    are D / (3 x 360 + D) of its partners, the others' D / (360 + D), each within 4 SE."""
    w = generate(compose(["n_partners=20000", "experiment=horizon", "db=none", "output.report=false",
                          "+shocks.tenure_shock={start: '2025-05-01', end: null, where: \"region == 'Brazil'\", "
                          "effects: [{multiply: population.columns.tenure_drawn.scale, by: 3}]}"]))
    days = (6 + 12 - 1) * 30
    partners = w["partners"]
    arrived = (pd.to_datetime(partners["created_at"]) > pd.Timestamp("2026-01-01") - (90 + days) * DAY).to_numpy()
    brazil = (partners["region"] == "Brazil").to_numpy()
    for rows, scale in ((brazil, 3 * 360), (~brazil, 360)):
        share = days / (scale + days)
        assert abs(arrived[rows].mean() - share) < 4 * np.sqrt(share * (1 - share) / rows.sum()), (scale, share)


def test_the_last_snapshot_is_partners_engineered(world):
    panel, engineered = world["features_panel"], world["partners_engineered"]
    last = panel[pd.to_datetime(panel["snapshot_date"]) == _dates(world)[-1]].drop(columns="snapshot_date")
    pd.testing.assert_frame_equal(last.reset_index(drop=True), engineered.reset_index(drop=True))


def test_every_snapshot_churns_at_the_target_rate(world):
    """Within 4 SE: the period that closes a snapshot's window moves its churners a third
    of the way to those the snapshot still needs (closing it
    exactly fed a period-3 mode: churn.gain)."""
    panel = world["features_panel"]
    for day, rows in panel.groupby("snapshot_date"):
        assert abs(rows["churn_label"].mean() - 0.2) < 4 * np.sqrt(0.16 / len(rows)), (day, rows["churn_label"].mean())


def test_one_decision_per_active_partner_per_period(world):
    partners, iv = world["partners"].set_index("partner_id"), world["interventions"]
    joined, gone = pd.to_datetime(partners["created_at"]), pd.to_datetime(partners["churned_at"])
    dates = sorted(pd.to_datetime(iv["intervention_date"].unique()))
    assert len(dates) == SNAPSHOTS - 1 + 3
    assert not iv.duplicated(["partner_id", "intervention_date"]).any()
    for day in dates:
        active = (joined <= day) & (gone.isna() | (gone > day))
        assert (pd.to_datetime(iv["intervention_date"]) == day).sum() == active.sum(), day
    churned = iv["outcome"] == "Churned"
    g = gone.loc[iv["partner_id"]].to_numpy()
    d = pd.to_datetime(iv["intervention_date"]).to_numpy()
    assert (churned.to_numpy() == (~pd.isna(g) & (g > d) & (g <= d + np.timedelta64(30, "D")))).all()


def test_decision_truth_adds_up_to_the_outcome_probability(world):
    dt, iv = world["decision_truth"], world["interventions"]
    got = dt["intervention_type"].to_numpy()
    received = dt["base_churn_probability"].to_numpy() + np.select(
        [got == k for k in ("call", "email", "none")], [dt[f"effect_{k}"].to_numpy() for k in ("call", "email", "none")])
    assert np.abs(received - iv["outcome_probability"].to_numpy()).max() < 1e-9
    assert len(world["uplift_truth"]) == len(world["partners_engineered"])


def test_masters_network_features_are_point_in_time(world):
    """Recomputed at three snapshots from network_relationships (recruited by then) and the
    subs' churn dates (left by then; recently: in the 45 days up to it)."""
    partners, panel, net = world["partners"].set_index("partner_id"), world["features_panel"], \
        world["network_relationships"]
    gone = pd.to_datetime(partners["churned_at"])
    recruited = pd.to_datetime(net["recruited_at"])
    dates = _dates(world)
    checked = 0
    for day in (dates[0], dates[len(dates) // 2], dates[-1]):
        rows = panel[(pd.to_datetime(panel["snapshot_date"]) == day) & panel["is_master_affiliate"]].set_index("partner_id")
        edges = net[(recruited <= day).to_numpy()]
        g = gone.loc[edges["sub_affiliate_id"]].to_numpy()
        left = ~pd.isna(g) & (g <= day)
        recent = left & (g > day - 45 * DAY)
        per = pd.DataFrame({"m": edges["master_affiliate_id"].to_numpy(), "left": left, "recent": recent})
        agg = per.groupby("m").agg(size=("left", "size"), lost=("left", "sum"), recent=("recent", "sum"))
        agg = agg.reindex(rows.index, fill_value=0)
        health = np.where(agg["size"] > 0, np.round((1 - agg["lost"] / agg["size"].clip(lower=1)) * 100, 2), 100.0)
        assert np.allclose(rows["subnetwork_avg_health_score"].to_numpy(dtype=float), health, atol=0.006), day
        assert (rows["subnetwork_recent_churn_count"].to_numpy(dtype=float) == agg["recent"].to_numpy()).all(), day
        checked += len(rows)
    assert checked > 300


def test_networks_keep_their_size_through_the_horizon(world, compose):
    """A horizon's network grows period by period (simulator/stages/growth.py): a master's
    slots hold a sub at a time, refilled by newcomers as its subs leave, so the masters
    with a network have as many subs at the last snapshot as at the first (drawn once at
    the feature date, the subs that stay were recruited on any day up to it: 5.5 subs
    active at the first snapshot against 18.4 at the last, at 100,000 partners). And no
    master has more subs at once than its fan-out allows."""
    partners, net = world["partners"].set_index("partner_id"), world["network_relationships"]
    gone = pd.to_datetime(partners["churned_at"])
    recruited = pd.to_datetime(net["recruited_at"])
    sub_gone = gone.loc[net["sub_affiliate_id"].astype(str)].to_numpy()
    master_gone = gone.loc[net["master_affiliate_id"].astype(str)].to_numpy()
    dates = _dates(world)
    sizes = []
    for day in (dates[0], dates[-1]):
        on = ((recruited <= day).to_numpy() & ~(sub_gone <= day) & ~(master_gone <= day))
        per = net.loc[on, "master_affiliate_id"].value_counts()
        per = per[per > 0]
        assert per.max() <= compose([]).network.fanout.high
        sizes.append(per.mean())
    assert len(per) > 100 and 0.8 < sizes[1] / sizes[0] < 1.25, sizes


@pytest.mark.parametrize("without", [None, 0.0])
def test_the_masters_without_subs_are_the_declared_share_at_every_snapshot(world, compose, without):
    """Of the masters active at each snapshot, network.without_subs have recruited no one
    by then: the masters with networks leave first (the contagion chooses them), and masters
    there who recruited no one start to, each taking a newcomer first. Before, recruiting was
    drawn once per master, and the share without subs rose to 0.75 at the feature date
    (30,000 partners); a master who joined within the period could not start, so 0 came
    out at 0.07-0.11; and a master who started could find no newcomer left. The share is
    held exactly at each period's end, so the tolerance is a few masters: 4 of them."""
    if without is not None:
        world = generate(compose(["n_partners=8000", "activity=none", "db=none", "output.report=false",
                                  f"timeline.snapshots={SNAPSHOTS}", f"network.without_subs={without}"]))
    declared = compose([]).network.without_subs if without is None else without
    panel, net = world["features_panel"], world["network_relationships"]
    first = pd.to_datetime(net["recruited_at"]).groupby(net["master_affiliate_id"].astype(str)).min()
    masters = panel[panel["is_master_affiliate"]]
    assert masters["snapshot_date"].nunique() == SNAPSHOTS and len(masters) > 1000
    for day, rows in masters.groupby(pd.to_datetime(masters["snapshot_date"])):
        recruited = rows["partner_id"].astype(str).map(first) <= day
        assert abs((~recruited).mean() - declared) <= 4 / len(rows), (day, (~recruited).mean(), len(rows))


def test_a_golden_master_whose_subs_no_timeline_gives_names_the_timeline(compose):
    """A horizon of two snapshots and no burn-in has no partner who left before the recent
    window: golden P00003's subs that left earlier exist at no n_partners, so the message
    names the timeline, where it asked for about 18,001 partners at 2,000 and 45,001 at
    5,000 (a share of zero scaled)."""
    from simulator.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        generate(compose(["experiment=horizon", "n_partners=2000", "timeline.snapshots=2", "timeline.burn_in=0",
                          "db=none", "output.report=false"]))
    message = str(info.value)
    assert "P00003 needs subs who left earlier, before the feature date, and none of this world's" in message
    assert "timeline.burn_in" in message and "about" not in message


def test_a_horizon_of_one_episode_windows_runs_and_meets_its_rate(compose):
    """With one episode per label window each period closes its own snapshot's window: no
    recurrence to damp (churn.gain(1) is 1), and the world runs (the first damped version
    read the period before's intercept at period 0, where there is none, and crashed);
    every snapshot churns at the target within 4 SE."""
    from simulator.stages.churn import _radius, gain

    assert gain(1) == 1.0 and gain(3) == pytest.approx(1 / 3)
    # a third was unstable from 6 episodes (a departure grew at 12); past 20 none damps: exactly
    assert all(_radius(gain(e), e) <= 0.9 for e in range(2, 17)) and gain(30) == 1.0
    w = generate(compose(["experiment=horizon", "n_partners=3000", "timeline.episodes=1", "timeline.snapshots=4",
                          "db=none", "output.report=false"]))
    for day, rows in w["features_panel"].groupby("snapshot_date"):
        assert abs(rows["churn_label"].mean() - 0.2) < 4 * np.sqrt(0.16 / len(rows)), day


def test_the_masters_hazard_reads_the_network_the_tables_show(compose):
    """With one rule on the masters' network health, each master's decision on a snapshot
    date has one of two base churn probabilities, as its panel row's health says: the
    network the churn grows is the table's at every period start (its periods fell 5 days
    before the churn's, and the hazard missed the subs who joined in them)."""
    common = ["experiment=horizon", "n_partners=6000", "db=none", "output.report=false"]
    rules = [f"churn.rules.{name}.weight=0" for name in compose(common).churn.rules]
    world = generate(compose([*common, *rules, "+churn.rules.sick.when='is_master_affiliate and "
                              "subnetwork_avg_health_score < 92'", "+churn.rules.sick.weight=2.0"]))
    truth, panel = world["decision_truth"], world["features_panel"]
    merged = truth.merge(panel[panel["is_master_affiliate"]], left_on=["partner_id", "decision_date"],
                         right_on=["partner_id", "snapshot_date"])
    assert merged["snapshot_date"].nunique() == compose(common).timeline.snapshots
    checked = 0
    for _, g in merged.groupby("snapshot_date"):
        sick = g["subnetwork_avg_health_score"].to_numpy(dtype=float) < 92
        p = g["base_churn_probability"].to_numpy()
        assert np.ptp(p[sick]) < 1e-12 and np.ptp(p[~sick]) < 1e-12
        checked += int(sick.sum())
    assert checked > 100


def test_a_burn_in_longer_than_the_recruitment_window_recruits_every_sub_before_it_left(compose):
    """A sub that left early in a burn-in of 14 periods (420 days, more than
    network.recruited_within_days before the horizon's start) was recruited before it
    left, on or after the burn-in's start; before, its day fell before the schema's range
    and the run stopped with exit 3."""
    world = generate(compose(["experiment=horizon", "n_partners=3000", "timeline.burn_in=14", "db=none",
                              "output.report=false"]))
    net, partners = world["network_relationships"], world["partners"].set_index("partner_id")
    gone = pd.to_datetime(partners.loc[net["sub_affiliate_id"], "churned_at"]).to_numpy()
    recruited = pd.to_datetime(net["recruited_at"]).to_numpy()
    start = pd.Timestamp(compose(["experiment=horizon"]).as_of) - DAY * 30 * (3 + 11 + 14)
    early = ~pd.isna(gone) & (gone < start + 60 * DAY)           # (left in the burn-in's first two periods)
    assert early.sum() > 20
    assert (recruited[early] < gone[early]).all() and (recruited >= start).all()


def test_drawn_columns_move_with_their_declared_persistence(world):
    """traffic_quality_score is beta(5, 2) with persistence 0.8 and no churn rule reads it:
    consecutive snapshots' values have the rank correlation of a bivariate normal with
    correlation 0.8 (6/pi asin(0.4) = 0.786), and every snapshot the declared mean."""
    panel = world["features_panel"]
    dates = _dates(world)
    wide = panel.pivot(index="partner_id", columns="snapshot_date", values="traffic_quality_score")
    a, b = wide[dates[0]], wide[dates[1]]
    both = a.notna() & b.notna()
    rho = a[both].rank().corr(b[both].rank())
    assert abs(rho - 6 / np.pi * np.arcsin(0.4)) < 4 * (1 - rho ** 2) / np.sqrt(both.sum())
    for day in dates:
        x = wide[day].dropna().to_numpy()
        sd = np.sqrt(5 * 2 / (7 ** 2 * 8))
        assert abs(x.mean() - 5 / 7) < 4 * sd / np.sqrt(x.size), day
    assert (a[both] != b[both]).mean() > 0.5           # it moves


def test_tenure_ages_between_snapshots(world):
    panel = world["features_panel"]
    dates = _dates(world)
    wide = panel.pivot(index="partner_id", columns="snapshot_date", values="tenure_months")
    a, b = wide[dates[0]], wide[dates[-1]]
    both = a.notna() & b.notna()
    assert both.sum() > 1000 and ((b[both] - a[both]) == 5).all()    # 150 days later: 5 whole months more


@pytest.mark.slow
def test_every_period_and_type_realizes_its_truth_at_100k(compose):
    """At 100k partners and 12 snapshots: in every period and for every type, the churners
    among the decisions are within 4 SE of the sum of their outcome_probability (its
    exact truth); every snapshot's churn rate is within 4 SE of the target (the second
    block of 65,536 partners is handed the first block's intercepts); and the period that
    closes the first window churns as the two before it."""
    w = generate(compose(["n_partners=100000", "activity=none", "db=none", "output.report=false",
                          "timeline.snapshots=12"]))
    iv = w["interventions"]
    churned, p = (iv["outcome"] == "Churned").to_numpy(), iv["outcome_probability"].to_numpy()
    cells = 0
    for key, rows in iv.groupby(["intervention_date", "intervention_type"], observed=True).indices.items():
        se = np.sqrt((p[rows] * (1 - p[rows])).sum())
        assert abs(churned[rows].sum() - p[rows].sum()) < 4 * se, key
        cells += 1
    assert cells == (12 - 1 + 3) * 3
    for day, rows in w["features_panel"].groupby("snapshot_date"):
        assert abs(rows["churn_label"].mean() - 0.2) < 4 * np.sqrt(0.16 / len(rows)), day
    # The period that closes the first snapshot's window churns as the two before it: their
    # intercept was once round(q x active), q the per-period hazard of 0.20, less than a
    # steady world's periods churn, and it made up the difference (0.072, 0.073, then 0.081)
    per = iv.groupby("intervention_date", observed=True)["outcome"].agg(
        churned=lambda o: int((o == "Churned").sum()), n="size").to_numpy()

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        (c1, n1), (c2, n2) = a.sum(axis=0), b.sum(axis=0)
        p = (c1 + c2) / (n1 + n2)
        return abs(c1 / n1 - c2 / n2) < 4 * np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    assert same(per[2:3], per[:2]), per[:12]
    # and no third of the periods churns apart from the rest: closing every window exactly
    # made c_j + c_(j-1) + c_(j-2) constant, whose period-3 mode chance fed for good
    # (periods 4, 7 and 10 churned 0.072, 3, 6 and 9 0.077: 4.8 SE)
    middle = np.arange(2, 11)
    for r in range(3):
        mode = middle[middle % 3 == r]
        assert same(per[mode], per[np.setdiff1d(middle, mode)]), (r, per[:12])


@pytest.mark.slow
def test_stationary_by_default_a_model_keeps_its_band_three_snapshots_later(compose):
    """The burn-in makes the first snapshot's cohort what every later one is: a LightGBM
    model trained on the first snapshot scores the same AUC (within 4 SE of the difference,
    Hanley-McNeil) and stays calibrated (mean prediction within 4 SE of the churn rate) at
    the second snapshot and three snapshots later."""
    lgb = pytest.importorskip("lightgbm")
    from sklearn.metrics import roc_auc_score

    w = generate(compose(["n_partners=40000", "activity=none", "db=none", "output.report=false",
                          "timeline.snapshots=6"]))
    panel, feats = w["features_panel"], ["login_count_30d", "login_trend_30d", "days_since_last_interaction",
                                         "dashboard_usage_score", "asset_download_count_30d", "revenue_velocity",
                                         "conversion_rate_wow", "traffic_quality_score", "commission_trend_90d",
                                         "payment_delay_flag", "unresolved_ticket_count", "negative_sentiment_score",
                                         "tier_proximity_score", "avg_commission_3m", "commission_volatility",
                                         "tenure_months", "subnetwork_avg_health_score",
                                         "subnetwork_recent_churn_count"]
    dates = _dates(w)
    x = panel[feats].astype(float)
    at = lambda k: (pd.to_datetime(panel["snapshot_date"]) == dates[k]).to_numpy()
    model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, verbose=-1).fit(x[at(0)], panel["churn_label"][at(0)])

    def graded(k):
        y, p = panel["churn_label"][at(k)].to_numpy(), model.predict_proba(x[at(k)])[:, 1]
        a = roc_auc_score(y, p)
        n1, n0 = y.sum(), (~y).sum()
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
        return a, se, p.mean(), y.mean(), np.sqrt(0.16 / y.size)
    a1, se1, _, _, _ = graded(1)
    a4, se4, mean4, rate4, se_rate = graded(4)
    assert abs(a4 - a1) < 4 * np.hypot(se1, se4), (a1, a4)
    assert abs(mean4 - rate4) < 4 * se_rate, (mean4, rate4)
