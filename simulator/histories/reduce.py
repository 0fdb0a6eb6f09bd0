"""Closed-form statistics over histories held as 2-D arrays: one row per partner, one
column per period, oldest first (the last column is the period ending on the partner's
observation end). Periods before a partner joined hold zeros; the ``*_last`` and
``*_where`` forms leave them out.

Every function works on whole blocks of partners at once (matrix products, cumulative
sums, reshapes); none loops over rows. These are the feature definitions of the seed's
section 3, and the known-answer tests check them against sums worked by hand.
"""
from __future__ import annotations

import numpy as np


def centered_time(k: int) -> np.ndarray:
    """0..k-1 minus its mean: the regressor of a least-squares slope."""
    return np.arange(k, dtype=float) - (k - 1) / 2


def slope(y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row against 0, 1, ..., k-1 (``linregress(days, y).slope``)."""
    t = centered_time(y.shape[1])
    return y @ t / (t @ t)


def rolling_sums(x: np.ndarray, window: int) -> np.ndarray:
    """Sums over each run of ``window`` consecutive periods: k - window + 1 columns, the
    last being the sum of the last ``window`` periods."""
    c = np.cumsum(x, axis=1, dtype=float)
    c = np.concatenate([np.zeros((x.shape[0], 1)), c], axis=1)
    return c[:, window:] - c[:, :-window]


def rolling_slope_weights(k: int, window: int, points: int) -> np.ndarray:
    """The weight of each of ``k`` periods in :func:`rolling_slope`: that slope is linear in
    the counts, ``x @ weights``, which is how histories are built to a target trend."""
    t = centered_time(points)
    w = np.zeros(k)
    first = k - window - points + 1
    for j, tj in enumerate(t):                  # points (30) terms, independent of partners
        w[first + j: first + j + window] += tj
    return w / (t @ t)


def rolling_slope(x: np.ndarray, window: int, points: int) -> np.ndarray:
    """Slope of the trailing ``window``-period total over its last ``points`` values, e.g.
    how the 30-day login count moved, per day, over the last 30 days."""
    return slope(rolling_sums(x, window)[:, -points:])


def periods_since_last(x: np.ndarray) -> np.ndarray:
    """Periods between the last non-zero period and the end (0: active in the last one);
    rows with no activity at all get the history's length."""
    k = x.shape[1]
    active = x[:, ::-1] > 0
    return np.where(active.any(axis=1), active.argmax(axis=1), k)


def totals(x: np.ndarray, period: int) -> np.ndarray:
    """Sums over consecutive blocks of ``period`` columns (days -> 30-day months)."""
    m, k = x.shape
    return x.reshape(m, k // period, period).sum(axis=2)


def second_difference(y: np.ndarray) -> np.ndarray:
    """y[-1] - 2 y[-2] + y[-3]: the change of the change (acceleration) over the last three."""
    return y[:, -1] - 2 * y[:, -2] + y[:, -3]


def last_change(y: np.ndarray) -> np.ndarray:
    """y[-1] - y[-2]: e.g. week-over-week change."""
    return y[:, -1] - y[:, -2]


def relative_slope(y: np.ndarray, per: int) -> np.ndarray:
    """Least-squares slope divided by the mean, times ``per`` periods (0 where the mean is
    0): e.g. the 90-day commission trend as a share of the average per 30 days."""
    mean = y.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, slope(y) / mean * per, 0.0)


def relative_slope_last(y: np.ndarray, n: np.ndarray, per: int) -> np.ndarray:
    """:func:`relative_slope` over the last ``n[i]`` columns of each row only (the columns
    before them hold zeros): 0 with fewer than 2 columns or a mean of 0."""
    c = y.shape[1]
    n = np.clip(np.asarray(n, dtype=float), 0, c)
    total = y.sum(axis=1)
    centered = y @ np.arange(c, dtype=float) - (c - (n + 1) / 2) * total    # sum of (t - mean t) y
    ok = n >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = centered / np.where(ok, n * (n * n - 1) / 12, 1)
        mean = total / np.maximum(n, 1)
        return np.where(ok & (mean > 0), slope / mean * per, 0.0)


def std_where(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Population standard deviation of each row's values where ``mask`` (0 with none)."""
    n = np.maximum(mask.sum(axis=1), 1)
    mean = (y * mask).sum(axis=1) / n
    return np.sqrt((((y - mean[:, None]) ** 2) * mask).sum(axis=1) / n)


def mean_where(y: np.ndarray, mask: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Mean of each row's values where ``mask`` (``empty`` with none)."""
    n = mask.sum(axis=1)
    return np.where(n > 0, (y * mask).sum(axis=1) / np.maximum(n, 1), empty)


def std(y: np.ndarray) -> np.ndarray:
    """Population standard deviation of each row (``np.std``, as the seed computes it)."""
    return y.std(axis=1)


def group_mean(values: np.ndarray, groups: np.ndarray, n: int, empty: float = 0.0) -> np.ndarray:
    """Mean of ``values`` per group 0..n-1 (``empty`` for groups with none)."""
    count = np.bincount(groups, minlength=n)
    total = np.bincount(groups, weights=values, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), empty)
