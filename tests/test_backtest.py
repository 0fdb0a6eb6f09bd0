"""Backtests (issue "Evaluate over time"): predictions with snapshot_date graded per snapshot
against features_panel's labels and snapshot_truth's oracles, with the AUC's stability;
the oracle known at the feature date beside the oracle on the world's path.

The run is a horizon of 5 snapshots with drawn features (activity=none), written by the
CLI; every figure evaluate reports is recomputed here from the run's files with
independent code (scikit-learn's AUC).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import run_cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("horizon") / "run"
    run_cli("n_partners=4000", "activity=none", "db=none", "output.report=false", "timeline.snapshots=5",
            out_dir=out)
    return out


def _grade(run, tmp_path, frame, *args) -> tuple[int, dict | None]:
    from simulator.evaluate import main

    path = tmp_path / "pred.csv"
    frame.to_csv(path, index=False)
    code = main([str(run), "--predictions", str(path), "--out", str(tmp_path / "ev"), "--format", "json", *args])
    ev = tmp_path / "ev" / "evaluation.json"
    return code, json.loads(ev.read_text()) if code == 0 else None


def _model(panel: pd.DataFrame) -> np.ndarray:
    """A churn score trained on nothing: a few of the features' signs (a fixed, honest model)."""
    z = (panel["negative_sentiment_score"] * 2 - panel["login_count_30d"] / 15 - panel["tier_proximity_score"].clip(-1, 1)
         + panel["days_since_last_interaction"] / 20)
    return 1 / (1 + np.exp(-(z.to_numpy() - 1.5)))


def test_every_snapshot_is_graded_against_its_own_labels_and_truth(run, tmp_path):
    panel = pd.read_parquet(run / "features_panel.parquet")
    truth = pd.read_parquet(run / "snapshot_truth.parquet")
    predictions = pd.DataFrame({"partner_id": panel["partner_id"], "snapshot_date": panel["snapshot_date"],
                                "churn_probability": _model(panel)})
    code, ev = _grade(run, tmp_path, predictions)
    assert code == 0
    assert list(ev["by_snapshot"]) == sorted(str(d.date()) for d in pd.to_datetime(panel["snapshot_date"].unique()))
    merged = panel.assign(p=predictions["churn_probability"]).merge(truth, on=["partner_id", "snapshot_date"])
    aucs = []
    for day, rows in merged.groupby("snapshot_date"):
        got = ev["by_snapshot"][str(pd.Timestamp(day).date())]
        assert got["n"] == len(rows)
        assert got["auc"] == pytest.approx(roc_auc_score(rows["churn_label"], rows["p"]), abs=1e-12)
        assert got["oracle_auc"] == pytest.approx(roc_auc_score(rows["churn_label"], rows["churn_probability_on_path"]),
                                                  abs=1e-12)
        assert got["oracle_auc_before_decisions"] == pytest.approx(
            roc_auc_score(rows["churn_label"], rows["churn_probability_before_decisions"]), abs=1e-12)
        assert got["brier"] == pytest.approx(((rows["p"] - rows["churn_label"]) ** 2).mean(), abs=1e-12)
        aucs.append(got["auc"])
    assert ev["stability"]["auc_range"] == pytest.approx(max(aucs) - min(aucs), abs=1e-12)
    assert ev["stability"]["auc_trend_per_snapshot"] == pytest.approx(np.polyfit(range(len(aucs)), aucs, 1)[0],
                                                                      abs=1e-12)
    # the feature date's rows are graded as a file without the column would be
    assert ev["churn_model"]["auc"] == pytest.approx(aucs[-1], abs=1e-12)


def test_the_oracle_before_the_decisions_is_calibrated_and_below_the_path_oracle(run):
    """Before the window's decisions, the label's probability is its expectation: the mean
    of each snapshot's probabilities is its churn rate within 4 SE; knowing the decisions
    too (the path) ranks better."""
    panel = pd.read_parquet(run / "features_panel.parquet")
    truth = pd.read_parquet(run / "snapshot_truth.parquet")
    merged = panel.merge(truth, on=["partner_id", "snapshot_date"])
    assert len(merged) == len(panel) == len(truth)
    for day, rows in merged.groupby("snapshot_date"):
        p = rows["churn_probability_before_decisions"].to_numpy()
        assert abs(rows["churn_label"].mean() - p.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / len(p), day
        assert roc_auc_score(rows["churn_label"], p) < roc_auc_score(rows["churn_label"],
                                                                     rows["churn_probability_on_path"]), day


def test_a_backtest_refuses_what_is_not_a_snapshot_row(run, tmp_path, capsys):
    panel = pd.read_parquet(run / "features_panel.parquet")
    first = panel[panel["snapshot_date"] == panel["snapshot_date"].min()]
    late = panel[~panel["partner_id"].isin(first["partner_id"])].iloc[:1]      # joined after the first snapshot
    rows = pd.DataFrame({"partner_id": [first["partner_id"].iloc[0], late["partner_id"].iloc[0],
                                        first["partner_id"].iloc[1]],
                         "snapshot_date": [first["snapshot_date"].iloc[0], first["snapshot_date"].iloc[0],
                                           "2020-01-01"],
                         "churn_probability": [0.5, 0.5, 0.5]})
    code, _ = _grade(run, tmp_path, rows)
    err = capsys.readouterr().err
    assert code == 2
    assert "row 2, column partner_id" in err and "is not a partner active at that snapshot" in err
    assert "row 3, column snapshot_date: '2020-01-01' is not a snapshot of this run" in err
    two = pd.DataFrame({"partner_id": [first["partner_id"].iloc[0]] * 2,
                        "snapshot_date": sorted(panel["snapshot_date"].unique())[:2], "churn_probability": 0.5})
    code, _ = _grade(run, tmp_path, two, "--record")
    assert code == 2 and "--record records one snapshot at a time" in capsys.readouterr().err


def test_without_snapshot_date_the_oracle_before_the_decisions_sits_beside_the_path_oracle(run, tmp_path):
    engineered = pd.read_parquet(run / "partners_engineered.parquet")
    code, ev = _grade(run, tmp_path, pd.DataFrame({"partner_id": engineered["partner_id"],
                                                   "churn_probability": _model(engineered)}))
    assert code == 0 and "by_snapshot" not in ev
    truth = pd.read_parquet(run / "snapshot_truth.parquet")
    last = truth[truth["snapshot_date"] == truth["snapshot_date"].max()].set_index("partner_id").loc[
        engineered["partner_id"]]
    assert ev["churn_model"]["oracle_auc_before_decisions"] == pytest.approx(
        roc_auc_score(engineered["churn_label"], last["churn_probability_before_decisions"]), abs=1e-12)
    assert ev["churn_model"]["oracle_auc_before_decisions"] < ev["churn_model"]["oracle_auc"]


@pytest.mark.parametrize("db", ["sqlite", "duckdb", pytest.param("postgres", marks=pytest.mark.slow)])
def test_the_learning_loop_records_a_snapshot_and_sees_it_at_the_next(tmp_path, db, request):
    """Predictions of the second snapshot filed in the run's database (predicted_at: that
    snapshot's date, one model version) and recorded: each outcome drawn from that period's
    decision_truth under the recommended type, recorded 30 days later, on the next snapshot's
    date, where the loop reads it; the model's AUC graded against that snapshot's labels."""
    import sqlite3

    out = tmp_path / "run"
    url = request.getfixturevalue("postgres_url") if db == "postgres" else None
    run_cli("n_partners=3000", "activity=none", f"db={db}", *([f"db.url={url}"] if url else []),
            "output.report=false", "timeline.snapshots=3", out_dir=out)
    panel = pd.read_parquet(out / "features_panel.parquet")
    dates = sorted(pd.to_datetime(panel["snapshot_date"].unique()))
    rows = panel[pd.to_datetime(panel["snapshot_date"]) == dates[1]]
    pred = pd.DataFrame({"partner_id": rows["partner_id"].to_numpy(), "recommended_intervention": "call",
                         "churn_probability": _model(rows), "model_version": "loop-1",
                         "predicted_at": str(dates[1])})
    if db == "sqlite":
        with sqlite3.connect(out / "world.sqlite") as conn:
            pred.to_sql("predictions", conn, if_exists="append", index=False)
    elif db == "postgres":
        from sqlalchemy import create_engine

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM predictions")          # (the session's server is shared)
            pred.assign(predicted_at=pd.Timestamp(dates[1])).to_sql("predictions", conn, if_exists="append",
                                                                    index=False)
    else:
        import duckdb

        with duckdb.connect(str(out / "world.duckdb")) as conn:
            conn.register("p", pred)
            conn.execute("INSERT INTO predictions (partner_id, recommended_intervention, churn_probability, "
                         "model_version, predicted_at) SELECT partner_id, recommended_intervention, "
                         "churn_probability, model_version, CAST(predicted_at AS TIMESTAMP) FROM p")
    from simulator.evaluate import main

    assert main([str(out), "--from-db", "--model-version", "loop-1", "--record", "--out", str(tmp_path / "ev"),
                 "--format", "json", *(["--db-url", url] if url else [])]) == 0
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert list(ev["by_snapshot"]) == [str(dates[1].date())] and ev["recorded"]["rows"] == len(rows)
    query = "SELECT partner_id, actual_intervention, actual_outcome, outcome_recorded_at FROM predictions"
    if db == "sqlite":
        with sqlite3.connect(out / "world.sqlite") as conn:
            got = pd.read_sql(query, conn)
    elif db == "postgres":
        with engine.connect() as conn:
            got = pd.read_sql(query, conn)
    else:
        import duckdb

        with duckdb.connect(str(out / "world.duckdb")) as conn:
            got = conn.execute(query).df()
    assert (pd.to_datetime(got["outcome_recorded_at"]) == dates[2]).all()          # seen at the next snapshot
    assert got["actual_intervention"].eq("call").all() and len(got) == len(rows)
    truth = pd.read_parquet(out / "decision_truth.parquet")
    at = truth[pd.to_datetime(truth["decision_date"]) == dates[1]].set_index("partner_id").loc[got["partner_id"]]
    p = (at["base_churn_probability"] + at["effect_call"]).to_numpy()
    churned = (got["actual_outcome"] == "Churned").to_numpy()
    assert abs(churned.sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())


def test_the_example_backtest_trains_early_and_is_graded_on_every_snapshot(run, tmp_path):
    """examples/backtest.py on the 5-snapshot run: trained on the first 2, every snapshot
    scored; evaluate grades all five, and the model ranks the three it never saw (AUC well
    above chance: the features carry the risk, the label is never among them)."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("backtest_example", ROOT / "examples" / "backtest.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)                   # (in process: the suite's time is counted)
    predictions = pd.read_parquet(example.backtest(run, train=2))
    code, ev = _grade(run, tmp_path, predictions)
    assert code == 0 and ev["stability"]["snapshots"] == 5
    unseen = list(ev["by_snapshot"].values())[2:]
    assert all(m["auc"] > 0.65 for m in unseen), [m["auc"] for m in unseen]
    assert all(m["auc"] < m["oracle_auc_before_decisions"] for m in unseen)
