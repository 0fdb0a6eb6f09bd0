"""One timeline at 100k partners: every outcome follows its exact truth, the arms'
differences weighted by their propensities are the true effects, and a targeted logging
policy (the default's, and targeted_calls') confounds the naive ones.

Worlds are generated in-process with the drawn features (activity=none, about 3 s each):
the interventions read partners columns only, so histories add nothing here. Tolerances
are 4 standard errors of the realized quantity (a two-sided miss of 6e-5 for a correct
generator); the seed is fixed, so a pass is deterministic.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.run import generate

N = 100_000


@pytest.fixture(scope="module")
def world(compose):
    """The default world (its logging policy targets: calls to the high-value partners)."""
    return generate(compose([f"n_partners={N}", "activity=none", "db=none", "output.report=false"]))


@pytest.fixture(scope="module")
def targeted(compose):
    return generate(compose([f"n_partners={N}", "activity=none", "db=none", "output.report=false",
                             "experiment=targeted_calls"]))


def _rate_matches_truth(churned: np.ndarray, p: np.ndarray) -> bool:
    return abs(churned.mean() - p.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / p.size


def test_every_type_and_effect_row_realizes_its_truth(world):
    iv, partners = world["interventions"], world["partners"].set_index("partner_id")
    p = partners.loc[iv["partner_id"]]
    rows = {"call": np.select([p["avg_commission_3m"] > 10000, p["payment_delay_flag"], p["is_master_affiliate"],
                               p["login_count_30d"] < 3], [0, 1, 2, 3], 4),
            "email": np.select([(p["login_trend_30d"] > -0.5) & (p["login_trend_30d"] < 0),
                                p["unresolved_ticket_count"] > 0, p["tier_proximity_score"] < 0.1], [0, 1, 2], 3),
            "none": np.zeros(len(p), dtype=int)}
    churned = (iv["outcome"] == "Churned").to_numpy()
    checked = 0
    for kind, row in rows.items():
        of_kind = (iv["intervention_type"] == kind).to_numpy()
        for r in np.unique(row[of_kind]):
            sel = of_kind & (row == r)
            assert _rate_matches_truth(churned[sel], iv["outcome_probability"].to_numpy()[sel]), (kind, r)
            checked += 1
    assert checked == 10                       # every row of the table (the seed's nine, the sleeping dogs)


def test_first_decisions_weighted_by_their_propensity_estimate_the_truth(world):
    """The first decisions after the feature date, each arm weighted by 1 / its propensity
    (self-normalized), estimate the cohort's mean truth of each type against none within 4
    standard errors (the delta method's, plus the spread of the truth over the arm)."""
    iv, truth = world["interventions"], world["uplift_truth"].set_index("partner_id")
    first = iv[pd.to_datetime(iv["intervention_date"]) == iv["intervention_date"].min()]
    assert first["partner_id"].is_unique and len(first) == len(truth)
    y = (first["outcome"] == "Churned").to_numpy(float)
    t = truth.loc[first["partner_id"]]
    kind, prop = first["intervention_type"].to_numpy(), first["propensity"].to_numpy()

    def arm(k):
        w = (kind == k) / prop
        m = (w * y).sum() / w.sum()
        return m, np.sqrt(((w * (y - m)) ** 2).sum()) / w.sum()
    m0, se0 = arm("none")
    assert abs(m0 - t["base_churn_probability"].mean()) < 4 * se0
    for k in ("call", "email"):
        m, se = arm(k)
        true = t["effect_" + k].mean()
        spread = t["effect_" + k].std() / np.sqrt((kind == k).sum())
        assert abs((m - m0) - true) < 4 * np.sqrt(se ** 2 + se0 ** 2 + spread ** 2), (k, m - m0, true)
        assert m - m0 < 0


def test_calls_matter_most_for_high_commissions_in_the_truth(world):
    truth = world["uplift_truth"].set_index("partner_id")
    p = world["partners"].set_index("partner_id").loc[truth.index]
    high = p["avg_commission_3m"] > 10000
    default_row = ~high & ~p["payment_delay_flag"] & ~p["is_master_affiliate"]
    assert truth.loc[high, "effect_call"].mean() < truth.loc[default_row, "effect_call"].mean()


def test_the_default_policy_confounds_the_naive_contrast_and_ipw_corrects_it(world):
    """Issue 24 item 5 at 100k: over every decision, the naive difference of the call and
    none arms' churn misses the true mean effect (decision_truth) by more than 4 of its
    standard errors; the self-normalized IPW difference with the written propensities lands
    within 4 of its own (both clustered by partner: simulator.ope.arm_contrast)."""
    from simulator.ope import arm_contrast

    iv, dt = world["interventions"], world["decision_truth"]
    y = (iv["outcome"] == "Churned").to_numpy(float)
    kind = pd.Categorical(iv["intervention_type"], categories=["call", "email", "none"]).codes
    est = arm_contrast(y, kind, iv["propensity"].to_numpy(), 0, 2, pd.factorize(iv["partner_id"])[0])
    true = dt["effect_call"].mean()
    assert abs(est["ipw"] - true) < 4 * est["ipw_se"], (est, true)
    assert abs(est["naive"] - true) > 4 * est["naive_se"], (est, true)
    assert iv["propensity"].between(0.05, 0.95).all()
    # sleeping dogs: a call raises churn for at least 1% of the cohort, by more than a point
    assert (world["uplift_truth"]["effect_call"] > 0.01).mean() >= 0.01
    # a call cuts a decision's churn by less than a quarter on average
    base = dt["base_churn_probability"].to_numpy()
    assert -0.25 < (dt["effect_call"].to_numpy()[base > 0] / base[base > 0]).mean() < 0


def test_inverse_propensity_weighting_recovers_a_targeted_policy(targeted):
    iv, truth = targeted["interventions"], targeted["uplift_truth"].set_index("partner_id")
    first = iv[pd.to_datetime(iv["intervention_date"]) == iv["intervention_date"].min()]
    y = (first["outcome"] == "Churned").to_numpy(float)
    kind, prop = first["intervention_type"].to_numpy(), first["propensity"].to_numpy()
    t = truth.loc[first["partner_id"]]
    call, none = kind == "call", kind == "none"
    assert not np.allclose(prop[call], prop[call][0])                   # the policy is targeted
    true = t["effect_call"].mean()                                      # the cohort's mean truth
    naive = y[call].mean() - y[none].mean()
    ipw = (y * call / prop).mean() - (y * none / prop).mean()
    w = (call / prop) ** 2 + (none / prop) ** 2
    se = np.sqrt((w * y).mean() / len(y))                               # conservative (y in {0, 1})
    assert abs(ipw - true) < 4 * se, (ipw, true, se)
    assert abs(naive - true) > 4 * se, (naive, true, se)                # confounded by who gets calls


def test_every_period_and_type_realizes_its_truth(world):
    """Issue 23 item 6 at 100k: in every period and for every type, the realized churn of the
    decisions' outcome windows is within 4 SE of the sum of their outcome_probability."""
    iv = world["interventions"]
    churned = (iv["outcome"] == "Churned").to_numpy()
    p = iv["outcome_probability"].to_numpy()
    cells = 0
    for (date, kind), rows in iv.groupby(["intervention_date", "intervention_type"], observed=True).indices.items():
        assert _rate_matches_truth(churned[rows], p[rows]), (date, kind, churned[rows].mean(), p[rows].mean())
        cells += 1
    assert cells == 3 * 3                       # three periods of the label window, three types


def test_each_decisions_truth_is_its_outcome_probability(world):
    """decision_truth: the interventions' rows in order; base + the received type's effect is
    the row's outcome_probability to 1e-9; the first decisions are uplift_truth."""
    iv, dt = world["interventions"], world["decision_truth"]
    assert dt["intervention_id"].tolist() == iv["intervention_id"].tolist()
    assert (dt["decision_date"].to_numpy() == iv["intervention_date"].to_numpy()).all()
    got = dt["intervention_type"].astype(str).to_numpy()
    received = dt["base_churn_probability"].to_numpy() + np.choose(
        pd.Index(["call", "email", "none"]).get_indexer(got), [dt[f"effect_{t}"].to_numpy() for t in ("call", "email", "none")])
    assert np.abs(received - iv["outcome_probability"].to_numpy()).max() < 1e-9
    first = dt[dt["decision_date"] == dt["decision_date"].min()].set_index("partner_id")
    truth = world["uplift_truth"].set_index("partner_id")
    cols = ["base_churn_probability", "effect_call", "effect_email", "effect_none"]
    pd.testing.assert_frame_equal(first.loc[truth.index, cols], truth[cols])


def test_contagion_runs_through_the_window(world):
    """A master's hazard at each period's start reads its subs that left before it (in the
    recent_days up to it): recounted from network_relationships and churned_at, the masters
    whose count passes the contagion rule's 2 only after the feature date have a higher
    base probability at that later decision than at their first; a non-master's state never
    moves, so its base is the same at every decision."""
    dt, partners = world["decision_truth"], world["partners"].set_index("partner_id")
    edges = world["network_relationships"]
    gone = partners["churned_at"]
    base = dt.pivot(index="partner_id", columns="decision_date", values="base_churn_probability")
    dates = list(base.columns)
    masters = partners.index[partners["is_master_affiliate"]]
    non_masters = base.index.difference(masters)
    spread = base.loc[non_masters].max(axis=1) - base.loc[non_masters].min(axis=1)
    assert spread.max() < 1e-12
    sub_gone = gone.loc[edges["sub_affiliate_id"]].to_numpy()
    crossed = 0
    for later in dates[1:]:
        recent = (sub_gone <= later) & (sub_gone > later - pd.Timedelta(days=45))
        count = pd.Series(recent).groupby(edges["master_affiliate_id"].to_numpy()).sum()
        at_f = pd.Series((sub_gone <= dates[0]) & (sub_gone > dates[0] - pd.Timedelta(days=45))).groupby(
            edges["master_affiliate_id"].to_numpy()).sum()
        rising = count.index[(count > 2) & (at_f.reindex(count.index) <= 2)].intersection(base.index)
        rising = rising[base.loc[rising, later].notna()]
        assert (base.loc[rising, later] > base.loc[rising, dates[0]]).all()
        crossed += len(rising)
    assert crossed > 0


def test_the_panel_is_the_model_ready_table_at_each_snapshot(world):
    """features_panel: partners_engineered's rows stamped with their snapshot date (the
    feature date); every row's partner joined on or before it and had not left; its label
    is churn in the 90 days after it, from churned_at."""
    panel, eng, partners = world["features_panel"], world["partners_engineered"], world["partners"]
    assert list(panel.columns) == [eng.columns[0], "snapshot_date", *eng.columns[1:]]
    pd.testing.assert_frame_equal(panel.drop(columns="snapshot_date"), eng)
    snap = pd.Timestamp("2025-10-03")
    assert (panel["snapshot_date"] == snap).all()
    p = partners.set_index("partner_id").loc[panel["partner_id"]]
    assert (p["created_at"] <= snap).all() and not (p["churned_at"] <= snap).any()
    within = (p["churned_at"] > snap) & (p["churned_at"] <= snap + pd.Timedelta(days=90))
    assert (within.to_numpy() == panel["churn_label"].to_numpy()).all()


def test_each_decision_reads_the_state_at_its_period_start(compose):
    """A logging policy that calls every master with more than 2 subs gone in the 45 days
    before the decision decides each period on that period's state: recounted from the
    tables at each decision date, exactly those masters get a call with propensity 1, and
    every other row keeps the mix's share; the decisions' truth still holds to 1e-9 (the
    run's invariants)."""
    world = generate(compose(["n_partners=20000", "activity=none", "db=none", "output.report=false",
                              "+interventions.policy=[{when: 'is_master_affiliate and "
                              "subnetwork_recent_churn_count > 2', mix: {call: 1.0, email: 0.0, none: 0.0}}]"]))
    iv, partners, edges = world["interventions"], world["partners"].set_index("partner_id"), world["network_relationships"]
    sub_gone = partners["churned_at"].loc[edges["sub_affiliate_id"]].to_numpy()
    hot = []
    for date in np.sort(iv["intervention_date"].unique()):
        recent = (sub_gone <= date) & (sub_gone > date - np.timedelta64(45, "D"))
        count = pd.Series(recent).groupby(edges["master_affiliate_id"].to_numpy()).sum()
        hot += [(m, date) for m in count.index[count > 2]]
    targeted = pd.MultiIndex.from_arrays([iv["partner_id"], iv["intervention_date"]]).isin(hot)
    later = (iv["intervention_date"] > iv["intervention_date"].min()).to_numpy()
    first_hot = set(iv.loc[targeted & ~later, "partner_id"])
    assert (targeted & later & ~iv["partner_id"].isin(first_hot).to_numpy()).any()   # crossed in the window
    assert (iv.loc[targeted, "intervention_type"] == "call").all() and (iv.loc[targeted, "propensity"] == 1.0).all()
    shares = {"call": 0.15, "email": 0.45, "none": 0.40}
    assert np.allclose(iv.loc[~targeted, "propensity"], iv.loc[~targeted, "intervention_type"].map(shares).astype(float))


# ------------------------------------------------------------------ the run's invariants

@pytest.fixture(scope="module")
def small(compose):
    from simulator.load import load_spec

    spec = load_spec(compose(["n_partners=2000", "db=none", "output.report=false"]))
    return spec, generate(spec)


def _break(tables, name, fn):
    out = {k: v.copy() for k, v in tables.items()}
    fn(out[name], out)
    return out


def _shift(col, days):
    def fn(t, _):
        t.loc[t.index[0], col] = t.loc[t.index[0], col] + pd.Timedelta(days=days)
    return fn


def _first_churner(t, tables):
    """The first partner that churned in the label window, and its row."""
    p = tables["partners"]
    return p.index[p["churned_at"] > pd.Timestamp("2025-10-03")][0]


BREAKS = {
    "an activity day before joining": ("activity_daily", _shift("activity_date", -20000), "activity_daily.activity_date"),
    "a commission after the observation end": ("commissions_daily", _shift("commission_date", 200), "commissions_daily"),
    "a ticket before joining": ("support_tickets", _shift("opened_at", -4000), "support_tickets.opened_at"),
    "an outcome flipped": ("interventions", lambda t, _: t.__setitem__(
        "outcome", t["outcome"].where(t.index != t.index[0], "Churned" if t["outcome"].iloc[0] == "Retained"
                                      else "Retained")), "outcome Churned exactly when"),
    "a label without a churn date": ("partners", lambda t, tb: t.__setitem__(
        "churned_at", t["churned_at"].where(t.index != _first_churner(t, tb), pd.NaT)), "churn_label is true exactly"),
    "an intervention after the partner churned": ("interventions", lambda t, tb: t.__setitem__(
        "intervention_date", t["intervention_date"].where(
            t["partner_id"] != tb["partners"].loc[_first_churner(t, tb), "partner_id"],
            pd.Timestamp("2025-12-31"))), "dated before the partner churned"),
    "a second Churned outcome": ("interventions", lambda t, _: t.__setitem__(
        "outcome", t["outcome"].where(t.index != t.index[(                    # the row before a churn, same partner
            (t["outcome"] == "Churned") & (t["partner_id"] == t["partner_id"].shift())).to_numpy().argmax() - 1],
            "Churned")), "at most one Churned"),
    "a churner called Healthy": ("partners", lambda t, tb: t.__setitem__(
        "churn_scenario", t["churn_scenario"].where(t.index != _first_churner(t, tb), "Healthy")),
        "churn_scenario is Healthy exactly"),
    "a payout before joining": ("payouts", _shift("due_date", -20000), "payouts.due_date"),
    "a recruitment after the sub left": ("network_relationships", _shift("recruited_at", 3000), "recruited before"),
    "a master's health that the edges do not give": ("partners", lambda t, _: t.__setitem__(
        "subnetwork_avg_health_score", t["subnetwork_avg_health_score"] * 0.5), "subnetwork_avg_health_score recomputed"),
}


@pytest.mark.parametrize("what", BREAKS)
def test_each_invariant_catches_its_violation(small, what):
    from simulator import invariants

    spec, tables = small
    assert all(r["violations"] == 0 for r in invariants.check(spec, tables))
    name, fn, fragment = BREAKS[what]
    broken = invariants.check(spec, _break(tables, name, fn))
    hit = [r for r in broken if r["violations"]]
    assert any(fragment in r["invariant"] for r in hit), (hit, fragment)     # (a break may show in more than one)


def test_a_violation_fails_validation_before_publishing(small):
    from simulator.schemas import ValidationError, validate_tables

    spec, tables = small
    name, fn, _ = BREAKS["an outcome flipped"]
    with pytest.raises(ValidationError, match="the world contradicts itself"):
        validate_tables(spec, _break(tables, name, fn))
