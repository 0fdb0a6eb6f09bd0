"""Weekly rates (e.g. conversion rate): a level with week-to-week noise, and a last week
that differs from the week before by exactly the intended week-over-week change.

The weeks end on each partner's observation end (the last week is its last 7 days). A
week that started before the partner joined is absent (its ``week_start`` would precede
the joining date), so a partner has ``live // 7`` weeks. One with fewer than 2 has no
measured change: ``wow`` is null (a block of zeros would give its age away); ``mean_rate`` is the mean
over its weeks (0 with none).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import reduce as R
from .kind import LIVE, Forward, Kind, days_to_end, live_grid, lower_date, partner_column, upper_date

DECIMALS = 4         # rates are stored to 4 decimals, so the change is exact to 4 too
WEEK = 7
PERIOD = 30          # a horizon's period: the weeks run forward this many days at a time


def _rates(h, inp, count, rng):
    """``count`` weekly rates: the level with week-to-week noise, the last differing from the
    week before by exactly the change."""
    level = np.asarray(inp["level"], dtype=float)
    change = np.round(np.asarray(inp["change"], dtype=float), DECIMALS)
    rates = np.clip(level[:, None] + h.options["noise"] * rng("noise").standard_normal((level.size, count - 1)), 0, 1)
    # the week before the last leaves room for the change within [0, 1]
    rates[:, -1] = np.clip(rates[:, -1], np.maximum(-change, 0), np.minimum(1 - change, 1))
    rates = np.round(rates, DECIMALS)
    return np.concatenate([rates, np.round(rates[:, -1:] + change[:, None], DECIMALS)], axis=1)


def generate(h, inp, rng, full: bool):
    weeks = h.options["weeks"]
    first = weeks - np.clip(np.asarray(inp[LIVE], dtype=np.int64) // WEEK, 0, weeks)   # first whole live week
    return {"rates": _rates(h, inp, weeks, rng), "first": first}


def _view(h, b, today, last, m):
    """The block of the first ``m`` partners on day ``today`` (days from the feature date),
    whose last whole week is week number ``last`` (weeks end on the feature date's weekday:
    week w ends 7w days after it); a week is live when it started on or after the partner
    joined."""
    weeks = h.options["weeks"]
    col = last - b["w0"]
    live_end = WEEK * last - b["joined"][:m] + 1                   # live days up to the last week's end
    return {**b, "today": today, "last": last, "m": m, "rates": b["history"][:m, col - weeks + 1:col + 1],
            "first": weeks - np.clip(live_end // WEEK, 0, weeks)}


def start(h, inp, rng, full: bool, periods: int, exact: bool = False, lag: int = 0, rows: int = 0):
    """:func:`generate` for the weeks ending on or before a horizon's first date (its whole
    weeks, on the feature date's weekday), held in an array with room for every week of
    ``periods`` more periods and ``rows`` partners (the first ones given, the
    others joining later); framed once, from the last block."""
    weeks = h.options["weeks"]
    last = (-lag) // WEEK
    live = np.asarray(inp[LIVE], dtype=np.int64)
    b = generate(h, {**inp, LIVE: live - (-lag - WEEK * last)}, rng, full)
    m = live.size
    history = np.zeros((max(rows, m), weeks + periods * PERIOD // WEEK + 1))
    history[:m, :weeks] = b["rates"]
    joined = np.zeros(history.shape[0], dtype=np.int64)
    joined[:m] = -lag - live + 1                                # the day each joined, from the feature date
    return _view(h, {"history": history, "w0": last - weeks + 1, "joined": joined}, -lag, last, m)


def advance(h, b, inp, rng, full: bool, exact: bool = False, lag: int = 0):
    """The block 30 days later: the whole weeks since the last date, at the partner's level
    as of this one with week-to-week noise, the last differing from the week before by
    exactly this date's change (as :func:`generate` makes them)."""
    last = (-lag) // WEEK
    new, col = last - b["last"], last - b["w0"]
    live = np.asarray(inp[LIVE], dtype=np.int64)
    m = live.size                               # (the partners joined by this date: the first ones)
    b["joined"][:m] = -lag - live + 1
    b["history"][:m, col - new + 1:col + 1] = _rates(h, inp, new, rng)
    return _view(h, b, -lag, last, m)


def frame_history(h, b, codes, key):
    """Every whole live week of the horizon from the last block; ``week_start`` in days
    before that block's end."""
    cols, m = b["last"] - b["w0"] + 1, b["m"]
    start_day = WEEK * (b["w0"] + np.arange(cols)) - (WEEK - 1)          # days from the feature date
    live = start_day[None, :] >= b["joined"][:m, None]
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, live.sum(axis=1)),
                         "week_start": np.broadcast_to((b["today"] - start_day).astype(np.int16), live.shape)[live],
                         h.options["column"]: b["history"][:m, :cols][live]})


def reduce(h, b):
    rates, first = b["rates"], b["first"]
    weeks = rates.shape[1]
    live = live_grid(weeks, first)
    return {"wow": np.where(weeks - first >= 2, np.round(R.last_change(rates), DECIMALS), np.nan),   # (null: < 2 weeks)
            "mean_rate": R.mean_where(rates, live)}


def frame(h, b, codes, key):
    """One row per partner per whole live week; ``week_start`` in days before the end."""
    m, k = b["rates"].shape
    live = live_grid(k, b["first"])
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, k - b["first"]),
                         "week_start": days_to_end(k, m, WEEK, WEEK - 1)[live],
                         h.options["column"]: b["rates"][live]})


def schema(h, spec):
    k = h.options["weeks"]
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "week_start": pa.Column("datetime64[us]", pa.Check.in_range(
            lower_date(spec, WEEK * k), upper_date(spec) - np.timedelta64(WEEK - 1, "D"))),
        h.options["column"]: pa.Column("float64", pa.Check.in_range(0, 1)),
    }, strict=True, ordered=True, name=h.table)


KIND = Kind(
    name="weekly_rates",
    inputs={"level": "the partner's usual rate, 0-1",
            "change": "intended change from the week before to the last week (exact to 4 decimals, "
                      "given 2 live weeks)"},
    options={"weeks": ("int", 8, 2), "noise": ("number", 0.005, 0), "column": ("name", "rate", None)},
    aggregates={"wow": "last week's rate minus the week before's (null with fewer than 2 live weeks)",
                "mean_rate": "mean weekly rate over the live weeks"},
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    span=lambda h: WEEK * h.options["weeks"], dates=("week_start",),
    measures={"change": ("wow", 2 * WEEK), "level": ("mean_rate", WEEK)},
    forward=Forward(start, advance, PERIOD, frame_history=frame_history),
    row_days=WEEK,
    nullable=frozenset({"wow"}),
)
