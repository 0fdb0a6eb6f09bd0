"""How learnable a world is, measured without training a model: rank AUCs.

The report and stats.json show each feature's AUC alone and the oracle's (the churn
stage's true probability given each partner's latent state and decisions, an upper bound
for any model of the features). AUC is the Mann-Whitney statistic over average ranks, so
ties count one half, as scikit-learn's ``roc_auc_score`` counts them. Each comes with
Hanley and McNeil's standard error, so that a diff of two runs can say whether an AUC
moved by more than chance.
"""
from __future__ import annotations

import warnings

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


def logistic_scores(x: np.ndarray, y: np.ndarray, fit: np.ndarray, ridge: float = 1e-3,
                    steps: int = 25) -> np.ndarray:
    """The scores of every row of ``x`` (rows x features, NaN: missing) under a logistic
    regression of ``y`` fitted on the rows ``fit`` (Newton's method, a small ridge): each
    feature standardized on those rows, a missing value at the mean with its own indicator."""
    x = np.asarray(x, dtype=float)
    missing = np.isnan(x)
    with warnings.catch_warnings():            # (a feature missing on every row fitted: 0 and 1 below)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.where(fit[:, None], x, np.nan), axis=0)
        sd = np.nanstd(np.where(fit[:, None], x, np.nan), axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    z = np.where(missing, 0.0, (x - mean) / np.where(sd > 0, sd, 1.0))
    z = np.column_stack([np.ones(len(z)), z, missing[:, missing[fit].any(axis=0)]])
    a, t = z[fit], np.asarray(y, dtype=float)[fit]
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - t) + ridge * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + ridge * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return z @ w


def drift(frame: pd.DataFrame, label: str, features: list[str], snapshot: str,
          phases: dict[str, str]) -> tuple[dict, dict]:
    """Per snapshot (rows, churn rate, the AUC of a logistic model fitted on the snapshots
    ``phases`` marks ``before``), that model's AUC before and after, and the drop; and the
    standard errors of the AUCs."""
    day = frame[snapshot].dt.strftime("%Y-%m-%d").to_numpy()
    phase = np.array([phases.get(d, "across") for d in day])
    y = frame[label].to_numpy(dtype=bool)
    x = np.column_stack([frame[f].to_numpy(dtype=float, na_value=np.nan) for f in features])
    fit = phase == "before"
    score = logistic_scores(x, y, fit) if fit.any() and y[fit].any() and not y[fit].all() else np.zeros(len(y))
    rows, ses = [], {}
    for d in sorted(set(day)):
        at = day == d
        a = auc(y[at], score[at])
        rows.append({"snapshot": d, "phase": phases.get(d, "across"), "rows": int(at.sum()),
                     "churn_rate": round(float(y[at].mean()), 4), "model_auc": round(a, 4) if np.isfinite(a) else None})
    out = {"snapshots": rows}
    for name in ("before", "after"):
        at = phase == name
        a = auc(y[at], score[at]) if at.any() else float("nan")
        out[f"model_auc_{name}"] = round(a, 4) if np.isfinite(a) else None
        ses[f"model_auc_{name}"] = auc_se(a, int((y & at).sum()), int((~y & at).sum())) if at.any() else None
    if out["model_auc_before"] is not None and out["model_auc_after"] is not None:
        out["model_auc_drop"] = round(out["model_auc_before"] - out["model_auc_after"], 4)
    return out, ses


def feature_auc_ses(frame: pd.DataFrame, label: str, aucs: dict[str, float | None]) -> dict[str, float | None]:
    """The standard error of each feature's AUC in ``aucs`` (over its rows with a value)."""
    y = frame[label].to_numpy(dtype=bool)
    out = {}
    for f, a in aucs.items():
        scored = frame[f].notna().to_numpy()
        out[f] = auc_se(a, int((y & scored).sum()), int((~y & scored).sum()))
    return out
