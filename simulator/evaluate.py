"""``python -m simulator.evaluate RUN_DIR --predictions FILE``: grade a model against the truth.

Reads a finished run (its saved config, ``uplift_truth``, ``partners``) and a model's
predictions (the seed's ``predictions`` columns; ``partner_id`` required), from a CSV or
Parquet file or, with ``--from-db``, from the run's database. Writes ``evaluation.json``,
``evaluation.md`` and ``evaluation.html`` (the calibration and Qini curves) into ``--out``
(default: the run directory) and prints the Markdown
(``--format json``: the JSON). ``--record`` plays the next outcome window forward: each
prediction's recommended intervention is applied and its outcome drawn from the world's
own outcome process (a stream keyed by ``model_version``), written back to the database
table (one transaction) and as ``predictions_outcomes.csv``. Exit 2 for bad predictions
(row and column named) or a run that cannot be read; nothing is written then.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import grading
from .errors import ConfigError
from .expr import frame_env
from .streams import stream

COLUMNS = ["prediction_id", "partner_id", "churn_probability", "top_churn_factors", "recommended_intervention",
           "uplift_score", "predicted_at", "actual_intervention", "actual_outcome", "outcome_recorded_at",
           "model_version"]
OUTCOMES = "predictions_outcomes.csv"


def load_run(run_dir: Path):
    """The run's spec (from its saved config), its interventions stage and its tables."""
    from omegaconf import OmegaConf

    from .load import load_spec

    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise ConfigError([f"{run_dir}: not a run directory (no .hydra/config.yaml; run python -m simulator first)"])
    spec = load_spec(OmegaConf.load(saved))
    stage = next((s for s in spec.stages if s.kind == "interventions"), None)
    if stage is None:
        raise ConfigError([f"{run_dir}: this world has no interventions (interventions=none): nothing to grade"])

    def table(name: str) -> pd.DataFrame:
        for suffix, read in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
            if (run_dir / f"{name}{suffix}").exists():
                return read(run_dir / f"{name}{suffix}")
        raise ConfigError([f"{run_dir}: no {name}.parquet or {name}.csv"])

    return spec, stage, table(stage.truth_table), table(spec.table)


def read_predictions(args, spec, run_dir: Path) -> pd.DataFrame:
    """The predictions; an optional column with no value at all counts as not given."""
    frame = _read_predictions(args, spec, run_dir)
    return frame.drop(columns=[c for c in frame.columns if c != "partner_id" and frame[c].isna().all()])


def _read_predictions(args, spec, run_dir: Path) -> pd.DataFrame:
    if args.from_db:
        if spec.db is None or spec.db.kind == "none":
            raise ConfigError(["--from-db: the run loaded no database (db=none)"])
        return pd.read_sql("SELECT * FROM predictions", _connect(spec, run_dir, args.db_url))
    path = Path(args.predictions)
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError([f"--predictions {path}: must be a .csv or .parquet file"])
    if not path.is_file():
        raise ConfigError([f"--predictions {path}: no such file"])
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _connect(spec, run_dir: Path, url: str | None = None):
    """The run's database: its SQLite file, or the PostgreSQL of ``url`` (--db-url), else
    DATABASE_URL, else the run's saved URL (whose password the saved config masks)."""
    import os

    from .sinks.sqlite import database_file as local_file

    if spec.db.kind == "sqlite":
        return sqlite3.connect(local_file(spec.db, run_dir))
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    url = url or os.environ.get("DATABASE_URL") or spec.db.target
    try:
        return create_engine(url).connect()
    except SQLAlchemyError as exc:
        from .secrets import mask

        hint = " (the run's saved config masks the password: pass --db-url URL or set DATABASE_URL)" \
            if "***" in url else ""
        raise ConfigError([f"--from-db: cannot connect to {mask(url)}{hint}: "
                           f"{mask(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))}"]) from None


def _shown(value: object) -> str:
    return repr(value.item() if hasattr(value, "item") else value)     # 1.5, not np.float64(1.5)


def check_predictions(frame: pd.DataFrame, cohort: pd.Index, types: tuple[str, ...]) -> list[str]:
    """Every problem of the predictions, with its row (1 = the first data row) and column."""
    problems = []
    if "partner_id" not in frame:
        return [f"predictions: missing the required column partner_id (columns: {', '.join(map(str, frame.columns))})"]
    ids = frame["partner_id"].astype(str)
    for i in np.flatnonzero(~ids.isin(cohort).to_numpy())[:5]:
        problems.append(f"predictions row {i + 1}, partner_id: {ids.iloc[i]!r} is not a partner of this run's cohort")
    for i in np.flatnonzero(ids.duplicated().to_numpy())[:5]:
        problems.append(f"predictions row {i + 1}, partner_id: {ids.iloc[i]!r} appears twice")
    if "churn_probability" in frame:
        p = pd.to_numeric(frame["churn_probability"], errors="coerce")
        for i in np.flatnonzero((p.isna() & frame["churn_probability"].notna() | (p < 0) | (p > 1)).to_numpy())[:5]:
            problems.append(f"predictions row {i + 1}, churn_probability: {_shown(frame['churn_probability'].iloc[i])} "
                            f"is not a probability in [0, 1]")
    if "recommended_intervention" in frame:
        rec = frame["recommended_intervention"]
        for i in np.flatnonzero((rec.notna() & ~rec.astype(str).isin(types)).to_numpy())[:5]:
            problems.append(f"predictions row {i + 1}, recommended_intervention: {_shown(rec.iloc[i])} is not an "
                            f"intervention type (known: {', '.join(types)})")
    if "uplift_score" in frame and pd.to_numeric(frame["uplift_score"], errors="coerce").isna().any():
        i = int(np.flatnonzero(pd.to_numeric(frame["uplift_score"], errors="coerce").isna().to_numpy())[0])
        problems.append(f"predictions row {i + 1}, uplift_score: {_shown(frame['uplift_score'].iloc[i])} is not a number")
    return problems


def evaluate(spec, stage, uplift: pd.DataFrame, partners: pd.DataFrame, predictions: pd.DataFrame,
             budget: float | None = None) -> dict:
    """The evaluation as a dict (the JSON's shape): churn_model, uplift_model, policies, regret."""
    key = spec.key
    truth_rows = uplift.set_index(key)
    ids = predictions[key].astype(str).to_numpy()
    rows = truth_rows.loc[ids]
    p_none = rows["base_churn_probability"].to_numpy(dtype=float)
    p = np.stack([p_none + rows[f"effect_{t}"].to_numpy(dtype=float) for t in stage.types], axis=1)
    people = partners.set_index(key).loc[ids]
    truth = grading.Truth(stage.types, stage.control, np.clip(p, 0, 1),
                          people["avg_commission_3m"].to_numpy(dtype=float), stage.costs or {})
    out: dict = {"run": {"seed": spec.seed, "n_partners": spec.n, "predictions": int(len(predictions)),
                         "window": "the partner's next decision and its outcome window "
                                   f"({spec.timeline.episode_days} days)"}}
    label, truth_column = spec.role("label"), next((s.truth for s in spec.stages if s.kind == "churn"), None)
    if "churn_probability" in predictions:
        out["churn_model"] = grading.churn_model(predictions["churn_probability"].to_numpy(dtype=float),
                                                 people[label].to_numpy(dtype=bool),
                                                 people[truth_column].to_numpy(dtype=float))
    k = len(stage.types)
    control = stage.types.index(stage.control)
    rec = None
    if "recommended_intervention" in predictions:
        names = predictions["recommended_intervention"].fillna(stage.control).astype(str)
        rec = np.array([stage.types.index(t) for t in names])
    if "uplift_score" in predictions:
        score = predictions["uplift_score"].to_numpy(dtype=float)
        chosen = rec if rec is not None else np.argmin(p, axis=1)
        benefit = p[:, control] - p[np.arange(len(p)), chosen]
        out["uplift_model"] = {**grading.uplift_model(score, benefit),
                               "benefit": "churn prevented by " + ("the recommended type" if rec is not None
                                                                   else "each partner's best type")}
    shares = stage.policy_shares(frame_env(people), len(people))   # the world's logging policy
    policies = []
    if rec is not None:
        submitted = rec if budget is None else grading.within_budget(
            truth, rec, predictions["uplift_score"].to_numpy(dtype=float) if "uplift_score" in predictions
            else -np.arange(len(rec), dtype=float), budget)
        policies.append(grading.policy_value(truth, grading.one_hot(submitted, k), "submitted"))
    policies.append(grading.policy_value(truth, grading.one_hot(np.full(len(p), control), k), "none"))
    policies.append(grading.policy_value(truth, shares, "logging"))
    for j, t in enumerate(stage.types):
        if j != control:
            policies.append(grading.policy_value(truth, grading.one_hot(np.full(len(p), j), k), f"all_{t}"))
    best = grading.oracle(truth, budget)
    policies.append(grading.policy_value(truth, grading.one_hot(best, k), "oracle"))
    for row in policies:
        row["within_budget"] = None if budget is None else bool(row["cost"] <= budget + 1e-9)
    out["budget"] = budget
    out["policies"] = policies
    by_name = {r["name"]: r for r in policies}
    out["regret"] = by_name["submitted"]["expected_churners"] - by_name["oracle"]["expected_churners"] \
        if "submitted" in by_name else None
    return out


def markdown(result: dict) -> str:
    """evaluation.md: the figures as tables, for a pull request."""
    lines = [f"# Evaluation against the truth (seed {result['run']['seed']}, "
             f"{result['run']['predictions']:,} predictions)", "", f"Policies over {result['run']['window']}."]
    if "churn_model" in result:
        c = result["churn_model"]
        lines += ["", "## Churn model", "", "| | model | oracle |", "|---|---|---|",
                  f"| AUC (realized label) | {c['auc']:.4f} | {c['oracle_auc']:.4f} |",
                  f"| Brier score | {c['brier']:.4f} | {c['oracle_brier']:.4f} |",
                  f"| mean squared distance to the true probability | {c['brier_vs_true_probability']:.4f} | 0 |",
                  "", "| decile | n | mean predicted | mean true probability | churn rate |", "|---|---|---|---|---|"]
        lines += [f"| {r['decile']} | {r['n']} | {r['mean_predicted']:.4f} | {r['mean_true_probability']:.4f} | "
                  f"{r['churn_rate']:.4f} |" for r in c["calibration"]]
    if "uplift_model" in result:
        u = result["uplift_model"]
        lines += ["", "## Uplift model", "", f"Benefit: {u['benefit']}.", "", "| measure | value |", "|---|---|",
                  f"| Qini coefficient (1 = perfect ranking) | {u['qini']:.4f} |",
                  f"| Spearman with the true benefit | {u['spearman']:.4f} |"]
        lines += [f"| mean true benefit, top {k.split('_')[2].removesuffix('pct')}% | {v:.4f} |"
                  for k, v in u.items() if k.startswith("uplift_at_")]
    lines += ["", "## Policies" + (f" (budget {result['budget']:,.2f})" if result["budget"] is not None else ""),
              "", "| policy | expected churners | churn rate | commission retained | cost |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['expected_churners']:,.2f} | {r['expected_churn_rate']:.4f} | "
              f"{r['expected_commission_retained']:,.0f} | {r['cost']:,.2f} |" for r in result["policies"]]
    if result["regret"] is not None:
        lines += ["", f"Regret (expected churners of the submitted policy minus the oracle's): "
                      f"**{result['regret']:,.3f}**"]
    return "\n".join(lines) + "\n"


def html_page(result: dict) -> str:
    """evaluation.html: the Markdown's tables as a page, with the calibration and Qini curves
    (self-contained, like report.html)."""
    import html

    from .report import STYLE, figure, image, panel

    panels = []
    if "churn_model" in result:
        rows = result["churn_model"]["calibration"]
        fig = figure(figsize=(4.2, 3.6))
        ax = fig.subplots()
        ax.plot([r["mean_true_probability"] for r in rows], [r["mean_predicted"] for r in rows], "o-", label="model")
        top = max(max(r["mean_true_probability"] for r in rows), max(r["mean_predicted"] for r in rows))
        ax.plot([0, top], [0, top], "--", color="grey", label="calibrated")
        ax.set(xlabel="mean true probability (decile)", ylabel="mean predicted", title="calibration")
        ax.legend(fontsize=7)
        panels.append(panel("Churn model: calibration against the true probability", image(fig)))
    if "uplift_model" in result:
        curve = result["uplift_model"]["curve"]
        fig = figure(figsize=(4.6, 3.6))
        ax = fig.subplots()
        x = [c["treated"] for c in curve]
        ax.plot(x, [c["churn_prevented"] for c in curve], "o-", label=f"model (Qini {result['uplift_model']['qini']:.3f})")
        ax.plot([0, x[-1]], [0, curve[-1]["churn_prevented"]], "--", color="grey", label="random")
        ax.set(xlabel="partners treated, best-scored first", ylabel="true churn prevented", title="Qini curve")
        ax.legend(fontsize=7)
        panels.append(panel("Uplift model: the Qini curve against the true benefit", image(fig)))
    body = f"<pre>{html.escape(markdown(result))}</pre>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Evaluation (seed {result['run']['seed']})"
            f"</title><style>{STYLE}</style></head><body><h1>Evaluation against the truth</h1>"
            f"{''.join(panels)}<h2>Figures</h2>{body}</body></html>")


def model_version(predictions: pd.DataFrame) -> str:
    """The predictions' model version (the stream of their recorded outcomes)."""
    return str(predictions["model_version"].iloc[0]) if "model_version" in predictions and len(predictions) \
        else "unversioned"


def record(spec, stage, uplift: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The outcome window played forward: each prediction's recommended type (the control
    where none is given) and an outcome drawn from P(Churned | do(type)), one uniform per
    partner from a stream keyed by the model version (the same predictions, the same
    outcomes)."""
    version = model_version(predictions)
    rows = uplift.set_index(spec.key).loc[predictions[spec.key].astype(str)]
    kind = predictions.get("recommended_intervention", pd.Series([None] * len(predictions)))
    kind = kind.fillna(stage.control).astype(str).to_numpy()
    prob = rows["base_churn_probability"].to_numpy(dtype=float) + \
        np.choose(np.array([stage.types.index(k) for k in kind]),
                  [rows[f"effect_{t}"].to_numpy(dtype=float) for t in stage.types])
    order = np.argsort(predictions[spec.key].astype(str).to_numpy(), kind="stable")
    u = np.empty(len(predictions))
    u[order] = stream(spec.seed, "evaluate", "record", version).random(len(predictions))
    when = pd.to_datetime(predictions["predicted_at"]) if "predicted_at" in predictions and \
        predictions["predicted_at"].notna().all() else pd.Series([pd.Timestamp(spec.feature_date)] * len(predictions))
    out = predictions.copy()
    out["actual_intervention"] = kind
    out["actual_outcome"] = np.where(u < np.clip(prob, 0, 1), "Churned", "Retained")
    out["outcome_recorded_at"] = (when + pd.Timedelta(days=spec.timeline.episode_days)).to_numpy()
    out["model_version"] = version
    return out


def _write_back(spec, run_dir: Path, recorded: pd.DataFrame, url: str | None) -> None:
    """The outcomes into the run's predictions table, in one transaction."""
    conn = _connect(spec, run_dir, url)
    columns = [recorded["actual_intervention"].astype(str), recorded["actual_outcome"].astype(str),
               pd.to_datetime(recorded["outcome_recorded_at"]).astype(str), recorded["model_version"].astype(str),
               recorded[spec.key].astype(str)]
    values = list(zip(*(c.tolist() for c in columns)))
    if isinstance(conn, sqlite3.Connection):
        with conn:
            conn.executemany("UPDATE predictions SET actual_intervention = ?, actual_outcome = ?, "
                             "outcome_recorded_at = ?, model_version = ? WHERE partner_id = ?", values)
        conn.close()
        return
    from sqlalchemy import text

    with conn.begin():                         # one transaction: all outcomes or none
        conn.execute(text("UPDATE predictions SET actual_intervention = :a, actual_outcome = :b, "
                          "outcome_recorded_at = CAST(:c AS TIMESTAMP), model_version = :d WHERE partner_id = :e"),
                     [dict(zip("abcde", v)) for v in values])
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="CSV or Parquet with the seed's predictions columns")
    source.add_argument("--from-db", action="store_true", help="read the run's database predictions table")
    parser.add_argument("--out", type=Path, help="where evaluation.json/.md go (default: the run directory)")
    parser.add_argument("--format", choices=["md", "json"], default="md")
    parser.add_argument("--budget", type=float, help="the most the interventions may cost (interventions.costs)")
    parser.add_argument("--record", action="store_true", help="play the outcome window forward and write it")
    parser.add_argument("--replace", action="store_true", help="with --record: record a model version again")
    parser.add_argument("--db-url", help="the database URL with its password (default: DATABASE_URL, or the run's)")
    args = parser.parse_args(argv)
    try:
        spec, stage, uplift, partners = load_run(args.run_dir)
        predictions = read_predictions(args, spec, args.run_dir)
        problems = check_predictions(predictions, pd.Index(uplift[spec.key].astype(str)), stage.types)
        if args.budget is not None and args.budget < 0:
            problems.append(f"--budget: must be >= 0, got {args.budget}")
        if args.budget is not None and not stage.costs:
            problems.append("--budget: this world declares no interventions.costs")
        out_dir = args.out or args.run_dir
        if args.record:
            version = model_version(predictions)
            done = (out_dir / OUTCOMES).is_file() and \
                (pd.read_csv(out_dir / OUTCOMES)["model_version"].astype(str) == version).any()
            if args.from_db and "actual_outcome" in predictions:
                done = done or predictions["actual_outcome"].notna().any()
            if done and not args.replace:
                problems.append(f"--record: model_version {version!r} is already recorded (add --replace to "
                                f"record it again)")
        if problems:
            raise ConfigError(problems)
    except ConfigError as exc:
        print(exc.render("the run or the predictions"), file=sys.stderr)
        return 2
    result = evaluate(spec, stage, uplift, partners, predictions, args.budget)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.record:
        recorded = record(spec, stage, uplift, predictions)
        if args.from_db:
            _write_back(spec, args.run_dir, recorded, args.db_url)
        recorded.to_csv(out_dir / OUTCOMES, index=False)
        churned = recorded["actual_outcome"] == "Churned"
        result["recorded"] = {"model_version": model_version(recorded) if len(recorded) else None,
                              "rows": int(len(recorded)), "churned": int(churned.sum()),
                              "file": OUTCOMES, "database": bool(args.from_db)}
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    text = markdown(result)
    (out_dir / "evaluation.md").write_text(text)
    (out_dir / "evaluation.html").write_text(html_page(result))
    print(json.dumps(result, indent=2, default=float) if args.format == "json" else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
