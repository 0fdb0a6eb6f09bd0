"""Daily commissions over whole 30-day months (the last three are the 3-month window).

The last three monthly totals are solved from three targets: their mean is the partner's
``avg_commission_3m`` exactly (to the cent), their second difference is the intended
acceleration, and the 90-day least-squares trend of the daily amounts (relative to the
average, per 30 days) is the intended trend in expectation. Earlier months continue the
trend line plus noise scaled so that the standard deviation of all monthly totals is the
intended volatility (never below what the trend itself implies). Each month's total is
spread over its days by Dirichlet shares, to the cent, the rounding left on its last day.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..dates import days_before
from . import Kind, Panel, partner_column
from . import reduce as R

MONTH = 30
RECENT = 3           # months in the average / acceleration / 90-day trend window


def _trend_gap_factor() -> float:
    """m[-1] - m[-3] per unit of relative 90-day trend per 30 days (see module doc)."""
    t = R.centered_time(RECENT * MONTH)
    ends = t.reshape(RECENT, MONTH).sum(axis=1)            # [-900, 0, 900]
    return float(t @ t) / (ends[-1] * MONTH)


def _recent_months(average, accel, trend):
    a = np.clip(accel, -6 * average, 2.9 * average)       # keeps every month >= 0
    gap = np.clip(trend * average * _trend_gap_factor(), -(2 * average + a / 3), 2 * average + a / 3)
    m5 = average - a / 3
    return np.stack([average + a / 6 - gap / 2, m5, average + a / 6 + gap / 2], axis=1), gap


def _early_months(recent, gap, volatility, average, n_early, rng):
    """Earlier months: the trend line back in time, plus noise to the target spread."""
    steps = np.arange(n_early, 0, -1, dtype=float)
    base = np.clip(recent[:, :1] - steps[None, :] * gap[:, None] / 2, 0, None)
    u = np.concatenate([base, recent], axis=1)
    z = np.concatenate([rng.standard_normal(base.shape), np.zeros_like(recent)], axis=1)
    uc, zc = u - u.mean(axis=1, keepdims=True), z - z.mean(axis=1, keepdims=True)
    suu, suz, szz = (uc * uc).sum(1), (uc * zc).sum(1), (zc * zc).sum(1)
    target = (volatility * average) ** 2 * u.shape[1]
    disc = np.maximum(suz ** 2 - szz * (suu - target), 0)
    s = np.where(szz > 0, np.maximum((-suz + np.sqrt(disc)) / np.where(szz > 0, szz, 1), 0), 0)
    return np.clip(base + s[:, None] * z[:, :n_early], 0, None)


def _split(cents, spread, rng):
    """Each month's cents over its 30 days (Dirichlet shares), exactly."""
    m, months = cents.shape
    g = rng.gamma(spread, 1.0, size=(m, months, MONTH))
    share = g / g.sum(axis=2, keepdims=True)
    days = np.floor(share * cents[:, :, None]).astype(np.int64)
    days[:, :, -1] += cents - days.sum(axis=2)
    return days.reshape(m, months * MONTH)


def generate(h, inp, rng, full: bool):
    average = np.asarray(inp["average"], dtype=float)
    recent, gap = _recent_months(average, np.asarray(inp["acceleration"], float), np.asarray(inp["trend"], float))
    total = np.round(average * RECENT * 100).astype(np.int64)       # the average, to the cent
    cents = np.round(recent * 100).astype(np.int64)
    cents[:, 1] = total - cents[:, 0] - cents[:, 2]
    n_early = h.options["months"] - RECENT
    early = np.round(_early_months(recent, gap, np.asarray(inp["volatility"], float), average, n_early,
                                   rng("early-months")) * 100).astype(np.int64)
    spread = h.options["spread"]
    daily = _split(cents, spread, rng("recent-days"))
    if full:
        daily = np.concatenate([_split(early, spread, rng("early-days")), daily], axis=1)
    return {"cents": daily, "early_totals": early}


def reduce(h, b):
    daily = b["cents"]
    recent_days = daily[:, -RECENT * MONTH:]
    months = R.totals(daily, MONTH) if daily.shape[1] == h.options["months"] * MONTH else \
        np.concatenate([b["early_totals"], R.totals(recent_days, MONTH)], axis=1)
    months = months / 100
    return {
        "avg_3m": months[:, -RECENT:].mean(axis=1),
        "second_difference": R.second_difference(months),
        "trend_90d": R.relative_slope(recent_days / 100, MONTH),
        "monthly_std": R.std(months),
    }


def frame(h, b, codes, key, as_of):
    m, k = b["cents"].shape
    days = days_before(as_of, np.arange(k - 1, -1, -1))
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, k), "commission_date": np.tile(days, m),
                         "amount": b["cents"].ravel() / 100})


def schema(h, spec):
    k = h.options["months"] * MONTH
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "commission_date": pa.Column("datetime64[us]", pa.Check.in_range(
            days_before(spec.as_of, k - 1), spec.as_of)),
        "amount": pa.Column("float64", pa.Check.ge(0)),
    }, strict=True, ordered=True, name=h.table)


KIND = Kind(
    name="commissions",
    inputs={
        "average": "mean monthly commission over the last 3 months (realized exactly, to the cent)",
        "acceleration": "intended second difference of the last 3 monthly totals ($ per month^2)",
        "trend": "intended 90-day trend: least-squares slope of daily amounts / their mean, per 30 days",
        "volatility": "intended standard deviation of the monthly totals, as a share of the average",
    },
    options={"months": ("int", 6, RECENT), "spread": ("number", 5, 0.01)},
    aggregates={
        "avg_3m": "mean of the last 3 monthly totals",
        "second_difference": "last 3 monthly totals: m3 - 2 m2 + m1",
        "trend_90d": "least-squares slope of the last 90 daily amounts / their mean, x 30",
        "monthly_std": "standard deviation of all monthly totals (np.std)",
    },
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    measures={"acceleration": "second_difference", "trend": "trend_90d", "average": "avg_3m"},
    panel=Panel("amount", "commission_date", 0, "commission per 30-day month", "$ per partner"),
)
