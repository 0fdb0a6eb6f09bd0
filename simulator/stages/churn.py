"""The churn model: additive log-odds rules, logistic noise, a calibrated intercept.

A partner churns when ``intercept + score + noise > 0`` with standard logistic noise, so
its churn probability is ``sigmoid(intercept + score)``. Calibration picks the intercept
that makes the realized churn rate of the calibrated rows equal the target: the midpoint
between the k-th and (k+1)-th largest ``score + noise`` with k = round(target * rows).
That is the exact root of "realized rate - target" that a root finder would bracket.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ..spec import RuleSpec
from ..expr import evaluate


def score(rules: tuple[RuleSpec, ...], env: Mapping[str, object], n: int) -> np.ndarray:
    """Sum of weight * rule value per row; a rule on a missing (null) value adds nothing."""
    total = np.zeros(n)
    for rule in rules:
        value = np.asarray(evaluate(rule.expr, env, n), dtype=float)
        total += rule.weight * np.nan_to_num(value, nan=0.0)
    return total


def calibrate(latent: np.ndarray, target_rate: float) -> float:
    """The intercept b such that exactly round(target * len) rows have latent + b > 0."""
    m = latent.size
    k = int(round(target_rate * m))
    if m == 0:
        return 0.0
    ordered = np.sort(latent)[::-1]
    if k <= 0:
        return float(-ordered[0] - 1.0)
    if k >= m:
        return float(-ordered[-1] + 1.0)
    return float(-(ordered[k - 1] + ordered[k]) / 2.0)


def probability(scores: np.ndarray, intercept: float) -> np.ndarray:
    """The model's churn probability: sigmoid(intercept + score)."""
    return 1.0 / (1.0 + np.exp(-(scores + intercept)))
