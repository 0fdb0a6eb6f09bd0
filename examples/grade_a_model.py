"""Train a churn model and a T-learner on a run, write predictions, grade them.

    python -m simulator hydra.run.dir=outputs/demo n_partners=20000
    python examples/grade_a_model.py outputs/demo

The churn model is scikit-learn's HistGradientBoostingClassifier on the 18 features of
``partners_engineered``. The T-learner fits one classifier per intervention type on the
first decisions of the run (``interventions``: the logging policy's randomized trial) and
predicts each partner's churn in that window under each type; the recommended type is the
one it expects to prevent most churn, and ``uplift_score`` how much. Your own model plugs in
the same way: write a CSV or Parquet with the seed's ``predictions`` columns and run
``python -m simulator.evaluate RUN --predictions FILE``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from simulator.evaluate import main as evaluate

FEATURES = ["login_count_30d", "login_trend_30d", "days_since_last_interaction", "dashboard_usage_score",
            "asset_download_count_30d", "revenue_velocity", "conversion_rate_wow", "traffic_quality_score",
            "commission_trend_90d", "payment_delay_flag", "unresolved_ticket_count", "negative_sentiment_score",
            "subnetwork_avg_health_score", "subnetwork_recent_churn_count", "tier_proximity_score",
            "tenure_months", "avg_commission_3m", "commission_volatility"]


def predictions(run: Path) -> pd.DataFrame:
    cohort = pd.read_parquet(run / "partners_engineered.parquet")
    X = cohort[FEATURES].astype(float).to_numpy()
    churn = HistGradientBoostingClassifier(random_state=0).fit(X, cohort["churn_label"])
    # (in-sample for brevity; grade a model trained on another run, or hold partners out)
    iv = pd.read_parquet(run / "interventions.parquet")
    first = iv[iv["intervention_date"] == iv["intervention_date"].min()].set_index("partner_id")
    first = first.loc[cohort["partner_id"]]
    y = (first["outcome"] == "Churned").to_numpy()
    kinds = first["intervention_type"].astype(str).to_numpy()
    per_type = {}
    for kind in sorted(set(kinds)):                    # T-learner: one outcome model per arm
        rows = kinds == kind
        per_type[kind] = HistGradientBoostingClassifier(random_state=0).fit(X[rows], y[rows]).predict_proba(X)[:, 1]
    names = list(per_type)
    p = np.stack([per_type[k] for k in names], axis=1)
    best = p.argmin(axis=1)
    return pd.DataFrame({
        "partner_id": cohort["partner_id"],
        "churn_probability": churn.predict_proba(X)[:, 1].round(4),
        "recommended_intervention": np.array(names)[best],
        "uplift_score": (p[:, names.index("none")] - p[np.arange(len(p)), best]).round(3),
        "model_version": "tlearner-1",
    })


if __name__ == "__main__":
    run = Path(sys.argv[1])
    path = run / "my_predictions.parquet"
    predictions(run).to_parquet(path)
    sys.exit(evaluate([str(run), "--predictions", str(path), *sys.argv[2:]]))
