"""How learnable a world is, measured without training a model: rank AUCs.

The report and stats.json show each feature's AUC alone and the oracle's (the churn
stage's true probability given each partner's latent state and decisions, an upper bound
for any model of the features). AUC is the Mann-Whitney statistic over average ranks, so
ties count one half, as scikit-learn's ``roc_auc_score`` counts them. Each comes with
Hanley and McNeil's standard error, so that a diff of two runs can say whether an AUC
moved by more than chance.
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


def auc_se(a: float | None, positives: int, negatives: int) -> float | None:
    """Hanley and McNeil's (1982) standard error of an AUC ``a`` over ``positives`` and
    ``negatives`` (None when it is undefined: no AUC, or a class empty)."""
    if a is None or not np.isfinite(a) or not positives or not negatives:
        return None
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives)
    return float(np.sqrt(max(var, 0.0)))


def feature_auc_ses(frame: pd.DataFrame, label: str, aucs: dict[str, float | None]) -> dict[str, float | None]:
    """The standard error of each feature's AUC in ``aucs`` (over its rows with a value)."""
    y = frame[label].to_numpy(dtype=bool)
    out = {}
    for f, a in aucs.items():
        scored = frame[f].notna().to_numpy()
        out[f] = auc_se(a, int((y & scored).sum()), int((~y & scored).sum()))
    return out
