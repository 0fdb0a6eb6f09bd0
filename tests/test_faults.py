"""Warehouse faults (issue "Realism", item 3, its missing values): the model-ready tables lose
a declared share of a feature's values, the truth stays clean, and a bad declaration is
refused with its config path."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import refusal, run_cli


def test_the_declared_share_is_lost_and_counted(default_run):
    """Each entry of faults.missing is a stats.json target: the share of partners_engineered's
    eligible rows (where holds on the true state, a value was there) that lost the value,
    within 4 standard errors of the declared share; realized.faults counts them."""
    stats = json.loads((default_run.dir / "stats.json").read_text())
    table = default_run.parquet("partners_engineered")
    partners = default_run.parquet("partners").set_index("partner_id").loc[table["partner_id"]]
    targets = {t["target"]: t for t in stats["targets"] if t["target"].startswith("faults.")}
    assert set(targets) == {"faults.missing.dashboard_usage_score", "faults.missing.traffic_quality_score"}
    young = (partners["tenure_months"] < 6).to_numpy()
    for column, eligible, share in (("dashboard_usage_score", np.ones(len(table), dtype=bool), 0.02),
                                    ("traffic_quality_score", young, 0.1)):
        t = targets[f"faults.missing.{column}"]
        lost = table[column].isna().to_numpy()
        assert not lost[~eligible].any()                            # only where the condition holds
        assert t["n"] == eligible.sum() and t["declared"] == share
        assert t["realized"] == pytest.approx(lost[eligible].mean(), abs=1e-6)
        assert abs(lost[eligible].mean() - share) < 4 * np.sqrt(share * (1 - share) / eligible.sum())
        assert stats["realized"]["faults"]["missing"][column] == {
            "rows": int(eligible.sum()), "lost": int(lost.sum()),
            "where": None if column == "dashboard_usage_score" else "tenure_months < 6"}
    assert 0.005 <= table["dashboard_usage_score"].isna().mean() <= 0.05      # the modest level


@pytest.mark.slow
def test_the_truth_stays_clean_and_none_gives_clean_tables(tmp_path):
    """A horizon with and without faults: the partners table, the labels and every truth table
    are byte-identical; the panel differs only in the cells a fault lost (null with faults,
    the true value without), each in a row its condition holds for at that snapshot, and
    the panel's last snapshot is partners_engineered."""
    common = ("n_partners=1500", "experiment=horizon", "db=none", "output.report=false")
    run_cli(*common, out_dir=tmp_path / "faulty")
    run_cli(*common, "faults=none", out_dir=tmp_path / "clean")
    for name in ("partners", "interventions", "decision_truth", "uplift_truth", "snapshot_truth"):
        assert (tmp_path / "faulty" / f"{name}.parquet").read_bytes() == \
            (tmp_path / "clean" / f"{name}.parquet").read_bytes(), name
    faulty, clean = (pd.read_parquet(tmp_path / d / "features_panel.parquet") for d in ("faulty", "clean"))
    assert faulty[["partner_id", "snapshot_date", "churn_label"]].equals(clean[["partner_id", "snapshot_date",
                                                                                "churn_label"]])
    for column in faulty.columns[2:]:
        lost = faulty[column].isna() & clean[column].notna()
        same = faulty[column].notna()
        assert faulty.loc[same, column].equals(clean.loc[same, column].astype(faulty[column].dtype)), column
        if column not in ("dashboard_usage_score", "traffic_quality_score"):
            assert not lost.any(), column
    lost = faulty["traffic_quality_score"].isna() & clean["traffic_quality_score"].notna()
    assert lost.any() and (clean.loc[lost, "tenure_months"] < 6).all()     # at that snapshot's tenure
    dashboard = faulty["dashboard_usage_score"].isna().groupby(faulty["snapshot_date"]).mean()
    assert len(dashboard) == 12 and dashboard.between(0.0, 0.06).all() and dashboard.mean() > 0.01
    last = faulty[faulty["snapshot_date"] == faulty["snapshot_date"].max()].drop(columns="snapshot_date")
    engineered = pd.read_parquet(tmp_path / "faulty" / "partners_engineered.parquet")
    pd.testing.assert_frame_equal(last.reset_index(drop=True), engineered, check_dtype=False)


@pytest.mark.parametrize("override, fragment", [
    ("+faults.missing.dashboard_usage={share: 0.1}",
     "faults.missing.dashboard_usage: 'dashboard_usage' is not a feature of a model-ready table"),
    ("+faults.late={}", "faults.late: not built yet"),
    ("+faults.lost={}", "faults.lost: unknown fault kind (known: missing)"),
    ("faults.missing.dashboard_usage_score.share=1.5", "faults.missing.dashboard_usage_score.share: must be a "
                                                       "probability in [0, 1], got 1.5"),
    ("faults.missing.traffic_quality_score.where='tenure < 1'",
     "faults.missing.traffic_quality_score.where: unknown column 'tenure'"),
    ("faults.missing.traffic_quality_score.where='tenure_months + 1'",
     "faults.missing.traffic_quality_score.where"),
    ("+faults.missing.dashboard_usage_score.rate=0.1", "faults.missing.dashboard_usage_score.rate: unknown key"),
])
def test_a_bad_fault_is_refused(compose, override, fragment):
    assert fragment in refusal(compose, override)
