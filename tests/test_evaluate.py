"""python -m simulator.evaluate: a model graded against the run's exact truth, and the
learning loop played forward (issue "Grade a model against the truth")."""
from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import uuid

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli

TYPES = ["call", "email", "none"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("graded") / "run"
    run_cli("n_partners=2000", out_dir=out)
    truth = pd.read_parquet(out / "uplift_truth.parquet")
    partners = pd.read_parquet(out / "partners.parquet").set_index("partner_id").loc[truth["partner_id"]]
    return out, truth, partners


def _evaluate(run_dir, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "simulator.evaluate", str(run_dir), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env={"PYTHONPATH": str(ROOT),
                                                                                      "PATH": "/usr/bin:/bin"})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _p(truth):
    return np.stack([truth["base_churn_probability"] + truth[f"effect_{t}"] for t in TYPES], axis=1)


def _write(tmp_path, frame, name="pred.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return path


def _graded(run, tmp_path, frame, *args):
    """In process (the CLI's own main; the subprocess tests below cover the command)."""
    from simulator.evaluate import main

    out, _, _ = run
    assert main([str(out), "--predictions", str(_write(tmp_path, frame)), "--out", str(tmp_path / "ev"),
                 *map(str, args)]) == 0
    return json.loads((tmp_path / "ev" / "evaluation.json").read_text())


def _policy(result, name):
    return next(r for r in result["policies"] if r["name"] == name)


def test_the_oracle_policy_has_no_regret_and_none_expects_the_base_churn(run, tmp_path):
    _, truth, _ = run
    best = np.array(TYPES)[_p(truth).argmin(axis=1)]
    result = _graded(run, tmp_path, pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": best}))
    assert abs(result["regret"]) < 1e-9
    assert abs(_policy(result, "none")["expected_churners"] - truth["base_churn_probability"].sum()) < 1e-9
    names = [r["name"] for r in result["policies"]]
    assert names == ["submitted", "none", "logging", "all_call", "all_email", "oracle"]
    assert _policy(result, "oracle")["expected_churners"] <= min(r["expected_churners"] for r in result["policies"])


def test_a_random_policy_with_the_logging_shares_scores_like_logging(run, tmp_path):
    """The default logging policy targets: 70/25/5 above 3,000 a month, else 5/45/50 below 5
    logins, else the mix 15/45/40, on the partner's state at the feature date. A policy drawn
    with each partner's shares expects the logging policy's churners up to its sampling error
    (4 SD of the sum of independent per-partner choices)."""
    _, truth, partners = run
    high = (partners["avg_commission_3m"] > 3000).to_numpy()[:, None]
    quiet = (partners["login_count_30d"] < 5).to_numpy()[:, None]
    shares = np.where(high, [0.7, 0.25, 0.05], np.where(quiet, [0.05, 0.45, 0.5], [0.15, 0.45, 0.40]))
    u = np.random.default_rng(7).random(len(truth))[:, None]
    drawn = (u > shares.cumsum(axis=1)).sum(axis=1)
    result = _graded(run, tmp_path, pd.DataFrame({"partner_id": truth["partner_id"],
                                                  "recommended_intervention": np.array(TYPES)[drawn]}))
    p = _p(truth).to_numpy() if hasattr(_p(truth), "to_numpy") else _p(truth)
    sd = np.sqrt(((p ** 2 * shares).sum(axis=1) - (p * shares).sum(axis=1) ** 2).sum())
    diff = _policy(result, "submitted")["expected_churners"] - _policy(result, "logging")["expected_churners"]
    assert abs(diff) < 4 * sd, (diff, sd)
    assert abs(_policy(result, "logging")["expected_churners"] - (p * shares).sum()) < 1e-9


def test_a_perfect_uplift_ranking_scores_the_oracles_qini(run, tmp_path):
    _, truth, partners = run
    p = _p(truth)
    frame = pd.DataFrame({"partner_id": truth["partner_id"], "uplift_score": p[:, 2] - p.min(axis=1),
                          "churn_probability": partners["true_churn_probability"].to_numpy()})
    result = _graded(run, tmp_path, frame)
    assert abs(result["uplift_model"]["qini"] - 1) < 1e-12 and result["uplift_model"]["spearman"] > 0.999
    noisy = frame.assign(uplift_score=frame["uplift_score"] + np.random.default_rng(0).normal(0, 0.1, len(frame)))
    assert _graded(run, tmp_path, noisy)["uplift_model"]["qini"] < 1
    churn = result["churn_model"]                  # the true probability is the oracle
    assert churn["auc"] == churn["oracle_auc"] and churn["brier_vs_true_probability"] == 0
    assert len(churn["calibration"]) == 10
    assert (tmp_path / "ev" / "evaluation.html").read_text().count("data:image/svg+xml") == 2   # calibration, Qini


def test_the_page_shows_tables_and_the_oracles_qini_curve_beside_the_models(run, tmp_path):
    _, truth, partners = run
    p = _p(truth)
    noisy = p[:, 2] - p.min(axis=1) + np.random.default_rng(1).normal(0, 0.05, len(truth))
    result = _graded(run, tmp_path, pd.DataFrame({"partner_id": truth["partner_id"], "uplift_score": noisy,
                                                  "churn_probability": partners["true_churn_probability"].to_numpy()}))
    u = result["uplift_model"]
    # the oracle's curve: the true benefit ranked by itself, the Qini's perfect ranking
    benefit = np.sort(p[:, 2] - p.min(axis=1))[::-1]
    assert [c["treated"] for c in u["oracle_curve"]] == [c["treated"] for c in u["curve"]]
    assert [c["churn_prevented"] for c in u["oracle_curve"]] == pytest.approx(
        [benefit[:c["treated"]].sum() for c in u["curve"]], abs=1e-9)
    assert all(o["churn_prevented"] >= m["churn_prevented"] - 1e-9 for o, m in zip(u["oracle_curve"], u["curve"]))
    assert u["qini"] < 1
    page = (tmp_path / "ev" / "evaluation.html").read_text()
    assert "<pre>" not in page and page.count("<table>") == 4          # churn, calibration, uplift, policies
    assert "<td>oracle</td>" in page and "<th class='n'>mean true probability</th>" in page
    qini = page.split("the Qini curves of the model and the oracle</h2>", 1)[1].split("'>", 1)[0]
    svg = base64.b64decode(qini.split("base64,", 1)[1]).decode()
    assert "oracle: the true benefit" in svg and "model (Qini" in svg


def test_an_empty_recommendation_column_is_the_control_without_a_warning(run, tmp_path):
    """A recommended_intervention column left empty reads as float; each empty cell is the
    control (none), with no warning on stderr (pandas warned that filling a float column
    with text will raise)."""
    import warnings

    _, truth, _ = run
    frame = pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": np.nan})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = _graded(run, tmp_path, frame)
    assert _policy(result, "submitted")["expected_churners"] == _policy(result, "none")["expected_churners"]


def test_a_budget_caps_the_cost_of_the_oracle_and_of_the_submitted_policy(run, tmp_path):
    _, truth, _ = run
    frame = pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "call",
                          "uplift_score": np.arange(len(truth), dtype=float)})
    free = _graded(run, tmp_path, frame)
    capped = _graded(run, tmp_path, frame, "--budget", 5000)
    assert _policy(capped, "oracle")["cost"] <= 5000 and _policy(capped, "submitted")["cost"] <= 5000
    assert _policy(free, "oracle")["expected_churners"] <= _policy(capped, "oracle")["expected_churners"] \
        <= _policy(capped, "none")["expected_churners"]
    assert _policy(free, "all_call")["cost"] == 25.0 * len(truth)      # interventions.costs
    # the budgeted oracle beats every listed policy that fits the same budget (all_email does)
    fitting = [r for r in capped["policies"] if r["within_budget"] and r["name"] != "oracle"]
    assert any(r["name"] == "all_email" for r in fitting)
    assert all(_policy(capped, "oracle")["expected_churners"] <= r["expected_churners"] + 1e-9 for r in fitting)


def test_record_plays_the_window_forward_through_sqlite(run, tmp_path):
    out, truth, _ = run
    pred = pd.DataFrame({"prediction_id": [str(uuid.UUID(int=i)) for i in range(len(truth))],
                         "partner_id": truth["partner_id"], "recommended_intervention": "email",
                         "churn_probability": 0.2, "model_version": "v1", "predicted_at": "2025-10-03 00:00:00"})
    with sqlite3.connect(out / "world.sqlite") as conn:
        conn.execute("DELETE FROM predictions")
        pred.to_sql("predictions", conn, if_exists="append", index=False)
    _evaluate(out, "--from-db", "--record", "--out", tmp_path / "ev")
    with sqlite3.connect(out / "world.sqlite") as conn:
        db = pd.read_sql("SELECT * FROM predictions ORDER BY partner_id", conn)
    assert db["actual_intervention"].eq("email").all() and db["actual_outcome"].isin(["Churned", "Retained"]).all()
    assert (pd.to_datetime(db["outcome_recorded_at"]) == pd.Timestamp("2025-11-02")).all()   # + 30 days
    recorded = pd.read_csv(tmp_path / "ev" / "predictions_outcomes.csv").sort_values("partner_id")
    assert (recorded["actual_outcome"].to_numpy() == db["actual_outcome"].to_numpy()).all()
    # the outcomes follow P(Churned | do(email)) (4 SD of a sum of Bernoullis)
    p = (truth["base_churn_probability"] + truth["effect_email"]).to_numpy()
    assert abs((db["actual_outcome"] == "Churned").sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    again = _evaluate(out, "--from-db", "--record", "--out", tmp_path / "ev", check=False)
    assert again.returncode == 2 and "model_version 'v1' is already recorded" in again.stderr
    _evaluate(out, "--from-db", "--record", "--replace", "--out", tmp_path / "ev2")
    replayed = pd.read_csv(tmp_path / "ev2" / "predictions_outcomes.csv").sort_values("partner_id")
    assert (replayed["actual_outcome"].to_numpy() == recorded["actual_outcome"].to_numpy()).all()   # same stream


def test_json_format_prints_the_json(run, tmp_path):
    out, truth, _ = run
    path = _write(tmp_path, pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "none"}),
                  "p.parquet")
    proc = _evaluate(out, "--predictions", path, "--out", tmp_path / "j", "--format", "json")
    printed = json.loads(proc.stdout)
    assert printed == json.loads((tmp_path / "j" / "evaluation.json").read_text())
    assert (tmp_path / "j" / "evaluation.md").read_text().startswith("# Evaluation against the truth")
    page = (tmp_path / "j" / "evaluation.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "regret" in page.lower()


def test_predictions_for_part_of_the_cohort_say_so(run, tmp_path):
    """A test split's predictions are graded over those partners, and every output says how
    many of the cohort's they are; the whole cohort's say nothing of it."""
    from simulator.evaluate import main

    out, truth, _ = run
    part = truth.sample(frac=0.3, random_state=0)
    result = _graded(run, tmp_path, pd.DataFrame({"partner_id": part["partner_id"], "churn_probability": 0.2}))
    assert result["run"]["predictions"] == len(part) and result["run"]["cohort"] == len(truth)
    said = f"The predictions cover {len(part):,} of the cohort's {len(truth):,} partners (30.0%)"
    assert said in (tmp_path / "ev" / "evaluation.md").read_text()
    assert said.replace("'", "&#x27;") in (tmp_path / "ev" / "evaluation.html").read_text()
    whole = pd.DataFrame({"partner_id": truth["partner_id"], "churn_probability": 0.2})
    assert main([str(out), "--predictions", str(_write(tmp_path, whole, "all.csv")), "--out", str(tmp_path / "all")]) == 0
    assert "The predictions cover" not in (tmp_path / "all" / "evaluation.md").read_text()


@pytest.mark.parametrize("change, fragment", [
    (lambda f: f.assign(partner_id=["P99999999"] + f["partner_id"].tolist()[1:]),
     "pred.csv row 1, column partner_id: 'P99999999' is not a partner of this run's cohort"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "column partner_id: 'P00001' appears twice"),
    (lambda f: f.assign(recommended_intervention="sms"),
     "pred.csv row 1, column recommended_intervention: 'sms' is not"),
    (lambda f: f.assign(churn_probability=1.5), "pred.csv row 1, column churn_probability: 1.5 is not a probability"),
    (lambda f: f.drop(columns="partner_id"), "pred.csv: no partner_id column (the required key"),
])
def test_bad_predictions_are_refused_with_row_and_column(run, tmp_path, change, fragment):
    out, truth, _ = run
    frame = change(pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "call",
                                 "churn_probability": 0.3}))
    proc = _evaluate(out, "--predictions", _write(tmp_path, frame), "--out", tmp_path / "bad", check=False)
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "bad" / "evaluation.json").exists()


def test_a_file_that_is_not_csv_or_parquet_is_refused(run, tmp_path):
    out, _, _ = run
    (tmp_path / "pred.txt").write_text("partner_id\nP00001\n")
    proc = _evaluate(out, "--predictions", tmp_path / "pred.txt", check=False)
    assert proc.returncode == 2 and "must be a .csv or .parquet file" in proc.stderr


@pytest.mark.slow
def test_record_round_trips_through_a_real_postgresql(postgres_url, tmp_path):
    """The same loop against PostgreSQL: predictions inserted by a "model", graded and
    recorded from the database, the outcomes written back in one transaction."""
    from sqlalchemy import create_engine, text

    out = tmp_path / "run"
    run_cli("n_partners=1500", "db=postgres", f"db.url={postgres_url}", out_dir=out)
    truth = pd.read_parquet(out / "uplift_truth.parquet")
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM predictions"))
        pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "call", "uplift_score": 0.1,
                      "model_version": "pg-1"}).to_sql("predictions", conn, if_exists="append", index=False)
    masked = _evaluate(out, "--from-db", "--out", tmp_path / "ev", check=False)      # the saved config masks it
    assert masked.returncode == 2 and "pass --db-url URL or set DATABASE_URL" in masked.stderr
    assert "secret-pw" not in masked.stderr + masked.stdout
    proc = _evaluate(out, "--from-db", "--record", "--db-url", postgres_url, "--out", tmp_path / "ev",
                     "--format", "json")
    assert json.loads(proc.stdout)["recorded"] == {"model_version": "pg-1", "rows": len(truth),
                                                   "churned": int((pd.read_csv(tmp_path / "ev" / "predictions_outcomes.csv")
                                                                   ["actual_outcome"] == "Churned").sum()),
                                                   "file": "predictions_outcomes.csv", "database": True}
    with engine.connect() as conn:
        db = pd.read_sql("SELECT partner_id, actual_intervention, actual_outcome, outcome_recorded_at FROM predictions",
                         conn)
    assert len(db) == len(truth) and db["actual_intervention"].eq("call").all()
    assert db["actual_outcome"].isin(["Churned", "Retained"]).all() and db["outcome_recorded_at"].notna().all()
    again = _evaluate(out, "--from-db", "--record", "--db-url", postgres_url, check=False)
    assert again.returncode == 2 and "already recorded" in again.stderr


# ----------------------------------------------------------------------------- the happy paths' edges (issue 22)

def _copy_run(out, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(out, copy, symlinks=True)
    return copy


def _strict(text):
    def refuse(token):
        raise AssertionError(f"{token} in evaluation.json")
    return json.loads(text, parse_constant=refuse)


def test_evaluation_json_is_strict_when_a_figure_is_undefined(run, tmp_path):
    """A constant uplift score has no Spearman correlation: null in the JSON, n/a in the
    Markdown, never a bare NaN token."""
    _, truth, _ = run
    frame = pd.DataFrame({"partner_id": truth["partner_id"], "uplift_score": 0.5, "churn_probability": 0.2})
    result = _graded(run, tmp_path, frame)
    assert result["uplift_model"]["spearman"] is None
    _strict((tmp_path / "ev" / "evaluation.json").read_text())
    assert "| Spearman with the true benefit | n/a |" in (tmp_path / "ev" / "evaluation.md").read_text()


def test_outputs_are_replaced_atomically(run, tmp_path):
    """Each output is written under a temporary name and renamed over the old one: a reader
    sees the old file or the new, never half of one, and no temporary file is left."""
    _, truth, _ = run
    frame = pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "email"})
    _graded(run, tmp_path, frame)
    inodes = {p.name: p.stat().st_ino for p in (tmp_path / "ev").iterdir()}
    _graded(run, tmp_path, frame, "--record")
    after = {p.name: p.stat().st_ino for p in (tmp_path / "ev").iterdir()}
    assert set(after) == {"evaluation.json", "evaluation.md", "evaluation.html", "predictions_outcomes.csv"}
    assert all(after[name] != inode for name, inode in inodes.items())      # renamed in, not rewritten


def test_a_missing_predicted_at_is_the_feature_date_never_the_wall_clock(run, tmp_path):
    """From a file without predicted_at, and from the database, whose DEFAULT fills the
    wall clock: the window recorded opens at the run's feature date (2025-10-03)."""
    out, truth, _ = run
    frame = pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "call",
                          "model_version": "clock"})
    _graded(run, tmp_path, frame, "--record")
    recorded = pd.read_csv(tmp_path / "ev" / "predictions_outcomes.csv")
    assert (pd.to_datetime(recorded["predicted_at"]) == pd.Timestamp("2025-10-03")).all()
    assert (pd.to_datetime(recorded["outcome_recorded_at"]) == pd.Timestamp("2025-11-02")).all()
    copy = _copy_run(out, tmp_path)
    with sqlite3.connect(copy / "world.sqlite") as conn:
        conn.execute("DELETE FROM predictions")
        frame.to_sql("predictions", conn, if_exists="append", index=False)   # predicted_at: DEFAULT (the clock)
    _evaluate(copy, "--from-db", "--record", "--out", tmp_path / "db")
    with sqlite3.connect(copy / "world.sqlite") as conn:
        db = pd.read_sql("SELECT outcome_recorded_at FROM predictions", conn)
    assert (pd.to_datetime(db["outcome_recorded_at"]) == pd.Timestamp("2025-11-02")).all()


def test_model_version_grades_and_records_one_version_of_the_table(run, tmp_path):
    out, truth, _ = run
    copy = _copy_run(out, tmp_path)
    base = pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "email"})
    with sqlite3.connect(copy / "world.sqlite") as conn:
        conn.execute("DELETE FROM predictions")
        for version in ("v1", "v2"):
            base.assign(model_version=version).to_sql("predictions", conn, if_exists="append", index=False)
    mixed = _evaluate(copy, "--from-db", "--out", tmp_path / "ev", check=False)
    assert mixed.returncode == 2 and "2 model versions in one call" in mixed.stderr
    _evaluate(copy, "--from-db", "--model-version", "v2", "--record", "--out", tmp_path / "ev")
    with sqlite3.connect(copy / "world.sqlite") as conn:
        db = pd.read_sql("SELECT model_version, actual_outcome FROM predictions", conn)
    assert db.loc[db["model_version"] == "v2", "actual_outcome"].notna().all()
    assert db.loc[db["model_version"] == "v1", "actual_outcome"].isna().all()      # the other version untouched


def test_evaluate_reads_the_key_and_the_outcome_labels_from_the_spec(tmp_path):
    """A world whose key column and outcome labels are not the seed's: no name is written in Python."""
    out = tmp_path / "renamed"
    run_cli("n_partners=1000", "output.report=false", "population.id.column=affiliate_id",
            "interventions.outcomes.churned=Left", "interventions.outcomes.retained=Stayed", out_dir=out)
    truth = pd.read_parquet(out / "uplift_truth.parquet")
    with sqlite3.connect(out / "world.sqlite") as conn:
        pd.DataFrame({"affiliate_id": truth["affiliate_id"], "recommended_intervention": "call",
                      "model_version": "k1"}).to_sql("predictions", conn, if_exists="append", index=False)
    proc = _evaluate(out, "--from-db", "--record", "--out", tmp_path / "ev", "--format", "json")
    result = _strict(proc.stdout)
    assert result["recorded"]["rows"] == len(truth) and result["value_column"] == "avg_commission_3m"
    with sqlite3.connect(out / "world.sqlite") as conn:
        db = pd.read_sql("SELECT affiliate_id, actual_outcome FROM predictions", conn)
    assert set(db["actual_outcome"]) == {"Left", "Stayed"}
    assert result["recorded"]["churned"] == int((db["actual_outcome"] == "Left").sum())
    wrong_key = tmp_path / "p.csv"
    pd.DataFrame({"partner_id": truth["affiliate_id"]}).to_csv(wrong_key, index=False)
    refused = _evaluate(out, "--predictions", wrong_key, "--out", tmp_path / "no", check=False)
    assert refused.returncode == 2 and "no affiliate_id column" in refused.stderr


def test_bootstrap_intervals_cover_what_the_ranking_is_and_widen_with_noise():
    """grading.intervals: a perfect ranking's Qini is 1 in every resample; a random score's
    interval holds 0; each interval holds its own figure and the top 10%'s narrows as the
    world grows (its width falls about as 1/sqrt(n): 4x the partners, half the width)."""
    from simulator import grading
    from simulator.streams import stream

    rng = np.random.default_rng(5)
    benefit = rng.normal(0.02, 0.05, 4000)
    perfect = grading.intervals(benefit, benefit, stream(1, "t"))
    assert perfect["qini"] == [1.0, 1.0]
    noise = rng.random(4000)
    random = grading.intervals(noise, benefit, stream(1, "t"))
    assert random["qini"][0] < 0 < random["qini"][1]
    model = benefit + rng.normal(0, 0.05, 4000)
    found = grading.uplift_model(model, benefit)
    ci = grading.intervals(model, benefit, stream(1, "t"))
    for key in ("qini", "uplift_at_10pct", "uplift_at_30pct"):
        assert ci[key][0] < found[key] < ci[key][1], key
    big = np.arange(16000) % 4000                  # every partner four times
    wide = ci["uplift_at_10pct"][1] - ci["uplift_at_10pct"][0]
    narrow = grading.intervals(model[big] + rng.normal(0, 1e-9, 16000), benefit[big], stream(1, "t"))["uplift_at_10pct"]
    assert 0.3 < (narrow[1] - narrow[0]) / wide < 0.7
