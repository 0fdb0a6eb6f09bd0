"""Train a churn model and a T-learner on a run, write predictions, grade them.

    python -m simulator hydra.run.dir=outputs/demo n_partners=20000
    python examples/grade_a_model.py outputs/demo

The churn model is scikit-learn's HistGradientBoostingClassifier on the run's features
(``simulator.load_run``: the 18 of ``partners_engineered``, named by the run's spec). The
T-learner fits one classifier per intervention type on the first decisions of the run
(``interventions``: the logging policy's, targeted unless ``experiment=randomized``; its
propensities are not used here) and predicts each partner's churn
in that window under each type; the recommended type is the one it expects to prevent most
churn, and ``uplift_score`` how much. Your own model plugs in the same way: write a CSV or
Parquet with the seed's ``predictions`` columns and run
``python -m simulator.evaluate RUN --predictions FILE``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from simulator import load_run
from simulator.evaluate import main as evaluate


def predictions(run_dir: Path) -> pd.DataFrame:
    run = load_run(run_dir)
    key = run.spec.key
    features, label = run.X_y()                        # the features only, indexed by the key
    X = features.astype(float).to_numpy()              # (a master's network features; NaN for the rest)
    churn = HistGradientBoostingClassifier(random_state=0).fit(X, label)
    # (in-sample for brevity; grade a model trained on another run, or hold partners out)
    iv = run["interventions"]
    first = iv[iv["intervention_date"] == iv["intervention_date"].min()].set_index(key)
    first = first.loc[features.index]
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
        key: features.index.astype(str),
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
