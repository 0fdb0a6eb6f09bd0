"""Daily commissions over whole 30-day months (the last three are the 3-month window),
ending on each partner's observation end.

The last three monthly totals are solved from three targets: their mean is the partner's
``avg_commission_3m`` exactly (to the cent), their second difference is the intended
acceleration, and the 90-day least-squares trend of the daily amounts (relative to the
average, per 30 days) is the intended trend in expectation. Earlier months continue the
trend line plus noise scaled so that the standard deviation of all monthly totals is the
intended volatility (never below what the trend itself implies). Each month's total is
spread over its days by Dirichlet shares, to the cent, the rounding left on its last day.

Young partners. Days before a partner joined have no commission and no rows; a month
with at least one live day is a *live month*, and its *rate* is its total per live day
times 30 (a whole month's rate is its total). The generator solves the targets above as
rates, so the daily amounts run at one rate across a partial first month, and shifts the
live recent months' rates together (which keeps their differences) until the mean of
their totals is ``avg_commission_3m`` to the cent (a partner of one day earns it that
day). Aggregates see live periods only, as a query over the partner's rows would; months
are compared at their rates; and a statistic that needs more live periods than the
partner has is null (NaN), not 0: a young partner's change is not measured, and a block
of exact zeros would give its age away (YAML may fill it: ``where(isnull(x), 0, x)``):

- ``avg_3m``: the mean of the live months' totals among the last three (a partial one
  counts as a month).
- ``second_difference``: of the last three months' rates; null unless all three are live.
- ``trend_90d``: the least-squares slope over the live days among the last 90, relative
  to their mean daily amount, per 30 days; null with fewer than 30 live days (fewer days
  give a slope of noise). Two live recent months get their trend from their difference.
- ``monthly_std``: the standard deviation (``np.std``) of the live months' rates; null
  with fewer than two live months; the noise of the live earlier months is scaled to the
  intended volatility over those.

A partner with 90 live days or more (three whole recent months) realizes the drawn
acceleration and trend as an older one does; stats.json measures them over those.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import reduce as R
from .calendar import day_weights
from .kind import LIVE, Forward, Kind, Panel, days_to_end, first_live, live_grid, lower_date, partner_column, upper_date

MONTH = 30
RECENT = 3           # months in the average / acceleration / 90-day trend window


def _trend_gap_factor(months: int) -> float:
    """m[-1] - m[-months] per unit of relative trend per 30 days, over ``months`` full
    months (the middle month of three has no weight in the slope)."""
    t = R.centered_time(months * MONTH)
    ends = t.reshape(months, MONTH).sum(axis=1)            # e.g. [-900, 0, 900]
    return float(t @ t) / (ends[-1] * MONTH)


def _recent_months(average, accel, trend, live_recent):
    """The last three monthly rates (dollars per 30 days): three live months as the module
    says; two with the average as their mean and the trend as their difference; one the
    average. Months before joining are 0. Also the trend gap, end to end, the earlier
    months follow."""
    a = np.clip(accel, -6 * average, 2.9 * average)       # keeps every month >= 0
    gap = np.clip(trend * average * _trend_gap_factor(3), -(2 * average + a / 3), 2 * average + a / 3)
    m5 = average - a / 3
    three = np.stack([average + a / 6 - gap / 2, m5, average + a / 6 + gap / 2], axis=1)
    gap2 = np.clip(trend * average * _trend_gap_factor(2), -2 * average, 2 * average)
    two = np.stack([np.zeros_like(average), average - gap2 / 2, average + gap2 / 2], axis=1)
    one = np.stack([np.zeros_like(average), np.zeros_like(average), average], axis=1)
    n = live_recent[:, None]
    return np.where(n == 3, three, np.where(n == 2, two, one)), gap


def _early_months(recent, gap, volatility, average, n_early, live_months, rng):
    """Earlier months: the trend line back in time, plus noise to the target spread over
    the live months (months before joining stay 0)."""
    steps = np.arange(n_early, 0, -1, dtype=float)
    base = np.clip(recent[:, :1] - steps[None, :] * gap[:, None] / 2, 0, None) * live_months[:, :n_early]
    u = np.concatenate([base, recent], axis=1)
    z = np.concatenate([rng.standard_normal(base.shape), np.zeros_like(recent)], axis=1) * live_months
    n = np.maximum(live_months.sum(axis=1), 1)
    uc = (u - (u.sum(axis=1) / n)[:, None]) * live_months
    zc = (z - (z.sum(axis=1) / n)[:, None]) * live_months
    suu, suz, szz = (uc * uc).sum(1), (uc * zc).sum(1), (zc * zc).sum(1)
    target = (volatility * average) ** 2 * n
    disc = np.maximum(suz ** 2 - szz * (suu - target), 0)
    s = np.where(szz > 0, np.maximum((-suz + np.sqrt(disc)) / np.where(szz > 0, szz, 1), 0), 0)
    return np.clip(base + s[:, None] * z[:, :n_early], 0, None)


def _split(cents, spread, live, rng):
    """Each month's cents over its live days (Dirichlet shares, times each day's weight
    when ``live`` holds the calendar's), exactly: a month's last day is live whenever any
    of it is, and takes the rounding."""
    m, months = cents.shape
    # standard_gamma: the values of gamma(spread, 1.0), without its broadcasting (a third
    # faster); then in place, the same operations in the same order
    g = rng.standard_gamma(spread, size=(m, months, MONTH))
    g *= live.reshape(m, months, MONTH)
    g /= np.where((total := g.sum(axis=2, keepdims=True)) > 0, total, 1)
    g *= cents[:, :, None]
    days = np.floor(g, out=g).astype(np.int64)
    days[:, :, -1] += cents - days.sum(axis=2)
    return days.reshape(m, months * MONTH)


def _live_months(first, months):
    """partners x months: True for months with at least one live day."""
    return (MONTH * np.arange(1, months + 1))[None, :] > np.asarray(first)[:, None]


def _live_share(first, months):
    """partners x months: each month's share of live days (0 before joining, 1 after)."""
    return np.clip(MONTH * np.arange(1, months + 1)[None, :] - np.asarray(first)[:, None], 0, MONTH) / MONTH


def _state(h, inp, live_days):
    """The grid's live days and months, and the three recent monthly rates of the inputs'
    state (:func:`_recent_months`)."""
    months = h.options["months"]
    first = first_live(months * MONTH, live_days)
    live_months, share = _live_months(first, months), _live_share(first, months)
    live_recent = live_months[:, -RECENT:].sum(axis=1)
    average = np.asarray(inp["average"], dtype=float)
    rates, gap = _recent_months(average, np.asarray(inp["acceleration"], float), np.asarray(inp["trend"], float),
                                live_recent)
    return first, live_grid(months * MONTH, first), live_months, share, live_recent, average, rates, gap


def generate(h, inp, rng, full: bool):
    months = h.options["months"]
    first, live, live_months, share, live_recent, average, rates, gap = _state(h, inp, inp[LIVE])
    # a partial month earns its live share of its rate: shift the live rates (>= 0) to the exact mean
    recent_share = share[:, -RECENT:]
    rates = rates + ((average * live_recent - (rates * recent_share).sum(axis=1))
                     / recent_share.sum(axis=1))[:, None] * live_months[:, -RECENT:]
    recent = rates * recent_share
    total = np.round(average * live_recent * 100).astype(np.int64)   # the average over live months, to the cent
    cents = np.round(recent * 100).astype(np.int64)
    absorb = np.where(live_recent == 3, 1, 2)                         # the month that takes the rounding
    rows = np.arange(cents.shape[0])
    cents[rows, absorb] = 0
    cents[rows, absorb] = total - cents.sum(axis=1)
    n_early = months - RECENT
    # (earlier months are live only after three whole recent months, whose scale is 1)
    early = np.round(_early_months(rates, gap, np.asarray(inp["volatility"], float), average, n_early,
                                   live_months, rng("early-months")) * share[:, :n_early] * 100).astype(np.int64)
    spread = h.options["spread"]
    cal = day_weights(h, inp, months * MONTH)
    days = live if cal is None else live * cal                       # (a day's share of its month)
    daily = _split(cents, spread, days[:, -RECENT * MONTH:], rng("recent-days"))
    if full:
        daily = np.concatenate([_split(early, spread, days[:, :-RECENT * MONTH], rng("early-days")), daily], axis=1)
    return {"cents": daily, "early_totals": early, "first": first}


def _scaled_to(months: np.ndarray, total: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Per partner and month, the factor that brings its months to ``total`` together: one
    scale for all, each month held at its ``cap`` (a month above it would lift an earlier
    date's average over the average's cap), found by bisection; where the caps cannot hold
    ``total`` (none can when one is infinite), one plain scale."""
    lo, hi = np.zeros(total.size), np.full(total.size, 1.0)
    while ((grow := np.minimum(months * hi[:, None], cap).sum(axis=1) < total) & (hi < 1e12)).any():
        hi = np.where(grow, hi * 2, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        low = np.minimum(months * mid[:, None], cap).sum(axis=1) < total
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    capped = np.minimum(months * hi[:, None], cap)
    plain = total / np.maximum(months.sum(axis=1), 1)
    fits = cap.sum(axis=1) >= total
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(fits[:, None], np.where(months > 0, capped / months, 0.0), plain[:, None])


def start(h, inp, rng, full: bool, periods: int, exact: bool = False, lag: int = 0, rows: int = 0):
    """:func:`generate` (its whole grid) at a horizon's first date, nothing for a partner
    not joined yet, its daily cents held in an array with room for ``periods`` more months
    and ``rows`` partners (the first ones given, the others joining later): each later
    date's block is a view of it (:func:`advance`)."""
    months = h.options["months"]
    k = months * MONTH
    live = np.asarray(inp[LIVE], dtype=np.int64)
    b = generate(h, {**inp, LIVE: np.maximum(live, 1)}, rng, True)
    # a month at most the cap, as every later one (one snapshot's recent months spread around
    # its average can pass it; here the average is not yet a snapshot's, and a later one's
    # average must stay under the cap)
    days = b["cents"].reshape(live.size, months, MONTH)
    totals = days.sum(axis=2)
    over = totals > h.options["cap"] * 100
    if over.any():
        days = np.where(over[:, :, None], np.floor(days * (h.options["cap"] * 100 / np.maximum(totals, 1))[:, :, None]),
                        days).astype(np.int64)
    history = np.zeros((max(rows, live.size), k + periods * MONTH), dtype=np.int32)   # (cents a day: well inside)
    history[:live.size, :k] = days.reshape(live.size, k) * (live >= 1)[:, None]
    # each month's total beside its days, so a date's reduce does not sum them all again
    totals = np.zeros((history.shape[0], months + periods), dtype=np.int64)
    totals[:live.size, :months] = R.totals(history[:live.size, :k], MONTH)
    return {"cents": history[:live.size, :k], "first": first_live(k, np.maximum(live, 0)), "history": history,
            "offset": 0, "totals": totals, "months": totals[:live.size, :months]}


def advance(h, b, inp, rng, full: bool, exact: bool = False, lag: int = 0):
    """The block 30 days later: the new month earns what the date's state does in the last
    month of its three recent ones (:func:`_recent_months`: the average, plus the
    acceleration's and the trend's share; at most ``cap``, the average's own), at its live
    share, spread over its live days.
    ``exact`` (at the feature date, a boolean per row; False elsewhere): those rows' last
    three months' mean is the average to the cent, as :func:`generate` makes it, the three
    scaled together (so their shape, the trend, is the state's), the rounding on the date
    itself."""
    months_n = h.options["months"]
    k = months_n * MONTH
    history, offset, totals = b["history"], b["offset"] + MONTH, b["totals"]
    m = np.asarray(inp[LIVE]).size                   # (the partners joined by this date: the first ones)
    x = history[:m, offset:offset + k]
    months = totals[:m, offset // MONTH:offset // MONTH + months_n]
    first, live, _, share, live_recent, average, rates, _ = _state(h, inp, np.maximum(np.asarray(inp[LIVE]), 0))
    # (at most the cap of a 3-month average: months under it keep every average under it)
    cents = np.round(np.minimum(rates[:, -1], h.options["cap"]) * share[:, -1] * 100).astype(np.int64)
    cal = day_weights(h, inp, MONTH)
    days = live[:, k - MONTH:] if cal is None else live[:, k - MONTH:] * cal
    x[:, k - MONTH:] = _split(cents[:, None], h.options["spread"], days, rng("month-days"))
    months[:, -1] = cents                        # (the split's days add up to it)
    rows = np.flatnonzero(np.broadcast_to(np.asarray(exact, dtype=bool), (m,)))
    if rows.size:                               # their three months scaled together to the drawn mean
        total = np.round(average[rows] * live_recent[rows] * 100).astype(np.int64)   # as generate: to the cent
        recent = x[rows, k - RECENT * MONTH:]
        cap = h.options["cap"] * share[rows, -RECENT:] * 100
        cap[:, -1] = np.inf                      # (the date's own month: its average is the drawn one)
        factor = _scaled_to(months[rows, -RECENT:].astype(float), total, cap)
        recent = np.floor(recent.reshape(-1, RECENT, MONTH) * factor[:, :, None]).reshape(recent.shape)
        recent[:, -1] += total - recent.sum(axis=1)       # the date itself: a live day of every joined partner
        x[rows, k - RECENT * MONTH:] = recent
        months[rows, -RECENT:] = R.totals(recent, MONTH)
    return {"cents": x, "first": first, "history": history, "offset": offset, "totals": totals, "months": months}


def reduce(h, b):
    months_n = h.options["months"]
    daily, first = b["cents"], b["first"]
    recent_days = daily[:, -RECENT * MONTH:]
    if "months" in b:                                               # (a horizon's: kept beside the days)
        months = b["months"]
    elif daily.shape[1] == months_n * MONTH:
        months = R.totals(daily, MONTH)
    else:
        months = np.concatenate([b["early_totals"], R.totals(recent_days, MONTH)], axis=1)
    months = months / 100
    share = _live_share(first, months_n)
    live = share > 0
    rates = months / np.where(live, share, 1)                       # per 30 days: a partial month scaled up
    live_recent = live[:, -RECENT:].sum(axis=1)
    live_days = months_n * MONTH - first
    return {
        "avg_3m": months[:, -RECENT:].sum(axis=1) / np.maximum(live_recent, 1),     # (0 before joining)
        "second_difference": np.where(live_recent == RECENT, R.second_difference(rates), np.nan),
        "trend_90d": np.where(live_days >= MONTH, R.relative_slope_last(recent_days / 100, live_days, MONTH), np.nan),
        "monthly_std": np.where(live.sum(axis=1) >= 2, R.std_where(rates, live), np.nan),
    }


def frame(h, b, codes, key, last: int | None = None):
    """One row per partner per live day (``last``: of the last month only, a horizon's new
    one); ``commission_date`` in days before the end."""
    m, k = b["cents"].shape
    lo = 0 if last is None else k - last
    live = live_grid(k, b["first"])[:, lo:]
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, live.sum(axis=1)),
                         "commission_date": days_to_end(k, m)[:, lo:][live], "amount": b["cents"][:, lo:][live] / 100})


def schema(h, spec):
    k = h.options["months"] * MONTH
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "commission_date": pa.Column("datetime64[us]", pa.Check.in_range(lower_date(spec, k), upper_date(spec))),
        "amount": pa.Column("float64", pa.Check.ge(0)),
    }, strict=True, ordered=True, name=h.table)


KIND = Kind(
    name="commissions",
    inputs={
        "average": "mean monthly commission over the last 3 months (its live ones; realized exactly, to the cent)",
        "acceleration": "intended second difference of the last 3 monthly totals ($ per month^2)",
        "trend": "intended 90-day trend: least-squares slope of daily amounts / their mean, per 30 days",
        "volatility": "intended standard deviation of the monthly totals, as a share of the average",
    },
    options={"months": ("int", 6, RECENT), "spread": ("number", 5, 0.01), "cap": ("number", float("inf"), 0)},
    aggregates={
        "avg_3m": "mean of the last 3 monthly totals (the live ones)",
        "second_difference": "last 3 monthly rates: m3 - 2 m2 + m1 (null unless all 3 are live)",
        "trend_90d": "least-squares slope of the live days' amounts among the last 90 / their mean, x 30 "
                     "(null with fewer than 30 live days)",
        "monthly_std": "standard deviation of the live months' rates (np.std; null with fewer than 2)",
    },
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    span=lambda h: h.options["months"] * MONTH, dates=("commission_date",),
    measures={"acceleration": ("second_difference", RECENT * MONTH), "trend": ("trend_90d", RECENT * MONTH),
              "average": ("avg_3m", 1)},
    panel=Panel("amount", "commission_date", 0, "commission per 30-day month", "$ per partner"),
    forward=Forward(start, advance, MONTH, rewrites=True, inexact=frozenset({"avg_3m"})),
    calendar=True,
    nullable=frozenset({"second_difference", "trend_90d", "monthly_std"}),
)
