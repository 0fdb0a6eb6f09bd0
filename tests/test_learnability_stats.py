"""The declared learnability and class means of partners_engineered (issue 12): stats.json
holds each class mean beside its realized value and each feature's AUC alone, report.html
draws them, and a bad declaration is refused with its config path."""
from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import run_cli
from simulator.errors import ConfigError
from simulator.load import load_spec

VELOCITY = ("login_trend_30d", "revenue_velocity", "commission_trend_90d", "conversion_rate_wow")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, compose):
    """A 1,000-partner world with its histories, written as the CLI writes it (in-process)."""
    import pandas as pd

    from simulator.run import run

    out = tmp_path_factory.mktemp("learnability")
    run(compose(["n_partners=1000", "db=none"]), out)
    return (json.loads((out / "stats.json").read_text()), pd.read_csv(out / "partners_engineered.csv"),
            (out / "report.html").read_text())


def test_class_means_are_targets_beside_their_realized_values(small_run):
    stats, table, _ = small_run
    targets = {t["target"]: t for t in stats["targets"] if t["kind"] == "class mean"}
    assert set(targets) == {f"features.class_means.{f}.{c}" for f in VELOCITY for c in ("churned", "stayed")}
    assert targets["features.class_means.revenue_velocity.churned"]["declared"] == -80
    assert targets["features.class_means.conversion_rate_wow.stayed"]["declared_sd"] == 0.015
    for f in VELOCITY:
        for c, value in (("churned", True), ("stayed", False)):
            t = targets[f"features.class_means.{f}.{c}"]
            x = table.loc[table["churn_label"] == value, f].dropna()      # (null: too young to measure)
            assert t["n"] == len(x) > 50 and t["stage"] == "features"
            assert t["realized"] == pytest.approx(x.mean(), abs=1e-6)
            # the miss is the measured-feature rule: 4 standard errors plus a tenth of the declared sd
            tolerance = 4 * x.std(ddof=0) / np.sqrt(len(x)) + 0.1 * t["declared_sd"]
            assert t["miss"] == (abs(x.mean() - t["declared"]) > tolerance)
    assert stats["misses"] == sum(t["miss"] for t in stats["targets"])


def test_each_feature_auc_alone_and_the_declared_band_are_in_realized(small_run):
    stats, table, _ = small_run
    r = stats["realized"]
    features = list(table.columns[1:19])
    assert set(r["feature_auc"]) == set(features) and len(features) == 18
    for f in ("revenue_velocity", "subnetwork_recent_churn_count", "payment_delay_flag"):
        rows = table[f].notna()                          # network features: masters only, the nulls left out
        a = roc_auc_score(table.loc[rows, "churn_label"], table.loc[rows, f].astype(float))
        assert r["feature_auc"][f] == pytest.approx(max(a, 1 - a), abs=1e-4), f
    assert table["subnetwork_recent_churn_count"].isna().mean() > 0.5
    assert r["max_feature_auc"] == max(r["feature_auc"].values())
    assert r["model_auc_band"] == {"min": 0.8, "max": 0.9} and r["feature_auc_max"] == 0.78
    assert 0.5 < r["oracle_auc"] <= 1


def test_the_auc_bounds_are_targets(small_run):
    """The ceiling (the best feature), and per feature its distance from 0.5 against the noise
    band: the declared noise (traffic_quality_score) within it, the rest beyond it. A bound
    is missed when broken by more than 4 standard errors; ``breached`` when broken at all."""
    stats, _, _ = small_run
    r = stats["realized"]
    rows = {t["target"]: t for t in stats["targets"] if t["kind"] == "bound"}
    path = "features.learnability"
    assert set(rows) == {f"{path}.feature_auc_max"} | {
        f"{path}.{'noise' if f == 'traffic_quality_score' else 'signal'}.{f}" for f in r["feature_auc"]}
    top = rows[f"{path}.feature_auc_max"]
    assert top["declared"] == 0.78 and top["realized"] == r["max_feature_auc"]
    for name, t in rows.items():
        f = name.rsplit(".", 1)[1]
        se = stats["standard_errors"]["feature_auc"][f if f in r["feature_auc"] else max(r["feature_auc"],
                                                                                         key=r["feature_auc"].get)]
        if name != top["target"]:
            assert t["declared"] == 0.01 and t["realized"] == pytest.approx(r["feature_auc"][f] - 0.5, abs=1e-9)
        assert t["tolerance"] == pytest.approx(4 * se, rel=1e-5)
        wrong = {"noise": t["realized"] - 0.01, "signal": 0.01 - t["realized"]}.get(name.split(".")[2],
                                                                                      t["realized"] - 0.78)
        assert t["breached"] == (wrong > 0) and t["miss"] == (wrong > 4 * se), t


@pytest.mark.parametrize("override, fragment", [
    ("features.learnability.noise=[traffic_quality]", "features.learnability.noise: 'traffic_quality' is not a "
                                                      "feature of the table"),
    ("features.learnability.noise=[traffic_quality]", "did you mean 'traffic_quality_score'?"),
    ("features.learnability.noise_band=0.7", "features.learnability.noise_band: must be a distance from 0.5"),
])
def test_a_bad_noise_declaration_is_refused(compose, override, fragment):
    from conftest import refusal

    assert fragment in refusal(compose, override)


def _panel(page: str, title: str) -> str:
    """What follows a panel's heading, up to the next one."""
    head = f"<h2>{html.escape(title)}</h2>"
    assert head in page, title
    return page.split(head, 1)[1].split("<h2>", 1)[0]


def test_report_draws_the_aucs_the_oracle_beside_the_band_and_the_scenarios(small_run):
    stats, _, page = small_run
    assert _panel(page, "Each feature's AUC alone").startswith("<img")
    band = _panel(page, "Learnability: the oracle beside the declared band")
    assert band.startswith("<table") and f"{stats['realized']['oracle_auc']:.4g}" in band and "0.80 to 0.90" in band
    assert _panel(page, "Histories by churn scenario").startswith("<img")
    assert re.search(r"oracle AUC \(realized[^<]*\): <b>\d\.\d{3}</b>", page)   # AUCs as AUCs, not percentages


def test_without_histories_the_scenario_panel_is_left_out(compose, small_run):
    from simulator.review.figures import draw

    table = small_run[1].assign(churn_scenario=lambda t: t["churn_scenario"].astype("category"))
    for overrides in (["activity=none"], []):           # no history stage; or its tables not written (large worlds)
        spec = load_spec(compose(["n_partners=1000", *overrides]))
        tables = {spec.table: table, "partners_engineered": table}
        figures = [f for s in spec.stages if s.kind in ("histories", "projection") for f in s.figures(spec, tables)]
        assert "Histories by churn scenario" in [f.heading for f in figures]
        assert "Histories by churn scenario" not in [h for h, _ in draw(figures, spec, tables, {"realized": {}})]

BAD = [
    ("features.learnability.model_auc.min=0.95", "features.learnability.model_auc: min 0.95 is above max 0.9"),
    ("features.learnability.feature_auc_max=1.5",
     "features.learnability.feature_auc_max: must be an AUC in [0.5, 1] (0.5: chance, 1: a perfect ranking), got 1.5"),
    ("features.learnability.model_auc.max=high", "features.learnability.model_auc.max: must be an AUC in [0.5, 1]"),
    ("features.learnability.model_auc=0.85", "features.learnability.model_auc: must be a mapping {min: AUC, max: AUC}"),
    ("+features.learnability.model_auc.mid=0.85", "features.learnability.model_auc.mid: unknown key"),
    ("features.class_means.revenue_velocity.sd.churned=0",
     "features.class_means.revenue_velocity.sd.churned: must be a number > 0, got 0"),
    ("features.class_means.login_trend_30d.stayed=up",
     "features.class_means.login_trend_30d.stayed: must be a number (the declared mean), got 'up'"),
    ("+features.class_means.revenue_velocty={churned: 1, stayed: 0, sd: {churned: 1, stayed: 1}}",
     "features.class_means.revenue_velocty: not a column of partners_engineered"),
    ("+features.class_means.churn_scenario={churned: 1, stayed: 0, sd: {churned: 1, stayed: 1}}",
     "features.class_means.churn_scenario: a class mean needs a numeric column"),
]


@pytest.mark.parametrize("override, fragment", BAD, ids=[b[0][:50] for b in BAD])
def test_a_bad_declaration_is_refused_with_its_path(compose, override, fragment):
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert fragment in str(info.value)


def test_a_bad_learnability_on_the_command_line_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("features.learnability.model_auc.min=0.95", out_dir=out, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "features.learnability.model_auc: min 0.95 is above max 0.9" in proc.stderr
    assert not (out / "stats.json").exists()


def test_a_feature_missing_on_every_fitted_row_scores_finite_without_a_warning():
    """The drift's logistic model (simulator.review.learnability.logistic_scores) fitted on
    rows where a feature is missing everywhere (a tiny world's masters-only feature): the
    feature counts for nothing and every score is finite, with no numpy warning (it warned
    "Mean of empty slice" and gave NaN to the rows that had the feature)."""
    import warnings

    from simulator.review.learnability import logistic_scores

    rng = np.random.default_rng(7)
    x = np.column_stack([rng.standard_normal(200), np.full(200, np.nan)])
    x[150:, 1] = rng.standard_normal(50)                 # only rows not fitted have it
    y = (x[:, 0] + rng.standard_normal(200) > 0).astype(float)
    fit = np.arange(200) < 150
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = logistic_scores(x, y, fit)
    assert np.isfinite(scores).all()
    assert np.corrcoef(scores[fit], x[fit, 0])[0, 1] > 0.9
