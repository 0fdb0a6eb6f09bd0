"""How learnable a world is, measured without training a model: rank AUCs.

The report and stats.json show each feature's AUC alone and the oracle's (the churn
stage's true probability given each partner's latent state and decisions, an upper bound
for any model of the features). AUC is the Mann-Whitney statistic over average ranks, so
ties count one half, as scikit-learn's ``roc_auc_score`` counts them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def auc(label: np.ndarray, score: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties one half; rows
    with a missing score are left out (NaN when a class is empty)."""
    y = np.asarray(label, dtype=bool)
    s = np.asarray(score, dtype=float)
    keep = ~np.isnan(s)
    y, s = y[keep], s[keep]
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()   # scipy.stats' rankdata, without its 1 s import
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def feature_aucs(frame: pd.DataFrame, label: str, features: list[str]) -> dict[str, float]:
    """Each numeric or boolean feature's AUC alone, oriented so that 0.5 is chance and 1 a
    perfect ranking either way (a declining feature scores as well as a rising one)."""
    y = frame[label].to_numpy(dtype=bool)
    out = {}
    for f in features:
        col = frame[f]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            continue
        a = auc(y, col.to_numpy(dtype=float, na_value=np.nan))
        out[f] = round(max(a, 1 - a), 4) if np.isfinite(a) else None
    return out
