"""``python -m simulator.evaluate RUN_DIR --predictions FILE``: grade a model against the truth.

Reads a finished run (its saved config, its truth table and its partners table, each checked
against ``manifest.json``) and a model's predictions (the seed's ``predictions`` columns, the
world's key column required), from a CSV or Parquet file or, with ``--from-db``, from the
run's database. Writes ``evaluation.json`` (strict JSON), ``evaluation.md`` and
``evaluation.html`` (the calibration and Qini curves) into ``--out`` (default: the run
directory), each atomically, and prints the Markdown (``--format json``: the JSON).
``--record`` plays the next outcome window forward: each prediction's recommended
intervention is applied and its outcome drawn from the world's own outcome process (a stream
keyed by ``model_version``), written back to the database table (one transaction) and as
``predictions_outcomes.csv``. Exit 2 for anything malformed (the file, row and column named:
see simulator.predictions and simulator.runfiles); nothing is written then.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import grading
from . import predictions as preds
from . import runfiles
from .errors import ConfigError
from .expr import frame_env
from .streams import stream

OUTCOMES = "predictions_outcomes.csv"
OUTPUTS = ("evaluation.json", "evaluation.md", "evaluation.html")


class Run(NamedTuple):
    """A finished run as evaluate reads it: its spec, interventions stage and tables (the
    panel and the snapshots' truth when the run wrote them, for backtests)."""

    spec: object
    stage: object
    uplift: pd.DataFrame
    partners: pd.DataFrame
    panel: pd.DataFrame | None = None
    snapshots: pd.DataFrame | None = None


def load_run(run_dir: Path) -> Run:
    """The run's spec (from its saved config) and its truth and partners tables, every file
    checked against manifest.json (an edit after the run is refused)."""
    from .load import load_spec

    manifest = runfiles.read_manifest(run_dir)
    cfg = runfiles.read_config(run_dir)
    runfiles.verify_config(run_dir, runfiles.resolved_config(cfg), manifest)
    spec = load_spec(cfg)
    stage = next((s for s in spec.stages if s.kind == "interventions"), None)
    if stage is None:
        raise ConfigError([f"{run_dir}: this world has no interventions (interventions=none): nothing to grade"])
    panel_name = next((s.panel for s in spec.stages if getattr(s, "panel", None)), None)
    optional = lambda name: runfiles.read_table(run_dir, manifest, name) \
        if name and name in manifest.get("tables", {}) else None
    return Run(spec, stage, runfiles.read_table(run_dir, manifest, stage.truth_table),
               runfiles.read_table(run_dir, manifest, spec.table), optional(panel_name),
               optional(stage.snapshot_table))


def value_column(spec) -> str | None:
    """The partners column a policy's retained value is weighed by (the population's declared
    ``value``: the monthly commission in the seed's world), None if the world declares none."""
    return spec.role("value")


def truth_probability_column(spec) -> str | None:
    """The oracle's churn probability (the churn stage's ``truth``), else its model probability."""
    return next((s.truth for s in spec.stages if getattr(s, "truth", None)), None) or spec.role("probability")


def read_predictions(args: argparse.Namespace, spec, run_dir: Path) -> tuple[pd.DataFrame, str]:
    """(the predictions, where they came from). In the database table, which always has
    every column, a column with no value at all counts as not given; in a file, a column
    given is meant (an empty number there is refused)."""
    if args.from_db:
        frame = preds.read_table(spec, run_dir, args.db_url, args.model_version)
        source = preds.describe(spec, run_dir, args.db_url)
    else:
        path = Path(args.predictions)
        frame, source = preds.read_file(path, spec.key), str(path)
        if args.model_version is not None:
            if "model_version" not in frame:
                raise ConfigError([f"--model-version {args.model_version}: {path} has no model_version column"])
            frame = frame[frame["model_version"].astype(str) == args.model_version].reset_index(drop=True)
    if not args.from_db:
        return frame, source
    frame = frame.drop(columns=[c for c in frame.columns if c != spec.key and frame[c].isna().all()])
    return snapshot_of_table(spec, frame), source


def by_snapshot(spec, predictions: pd.DataFrame, panel: pd.DataFrame, snapshots: pd.DataFrame | None) -> dict:
    """A backtest: per snapshot of the predictions, the churn model against that snapshot's
    labels (features_panel) and the oracles of its truth (snapshot_truth): known at the
    snapshot's date, and on the world's path; then the AUC's stability across them."""
    key, label = spec.key, spec.role("label")
    dates = pd.to_datetime(predictions[preds.SNAPSHOT], format="mixed")
    index = lambda frame: pd.MultiIndex.from_arrays([frame[key].astype(str),
                                                     pd.to_datetime(frame[preds.SNAPSHOT]).dt.normalize()])
    rows = panel.set_axis(index(panel))
    truth = snapshots.set_axis(index(snapshots)) if snapshots is not None else None
    out: dict = {}
    for day in sorted(dates.unique()):
        mine = predictions[(dates == day).to_numpy()]
        at = pd.MultiIndex.from_arrays([mine[key].astype(str), pd.to_datetime(mine[preds.SNAPSHOT]).dt.normalize()])
        y = rows.loc[at, label].to_numpy(dtype=bool)
        path = truth.loc[at, "churn_probability_on_path"].to_numpy(dtype=float) if truth is not None else \
            np.full(len(mine), np.nan)
        metrics = grading.churn_model(mine["churn_probability"].to_numpy(dtype=float), y, path)
        if truth is not None:
            metrics["oracle_auc_before_decisions"] = grading.defined(grading.auc(
                y, truth.loc[at, "churn_probability_before_decisions"].to_numpy(dtype=float)))
        out[str(pd.Timestamp(day).date())] = metrics
    return out


def stability(backtest: dict) -> dict:
    """The AUC across the snapshots: its range, and its trend (least squares, per snapshot)."""
    aucs = [(i, m["auc"]) for i, m in enumerate(backtest.values()) if m["auc"] is not None]
    if not aucs:
        return {"snapshots": len(backtest), "auc_min": None, "auc_max": None, "auc_range": None,
                "auc_trend_per_snapshot": None}
    x, y = np.array([a for a, _ in aucs], dtype=float), np.array([b for _, b in aucs])
    slope = float(np.polyfit(x, y, 1)[0]) if len(aucs) > 1 else 0.0
    return {"snapshots": len(backtest), "auc_min": float(y.min()), "auc_max": float(y.max()),
            "auc_range": float(y.max() - y.min()), "auc_trend_per_snapshot": slope}


def evaluate(spec, stage, uplift: pd.DataFrame, partners: pd.DataFrame, predictions: pd.DataFrame,
             budget: float | None = None, logged: pd.DataFrame | None = None, panel: pd.DataFrame | None = None,
             snapshots: pd.DataFrame | None = None) -> dict:
    """The evaluation as a dict (the JSON's shape): churn_model, uplift_model, policies, regret;
    with a ``snapshot_date`` column, ``by_snapshot`` and ``stability`` too (the last
    snapshot's rows, the feature date's, are graded as a file without the column is)."""
    backtest = None
    if preds.SNAPSHOT in predictions:
        if "churn_probability" in predictions:
            backtest = by_snapshot(spec, predictions, panel, snapshots)
        last = pd.to_datetime(predictions[preds.SNAPSHOT], format="mixed") == pd.Timestamp(spec.feature_date)
        predictions = predictions[last.to_numpy()].drop(columns=preds.SNAPSHOT).reset_index(drop=True)
    out = _evaluate(spec, stage, uplift, partners, predictions, budget, logged, snapshots) if len(predictions) else {
        "run": {"seed": spec.seed, "n_partners": spec.n, "predictions": 0, "window": "(no prediction at the "
                "feature date: the backtest only)"}, "value_column": value_column(spec), "budget": budget,
        "policies": [], "regret": None}
    if backtest is not None:
        out["by_snapshot"], out["stability"] = backtest, stability(backtest)
        out["run"]["snapshots"] = len(backtest)
    return out


def _evaluate(spec, stage, uplift: pd.DataFrame, partners: pd.DataFrame, predictions: pd.DataFrame,
              budget: float | None, logged: pd.DataFrame | None, snapshots: pd.DataFrame | None) -> dict:
    key = spec.key
    truth_rows = uplift.set_index(key)
    ids = predictions[key].astype(str).to_numpy()
    rows = truth_rows.loc[ids]
    p_none = rows["base_churn_probability"].to_numpy(dtype=float)
    p = np.stack([p_none + rows[stage.truth_column(t)].to_numpy(dtype=float) for t in stage.types], axis=1)
    people = partners.set_index(key).loc[ids]
    value = value_column(spec)
    truth = grading.Truth(stage.types, stage.control, np.clip(p, 0, 1),
                          people[value].to_numpy(dtype=float) if value in people else None, stage.costs or {})
    out: dict = {"run": {"seed": spec.seed, "n_partners": spec.n, "predictions": int(len(predictions)),
                         "cohort": int(len(truth_rows)),      # (the truth table: one row per partner of it)
                         "window": "the partner's next decision and its outcome window "
                                   f"({spec.timeline.episode_days} days)"},
                 "value_column": value}
    label, truth_column = spec.role("label"), truth_probability_column(spec)
    if "churn_probability" in predictions:
        out["churn_model"] = grading.churn_model(predictions["churn_probability"].to_numpy(dtype=float),
                                                 people[label].to_numpy(dtype=bool),
                                                 people[truth_column].to_numpy(dtype=float))
        if snapshots is not None:          # the oracle at the feature date: before the window's decisions
            at = snapshots[pd.to_datetime(snapshots["snapshot_date"]) == pd.Timestamp(spec.feature_date)]
            known = at.set_index(at[key].astype(str))["churn_probability_before_decisions"].loc[ids]
            out["churn_model"]["oracle_auc_before_decisions"] = grading.defined(grading.auc(
                people[label].to_numpy(dtype=bool), known.to_numpy(dtype=float)))
    k = len(stage.types)
    control = stage.types.index(stage.control)
    rec = None
    if "recommended_intervention" in predictions:
        # (an empty column reads as float: as text first, so the control fills it)
        names = predictions["recommended_intervention"].astype("string").fillna(stage.control).astype(str)
        rec = pd.Index(stage.types).get_indexer(names)
    if "uplift_score" in predictions:
        score = predictions["uplift_score"].to_numpy(dtype=float)
        chosen = rec if rec is not None else np.argmin(p, axis=1)
        benefit = p[:, control] - p[np.arange(len(p)), chosen]
        out["uplift_model"] = {**grading.uplift_model(score, benefit),
                               "intervals_95": grading.intervals(score, benefit,
                                                                 stream(spec.seed, "evaluate", "bootstrap")),
                               "benefit": "churn prevented by " + ("the recommended type" if rec is not None
                                                                   else "each partner's best type")}
        _, perfect = grading.qini(benefit, benefit)        # the oracle: the true benefit ranks itself
        out["uplift_model"]["oracle_curve"] = [{"treated": c["treated"], "churn_prevented": float(perfect[c["treated"]])}
                                               for c in out["uplift_model"]["curve"]]
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
    if logged is not None and rec is not None:
        out["ope"] = off_policy(spec, stage, logged, people, grading.one_hot(submitted, k),
                                by_name["submitted"]["expected_churners"] / max(len(p), 1))
    return out


def first_decisions(spec, stage, interventions: pd.DataFrame) -> pd.DataFrame:
    """The logged first decision after the feature date of each partner (indexed by the key)."""
    first = interventions[pd.to_datetime(interventions["intervention_date"]) == pd.Timestamp(spec.feature_date)]
    return first.set_index(first[spec.key].astype(str))


def off_policy(spec, stage, logged: pd.DataFrame, people: pd.DataFrame, pi: np.ndarray, truth: float) -> dict:
    """The submitted policy's value estimated from the logged first decisions by IPW, SNIPW,
    DM and DR (simulator.ope), per 1,000 partners, each beside the exact value."""
    from . import ope

    rows = logged.loc[people.index]
    features = next((s.features for s in spec.stages if s.kind == "projection"), ())
    x = people[list(features)].astype(float).to_numpy()
    missing = np.isnan(x)                          # the network features of non-masters: the column's mean
    sums, counts = np.where(missing, 0, x).sum(axis=0), (~missing).sum(axis=0)
    x = np.where(missing, sums / np.maximum(counts, 1), x)
    log = ope.Logged((rows["outcome"].astype(str) == stage.churned).to_numpy(dtype=float),
                     pd.Index(stage.types).get_indexer(rows["intervention_type"].astype(str)),
                     rows["propensity"].to_numpy(dtype=float), x)
    return {"policy": "submitted", "unit": "expected churners per 1,000 partners on the first decision "
                                           "after the feature date", "n": int(len(rows)),
            **ope.estimates(log, pi, truth)}


def _fixed(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(result: dict) -> str:
    """evaluation.md: the figures as tables, for a pull request (the tables of :func:`_tables`,
    which the page shows too)."""
    from .review.canvas import markdown_table

    run = result["run"]
    lines = [f"# Evaluation against the truth (seed {run['seed']}, {run['predictions']:,} predictions)", "",
             f"Policies over {run['window']}."]
    if coverage := _coverage(run):
        lines += ["", coverage]
    for section, (heading, head, rows) in _tables(result).items():
        lines += ["", f"## {heading}", "", *markdown_table(head, rows)]
        if section == "policies" and result["regret"] is not None:
            lines += ["", f"{REGRET}: **{result['regret']:,.3f}**"]
    return "\n".join(lines) + "\n"


REGRET = "Regret (expected churners of the submitted policy minus the oracle's)"


def _coverage(run: dict) -> str | None:
    """A sentence when the predictions cover part of the cohort (a test split, say), so the
    figures are read as those partners', not the world's."""
    if not run.get("cohort") or run["predictions"] >= run["cohort"]:
        return None
    return (f"The predictions cover {run['predictions']:,} of the cohort's {run['cohort']:,} partners "
            f"({run['predictions'] / run['cohort']:.1%}): every figure is over those partners.")


def _tables(result: dict) -> dict[str, tuple[str, list[str], list[list]]]:
    """evaluation.md's and evaluation.html's tables as (heading, head, rows) by section
    (churn, calibration, uplift, policies, ope): numbers stay numbers."""
    out = {}
    if "churn_model" in result:
        c = result["churn_model"]
        out["churn"] = ("Churn model", ["", "model", "oracle"], [
            ["AUC (realized label; the oracle on the world's path: it knows the window's decisions)", c["auc"],
             c["oracle_auc"]],
            *([["AUC, the oracle at the feature date (before the window's decisions: their draws integrated out)",
                c["auc"], c["oracle_auc_before_decisions"]]] if "oracle_auc_before_decisions" in c else []),
            ["Brier score", c["brier"], c["oracle_brier"]],
            ["mean squared distance to the true probability", c["brier_vs_true_probability"], 0.0]])
        out["calibration"] = ("Churn model: calibration by decile",
                    ["decile", "n", "mean predicted", "mean true probability", "churn rate"],
                    [[r["decile"], r["n"], r["mean_predicted"], r["mean_true_probability"], r["churn_rate"]]
                     for r in c["calibration"]])
    if "uplift_model" in result:
        u = result["uplift_model"]
        ci = u.get("intervals_95") or {}
        span = lambda key: "" if not ci.get(key) else f"{ci[key][0]:.4f} to {ci[key][1]:.4f}"
        out["uplift"] = (f"Uplift model (benefit: {u['benefit']})", ["measure", "value", "bootstrap 95% interval"], [
            ["Qini coefficient (1 = perfect ranking)", u["qini"], span("qini")],
            ["Spearman with the true benefit", u["spearman"], ""],
            *[[f"mean true benefit, top {k.split('_')[2].removesuffix('pct')}%", v, span(k)]
              for k, v in u.items() if k.startswith("uplift_at_")]])
    budget = result["budget"]
    out["policies"] = ("Policies" + (f" (budget {budget:,.2f})" if budget is not None else ""),
                ["policy", "expected churners", "churn rate", f"{result.get('value_column') or 'value'} retained",
                 "cost"],
                [[r["name"], r["expected_churners"], r["expected_churn_rate"], r["expected_commission_retained"],
                  r["cost"]] for r in result["policies"]])
    if "by_snapshot" in result:
        st = result["stability"]
        out["backtest"] = (f"Backtest: the churn model at each snapshot (AUC range {_fixed(st['auc_range'])}, "
                           f"trend {_fixed(st['auc_trend_per_snapshot'], '+.4f')} per snapshot)",
                           ["snapshot", "n", "AUC", "Brier", "mean predicted", "churn rate",
                            "oracle AUC before the decisions", "oracle AUC on the path"],
                           [[day, m["n"], m["auc"], m["brier"], _mean(m, "mean_predicted"), _mean(m, "churn_rate"),
                             m.get("oracle_auc_before_decisions"), m["oracle_auc"]]
                            for day, m in result["by_snapshot"].items()])
    if "ope" in result:
        o = result["ope"]
        out["ope"] = (f"Off-policy estimates of the submitted policy: {o['unit']} ({o['n']:,} logged decisions)",
                      ["estimator", "estimate", "SE", "truth", "error", "error / SE"],
                      [[name.upper(), o[name]["estimate"], o[name]["se"], o[name]["truth"], o[name]["error"],
                        o[name]["error"] / o[name]["se"] if o[name]["se"] else None]
                       for name in ("ipw", "snipw", "dm", "dr")])
    return out


def _mean(metrics: dict, column: str) -> float:
    """A calibration table's column averaged over its rows (weighted by their n)."""
    rows = metrics["calibration"]
    return sum(r[column] * r["n"] for r in rows) / max(sum(r["n"] for r in rows), 1)


def backtest_figure(result: dict) -> str:
    """The churn model over the snapshots (SVG): its AUC beside the oracles', and its mean
    prediction beside the churn rate (calibration in the large)."""
    from .review.svg import PALETTE, Panel, render

    days = list(result["by_snapshot"])
    rows = list(result["by_snapshot"].values())
    x = np.array(days, dtype="datetime64[D]")
    left = Panel(440, 320, title="AUC by snapshot", ylabel="AUC", xrotate=45, legend="below")
    left.line(x, [m["auc"] for m in rows], PALETTE[0], marker="o", label="model")
    if any(m.get("oracle_auc_before_decisions") is not None for m in rows):
        left.line(x, [np.nan if m.get("oracle_auc_before_decisions") is None else m["oracle_auc_before_decisions"]
                      for m in rows], PALETTE[1], dash="5,3", marker="s", label="oracle before the decisions")
    left.line(x, [m["oracle_auc"] for m in rows], PALETTE[2], dash="1,2", marker="^", label="oracle on the path")
    right = Panel(440, 320, title="calibration by snapshot", ylabel="probability", xrotate=45, legend="below")
    right.line(x, [_mean(m, "mean_predicted") for m in rows], PALETTE[0], marker="o", label="mean predicted")
    right.line(x, [_mean(m, "churn_rate") for m in rows], PALETTE[1], dash="5,3", marker="s", label="churn rate")
    return render([[left, right]])


def calibration_figure(churn: dict) -> str:
    """The churn model's calibration (SVG): mean predicted against mean true probability by
    decile."""
    from .review.svg import PALETTE, Panel, render

    rows = churn["calibration"]
    p = Panel(400, 330, title="calibration", xlabel="mean true probability (decile)", ylabel="mean predicted")
    p.line([r["mean_true_probability"] for r in rows], [r["mean_predicted"] for r in rows], PALETTE[0], marker="o",
           label="model")
    top = max(max(r["mean_true_probability"] for r in rows), max(r["mean_predicted"] for r in rows))
    p.line([0, top], [0, top], "#7f7f7f", dash="4,3", label="calibrated")
    return render([[p]])


def qini_figure(uplift: dict) -> str:
    """The Qini curves (SVG) of the model's ranking and of the oracle's (the true benefit
    ranking itself), beside the random ranking's line."""
    from .review.svg import PALETTE, Panel, render

    p = Panel(460, 340, title="Qini curves", xlabel="partners treated, best-scored first",
              ylabel="true churn prevented")
    x = [c["treated"] for c in uplift["curve"]]
    p.line(x, [c["churn_prevented"] for c in uplift["curve"]], PALETTE[0], marker="o",
           label=f"model (Qini {_fixed(uplift['qini'], '.3f')})")
    if uplift.get("oracle_curve"):
        p.line(x, [c["churn_prevented"] for c in uplift["oracle_curve"]], PALETTE[2], marker="s",
               label="oracle: the true benefit's ranking (Qini 1)")
    p.line([0, x[-1]], [0, uplift["curve"][-1]["churn_prevented"]], "#7f7f7f", dash="4,3", label="random (Qini 0)")
    return render([[p]])


def html_page(result: dict) -> str:
    """evaluation.html: the Markdown's tables as HTML tables, with the calibration curve and
    the Qini curves of the model and the oracle (self-contained, like report.html)."""
    import html

    from .review.canvas import html_table, image
    from .review.report import STYLE, panel

    tables = {section: panel(heading, html_table(head, rows)) for section, (heading, head, rows) in _tables(result).items()}
    panels = [tables.get("churn", ""), tables.get("calibration", "")]
    if "churn_model" in result:
        panels.append(panel("Churn model: calibration against the true probability",
                            image(calibration_figure(result["churn_model"]))))
    panels.append(tables.get("uplift", ""))
    if "uplift_model" in result:
        panels.append(panel("Uplift model: the Qini curves of the model and the oracle",
                            image(qini_figure(result["uplift_model"]))))
    if "by_snapshot" in result:
        panels += [tables["backtest"], panel("Backtest: AUC and calibration over time", image(backtest_figure(result)))]
    panels += [tables["policies"], tables.get("ope", "")]
    run = result["run"]
    regret = "" if result["regret"] is None else f"<p>{REGRET}: <b>{result['regret']:,.3f}</b></p>"
    coverage = _coverage(run)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Evaluation (seed {run['seed']})</title><style>{STYLE}</style></head><body>"
            f"<h1>Evaluation against the truth</h1><p>seed {run['seed']}, {run['predictions']:,} predictions; "
            f"policies over {html.escape(run['window'])}.</p>"
            f"{f'<p>{html.escape(coverage)}</p>' if coverage else ''}{regret}"
            f"<div class=panels>{''.join(panels)}</div>"
            f"</body></html>")


def model_version(predictions: pd.DataFrame) -> str:
    """The predictions' model version (the stream of their recorded outcomes); the checks
    allow one per call."""
    versions = predictions["model_version"].dropna() if "model_version" in predictions else ()
    return str(versions.iloc[0]) if len(versions) else "unversioned"


def record(spec, stage, uplift: pd.DataFrame, predictions: pd.DataFrame,
           decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The outcome window played forward: each prediction's recommended type (the control
    where none is given) and an outcome drawn from P(outcome | do(type)), one uniform per
    partner from a stream keyed by the model version (the same predictions, the same
    outcomes). The window is the one the truth describes: it opens at the run's feature date
    (also a missing ``predicted_at``), never at the wall clock; or, for predictions of an
    earlier snapshot (``snapshot_date``: one per call), at that snapshot, with that period's
    truth (``decisions``: decision_truth), so a learning loop sees the outcome at the next."""
    version = model_version(predictions)
    opened = pd.Timestamp(spec.feature_date)
    if preds.SNAPSHOT in predictions:
        opened = pd.Timestamp(pd.to_datetime(predictions[preds.SNAPSHOT], format="mixed").iloc[0])
    if opened == pd.Timestamp(spec.feature_date):
        rows = uplift.set_index(spec.key).loc[predictions[spec.key].astype(str)]
    else:
        at = decisions[pd.to_datetime(decisions["decision_date"]) == opened]
        rows = at.set_index(at[spec.key].astype(str)).loc[predictions[spec.key].astype(str)]
    kind = predictions.get("recommended_intervention", pd.Series([None] * len(predictions)))
    kind = kind.fillna(stage.control).astype(str).to_numpy()
    chosen = pd.Index(stage.types).get_indexer(kind)
    effects = np.stack([rows[stage.truth_column(t)].to_numpy(dtype=float) for t in stage.types], axis=1)
    prob = rows["base_churn_probability"].to_numpy(dtype=float) + effects[np.arange(len(kind)), chosen]
    order = np.argsort(predictions[spec.key].astype(str).to_numpy(), kind="stable")
    u = np.empty(len(predictions))
    u[order] = stream(spec.seed, "evaluate", "record", version).random(len(predictions))
    out = predictions.copy()
    if opened != pd.Timestamp(spec.feature_date):
        out["predicted_at"] = str(opened)
    elif "predicted_at" in out:
        out["predicted_at"] = out["predicted_at"].astype(object).where(out["predicted_at"].notna(), str(opened))
    else:
        out["predicted_at"] = str(opened)
    out["actual_intervention"] = kind
    out["actual_outcome"] = np.where(u < np.clip(prob, 0, 1), stage.churned, stage.retained)
    out["outcome_recorded_at"] = opened + pd.Timedelta(days=spec.timeline.episode_days)
    out["model_version"] = version
    return out


def snapshot_of_table(spec, predictions: pd.DataFrame) -> pd.DataFrame:
    """The database's predictions of one snapshot before the feature date (every row's
    ``predicted_at`` that snapshot's date: how a learning loop files them, the table having
    no snapshot_date) as a backtest's rows; any other predictions as they are."""
    if "predicted_at" not in predictions or predictions["predicted_at"].isna().any() or spec.timeline.snapshots == 1:
        return predictions
    at = pd.to_datetime(predictions["predicted_at"], errors="coerce", format="mixed")
    earlier = [pd.Timestamp(d) for d in spec.timeline.snapshot_dates()[:-1]]
    if at.isna().any() or at.nunique() != 1 or at.iloc[0] not in earlier:
        return predictions
    return predictions.assign(**{preds.SNAPSHOT: at})


def finite_budget(text: str) -> float:
    """argparse type of --budget: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0 (the most the interventions may "
                                         f"cost), got {text!r}")
    return value


def claim_out_dir(out: Path) -> list[Path]:
    """Refuse an --out evaluate could not write into, before anything is computed: make the
    directory and a probe file in it. Returns the directories made (to remove on a refusal)."""
    if out.exists() and not out.is_dir():
        raise ConfigError([f"--out {out}: not a directory"])
    made = [d for d in (out, *out.parents) if not d.exists()][::-1]
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".evaluate-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        release(made)
        raise ConfigError([f"--out {out}: cannot write there ({exc.strerror or exc})"]) from None
    return made


def release(made: list[Path]) -> None:
    """Remove the directories claim_out_dir made, innermost first (only if still empty)."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            break


def write_outputs(out_dir: Path, result: dict, recorded: pd.DataFrame | None) -> None:
    """evaluation.json (strict JSON), .md and .html, and the recorded outcomes, each atomically."""
    from .sinks.publication import write_text

    write_text(json.dumps(result, indent=2, allow_nan=False, default=float) + "\n", out_dir / OUTPUTS[0])
    write_text(markdown(result), out_dir / OUTPUTS[1])
    write_text(html_page(result), out_dir / OUTPUTS[2])
    if recorded is not None:
        write_text(recorded.to_csv(index=False), out_dir / OUTCOMES)


def already_recorded(args: argparse.Namespace, spec, out_dir: Path, predictions: pd.DataFrame) -> bool:
    """Whether these predictions' model version has outcomes already (in --out, or in the table)."""
    version = model_version(predictions)
    done = False
    if (out_dir / OUTCOMES).is_file():
        earlier = preds.read_file(out_dir / OUTCOMES, spec.key)
        done = "model_version" in earlier and bool((earlier["model_version"].astype(str) == version).any())
    if args.from_db and "actual_outcome" in predictions:
        done = done or bool(predictions["actual_outcome"].notna().any())
    return done


DESCRIPTION = """\
Grade a model's predictions against a finished run's exact truth.

Reads the run (its saved config, its truth and partners tables, each checked against
manifest.json) and the predictions (a CSV or Parquet file, or the run's database table).
Writes evaluation.json, evaluation.md and evaluation.html into --out and prints the
Markdown. Anything malformed exits 2, naming the file, row and column; nothing is written."""


def _columns_help() -> str:
    """The predictions' columns and what each means, for the epilog."""
    width = max(map(len, preds.COLUMN_HELP)) + 2
    lines = ["prediction columns (the seed's predictions table, and a backtest's snapshot_date; only partner_id "
             "is required):"]
    for column in preds.COLUMN_HELP:
        text = textwrap.wrap(preds.COLUMN_HELP[column], 96 - width)
        lines += [f"  {column.ljust(width)}{text[0]}"] + [" " * (width + 2) + t for t in text[1:]]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    ap = runfiles.CliParser(prog="python -m simulator.evaluate", description=DESCRIPTION, epilog=_columns_help())
    ap.add_argument("run_dir", type=Path, help="a finished run's directory (python -m simulator hydra.run.dir=DIR)")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", metavar="FILE",
                        help="a CSV or Parquet file of predictions (columns below)")
    source.add_argument("--from-db", action="store_true",
                        help="read the predictions table of the run's database instead")
    ap.add_argument("--model-version", metavar="V", help="grade only this model_version's predictions (one per call)")
    ap.add_argument("--out", type=Path, metavar="DIR",
                    help="where evaluation.json, .md and .html go (default: the run directory)")
    runfiles.add_format_option(ap, "evaluation.md's tables", "evaluation.json")
    ap.add_argument("--budget", type=finite_budget, metavar="B",
                    help="the most the interventions may cost (the world's interventions.costs): the submitted "
                         "policy is cut to it by uplift_score, the oracle solved within it")
    ap.add_argument("--ope", action="store_true",
                    help="estimate the submitted policy's value from the logged first decisions (IPW, SNIPW, DM, "
                         "DR), each beside its exact value")
    ap.add_argument("--record", action="store_true",
                    help="play the outcome window forward: apply each recommended type, draw its outcome, write "
                         "predictions_outcomes.csv (and, with --from-db, the table's outcome columns)")
    ap.add_argument("--replace", action="store_true", help="with --record: record a model version again")
    ap.add_argument("--db-url", metavar="URL",
                    help="the database URL with its password (default: DATABASE_URL, or the run's database)")
    ap.add_argument("--summarize", metavar="SWEEP_DIR",
                    help="instead: every figure of a sweep's graded jobs (their evaluation.json) as mean, SE and "
                         "jobs, into evaluation_summary.json and .md")
    return ap


def summarize_main(argv: list[str]) -> int:
    """``--summarize SWEEP_DIR [--format md|json]``: every figure over a sweep's graded jobs."""
    from . import replications

    ap = runfiles.CliParser(prog="python -m simulator.evaluate --summarize",
                            description="every figure of a sweep's evaluation.json files: mean, SE and jobs")
    ap.add_argument("--summarize", type=Path, required=True, metavar="SWEEP_DIR")
    runfiles.add_format_option(ap, "evaluation_summary.md's table", "evaluation_summary.json")
    args = ap.parse_args(argv)
    try:
        summary = replications.summarize(args.summarize)
    except ConfigError as exc:
        print(exc.render("the sweep"), file=sys.stderr)
        return 2
    replications.write(args.summarize, summary)
    print(json.dumps(summary, indent=2, allow_nan=False) if args.format == "json" else replications.markdown(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--summarize" or a.startswith("--summarize=") for a in argv):
        return summarize_main(argv)
    args = parser().parse_args(argv)
    out_dir = args.out or args.run_dir
    made: list[Path] = []
    try:
        run = load_run(args.run_dir)
        spec, stage, uplift, partners = run.spec, run.stage, run.uplift, run.partners
        predictions, source = read_predictions(args, spec, args.run_dir)
        problems = preds.check(predictions, source, spec, stage.types, pd.Index(uplift[spec.key].astype(str)),
                               run.panel)
        if args.budget is not None and not stage.costs:
            problems.append("--budget: this world declares no interventions.costs")
        if args.record and preds.SNAPSHOT in predictions:
            days = pd.to_datetime(predictions[preds.SNAPSHOT], errors="coerce", format="mixed")
            if days.nunique() > 1:
                problems.append(f"--record records one snapshot at a time (the predictions of one model version, "
                                f"its outcomes seen at the next snapshot): these hold {days.nunique()} "
                                f"({preds.SNAPSHOT})")
            elif not stage.decision_table and (days != pd.Timestamp(spec.feature_date)).any():
                problems.append("--record of a snapshot before the feature date reads its decisions' truth: this "
                                "run wrote none (interventions.decision_table: null)")
        if args.ope and "recommended_intervention" not in predictions:
            problems.append("--ope: the predictions need recommended_intervention (the policy to estimate)")
        if args.record and not problems and already_recorded(args, spec, out_dir, predictions) and not args.replace:
            problems.append(f"--record: model_version {model_version(predictions)!r} is already recorded "
                            f"(add --replace to record it again)")
        if problems:
            raise ConfigError(problems)
        made = claim_out_dir(out_dir)
        logged = first_decisions(spec, stage, runfiles.read_table(args.run_dir, runfiles.read_manifest(args.run_dir),
                                                                 stage.table_name)) if args.ope else None
        result = evaluate(spec, stage, uplift, partners, predictions, args.budget, logged, run.panel, run.snapshots)
        recorded = None
        if args.record:
            decisions = runfiles.read_table(args.run_dir, runfiles.read_manifest(args.run_dir), stage.decision_table) \
                if preds.SNAPSHOT in predictions and stage.decision_table else None
            recorded = record(spec, stage, uplift, predictions, decisions)
            if args.from_db:
                preds.write_outcomes(spec, args.run_dir, recorded, None if "model_version" not in predictions
                                     else model_version(predictions), args.db_url)
            churned = recorded["actual_outcome"] == stage.churned
            result["recorded"] = {"model_version": model_version(recorded), "rows": int(len(recorded)),
                                  "churned": int(churned.sum()), "file": OUTCOMES, "database": bool(args.from_db)}
    except ConfigError as exc:
        release(made)
        print(exc.render("the run or the predictions"), file=sys.stderr)
        return 2
    write_outputs(out_dir, result, recorded)
    print(json.dumps(result, indent=2, allow_nan=False, default=float) if args.format == "json" else markdown(result))
    return 0


if __name__ == "__main__":
    from .secrets import mask_streams

    mask_streams()                             # every line it prints: a --db-url's password hidden
    sys.exit(main())
