"""The seed's learning loop as an arena policy: predict, act, see the outcome at T+30,
retrain, predict again.

    python -m simulator.arena RUN_DIR --policy examples/arena_policy.py:policy --budget 20000

Before the first period it trains a T-learner (one gradient-boosted classifier per
intervention type) on the run's last logged decisions whose outcome is known at the start
(in a horizon, the previous snapshot's), each one's features (features_panel at its date),
the type the logging policy gave, and the outcome, each row weighted by 1 / its logging
propensity (the default policy calls the high-value partners: unweighted, each type's
model would learn the partners it was given to, not the type). With none known (one
snapshot, or a horizon's first) it trains on the logged decisions of the start itself,
whose outcomes are the first period the arena then plays: a look-ahead, as the seed's loop
has nothing earlier to learn from. Each period it predicts every active partner's
churn under each type and spends the budget where a type prevents the most churn per unit
of cost (emails are cheap, calls dear: interventions.costs). A partner it saw at one
period and does not see at the next churned; its decisions and those outcomes join the
training rows, and the models are fitted again. (It learns from features_panel, the
warehouse's view, faults and all, and the arena gives it the true features: a model would
meet the same gap between its training table and a clean feed.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from simulator import load_run

COSTS = {"call": 25.0, "email": 1.0, "none": 0.0}   # the default world's interventions.costs
BUDGET = 20_000.0                                    # the most one period may cost, without --budget
STATE: dict = {}                                     # what the loop has learned, kept between periods


def _fit(rows: pd.DataFrame, features: list[str]) -> dict:
    models = {}
    for kind, group in rows.groupby("intervention_type"):
        model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, random_state=0)
        models[kind] = model.fit(group[features], group["churned"], sample_weight=group["weight"])
    return models


def _start(run_dir: str, date: str) -> None:
    run = load_run(run_dir)
    features = list(run.features)
    logged = run["interventions"]
    # the last logged decisions whose outcome (T+30) is known at the start: in a horizon, the
    # previous snapshot's; with none (one snapshot, or the first), the start's own (a look-ahead)
    dates = logged["intervention_date"]
    seen = dates[dates + pd.Timedelta(days=run.spec.timeline.episode_days) <= pd.Timestamp(date)]
    known = logged[dates == (seen.max() if len(seen) else dates.min())]
    panel = run["features_panel"].rename(columns={"snapshot_date": "intervention_date"})   # each one's features
    rows = known.merge(panel[["partner_id", "intervention_date", *features]], on=["partner_id", "intervention_date"])
    rows = rows.assign(churned=(rows["outcome"] == "Churned").astype(int), weight=1 / rows["propensity"],
                       intervention_type=rows["intervention_type"].astype(str))[
        ["intervention_type", "churned", "weight", *features]]
    STATE.update(run=run_dir, features=features, rows=rows, models=_fit(rows, features), last=None)


def policy(features: pd.DataFrame) -> pd.DataFrame:
    if STATE.get("run") != features.attrs["run_dir"] or features.attrs["period"] == 0:
        _start(features.attrs["run_dir"], features.attrs["date"])
    names = STATE["features"]
    last = STATE["last"]
    if last is not None:                              # T+30: who of those acted on last period left
        left = ~last["partner_id"].isin(features["partner_id"])
        seen = last.assign(churned=left.astype(int), weight=1.0)[["intervention_type", "churned", "weight", *names]]
        STATE["rows"] = pd.concat([STATE["rows"], seen], ignore_index=True)
        STATE["models"] = _fit(STATE["rows"], names)
    x = features[names]
    p = pd.DataFrame({kind: model.predict_proba(x)[:, 1] for kind, model in STATE["models"].items()})
    gain = {kind: p["none"] - p[kind] for kind in ("call", "email")}
    best = np.where(gain["call"] / COSTS["call"] > gain["email"] / COSTS["email"], "call", "email")
    benefit = np.where(best == "call", gain["call"], gain["email"])
    cost = pd.Series(best).map(COSTS).to_numpy(dtype=float)
    order = np.argsort(-benefit / cost, kind="stable")
    budget = features.attrs.get("budget") or BUDGET
    take = order[(np.cumsum(cost[order]) <= budget) & (benefit[order] > 0)]
    chosen = pd.DataFrame({"partner_id": features["partner_id"].to_numpy()[take], "intervention_type": best[take]})
    STATE["last"] = features.iloc[take].assign(intervention_type=best[take])[["partner_id", "intervention_type",
                                                                               *names]]
    # the partners left alone are outcomes too (of `none`)
    rest = np.setdiff1d(np.arange(len(features)), take)
    STATE["last"] = pd.concat([STATE["last"], features.iloc[rest].assign(intervention_type="none")[
        ["partner_id", "intervention_type", *names]]], ignore_index=True)
    return chosen
