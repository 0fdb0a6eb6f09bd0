"""Monthly payouts with their delays: the latest payout is late (more than
``late_after_days``) exactly for the partners whose delay flag is set.

Payouts are due every 30 days counting back from 30 days before each partner's
observation end; those due before it joined are absent. A partner of 30 days or fewer
has one payout, due on its first day, so every partner's latest payout is on a live day.
Every payout is paid by the observation end, but for one case: a flagged partner whose
latest payout is due too recently to be paid late by then (fewer than
``late_after_days + 1`` days before the end: a partner of a few days) has it still
*outstanding* (``paid_at`` null, ``delay_days`` the days it has been overdue), and an
outstanding payout counts as late. That keeps the flag exact at every age without
reading past the observation end.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..dates import DAY
from .kind import LIVE, NO_DATE, Forward, Kind, lower_date, partner_column, upper_date

MONTH = 30
MAX_DELAY = 28       # a payout is made within four weeks of its due date


def _due(months: int, live: np.ndarray) -> np.ndarray:
    """partners x months: each payout's due day, in days before the observation end
    (oldest first); the latest one of a partner of 30 days or fewer is due on its first."""
    due = np.tile(MONTH * np.arange(months, 0, -1), (live.size, 1))
    due[:, -1] = np.minimum(due[:, -1], live - 1)
    return due


def generate(h, inp, rng, full: bool):
    months, late = h.options["months"], h.options["late_after_days"]
    flag = np.asarray(inp["late"], dtype=bool)
    live = np.maximum(np.asarray(inp[LIVE], dtype=np.int64), 1)
    m = flag.size
    due = _due(months, live)
    room = due[:, -1]                                      # days from the latest due date to the end
    usual = np.floor(rng("usual").exponential(h.options["typical_delay"], (m, months)))
    delays = np.minimum(usual, MAX_DELAY).astype(np.int64)
    top = np.minimum(room, MAX_DELAY)
    latest_late = late + 1 + np.floor(rng("late").random(m) * (top - late)).astype(np.int64)
    outstanding = flag & (room <= late)
    delays[:, -1] = np.where(flag, np.where(outstanding, room, latest_late), np.minimum(delays[:, -1], np.minimum(late, room)))
    return {"delays": delays, "due": due, "live": due <= (live - 1)[:, None], "outstanding": outstanding}


def start(h, inp, rng, full: bool, periods: int, exact: bool = False, lag: int = 0, rows: int = 0):
    """:func:`generate` at a horizon's first date (a partner not joined yet has no payout),
    its payouts held in arrays with room for one more per period and ``rows`` partners (the
    first ones given, the others joining later): each date's block is a view of its last
    ``months`` (:func:`advance`), and the history is framed once, from the last block
    (:func:`frame_history`), with every payout as it finally stands."""
    b = generate(h, inp, rng, full)
    months = h.options["months"]
    m = b["delays"].shape[0]
    joined = np.asarray(inp[LIVE], dtype=np.int64) >= 1
    slots, size = months + periods, max(rows, m)
    shared = {"day": np.zeros((size, slots), dtype=np.int64), "delays": np.zeros((size, slots), dtype=np.int64),
              "live": np.zeros((size, slots), dtype=bool), "outstanding": np.zeros((size, slots), dtype=bool)}
    shared["day"][:m, :months] = -b["due"]                  # days from the horizon's first date
    shared["delays"][:m, :months] = b["delays"]
    shared["live"][:m, :months] = b["live"] & joined[:, None]
    shared["outstanding"][:m, months - 1] = b["outstanding"] & joined
    return _view(shared, 0, 0, months, m)


def _view(shared, offset, today, months, m):
    """The block of the first ``m`` partners' ``months`` payouts from slot ``offset``, on
    day ``today``."""
    cols = slice(offset, offset + months)
    return {"shared": shared, "offset": offset, "today": today, "m": m, "due": today - shared["day"][:m, cols],
            "delays": shared["delays"][:m, cols], "live": shared["live"][:m, cols],
            "outstanding": shared["outstanding"][:m, offset + months - 1]}   # (the latest's, as generate's)


def advance(h, b, inp, rng, full: bool, exact: bool = False, lag: int = 0):
    """The block 30 days later: the payout outstanding at the last date paid (late), and a
    new one due the day after the last date (on its first day for a partner that joined
    since; none before joining), late exactly when the flag is set, as :func:`generate`
    makes the latest one."""
    months, late = h.options["months"], h.options["late_after_days"]
    shared, offset, today = b["shared"], b["offset"] + 1, b["today"] + MONTH
    slot = offset + months - 1
    live = np.asarray(inp[LIVE], dtype=np.int64)
    m = live.size                               # (the partners joined by this date: the first ones)
    prev = shared["outstanding"][:m, slot - 1]
    paid = late + 1 + np.floor(rng("paid").random(m) * (MAX_DELAY - late)).astype(np.int64)
    shared["delays"][:m, slot - 1] = np.where(prev, np.maximum(shared["delays"][:m, slot - 1], paid),
                                              shared["delays"][:m, slot - 1])
    shared["outstanding"][:m, slot - 1] = False
    flag = np.asarray(inp["late"], dtype=bool) & (live >= 1)
    # due the day after the last date (so the latest payout as of any day is the last one due by
    # then), or on its first day for a partner that joined since
    room = np.clip(np.minimum(MONTH - 1, live - 1), 0, None)   # the new payout's days before this date
    usual = np.minimum(np.floor(rng("usual").exponential(h.options["typical_delay"], m)), MAX_DELAY).astype(np.int64)
    top = np.minimum(room, MAX_DELAY)
    latest_late = late + 1 + np.floor(rng("late").random(m) * (top - late)).astype(np.int64)
    outstanding = flag & (room <= late)
    shared["day"][:m, slot] = today - room
    shared["delays"][:m, slot] = np.where(flag, np.where(outstanding, room, latest_late),
                                          np.minimum(usual, np.minimum(late, room)))
    shared["live"][:m, slot] = live >= 1
    shared["outstanding"][:m, slot] = outstanding
    return _view(shared, offset, today, months, m)


def frame_history(h, b, codes, key):
    """Every payout of the horizon from the last block (as it finally stands: paid when it
    was paid), dates in days before that block's end. No ``delay_days``: a delay is
    ``paid_at - due_date`` once paid, and while a payout is outstanding its days overdue
    depend on the day one looks (a column would tell a snapshot what comes after it)."""
    s, m = b["shared"], b["m"]
    live = s["live"][:m]
    due = b["today"] - s["day"][:m]
    paid = np.where(s["outstanding"][:m], NO_DATE, due - s["delays"][:m])
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, live.sum(axis=1)),
                         "due_date": due[live].astype(np.int16), "paid_at": paid[live].astype(np.int16)})


def reduce(h, b):
    late = h.options["late_after_days"]
    d, live, outstanding = b["delays"], b["live"], b["outstanding"]
    latest_late = (d[:, -1] > late) | outstanding
    return {"last_delay_days": d[:, -1], "latest_late": latest_late,
            "late_payouts": ((d > late) & live).sum(axis=1) + (outstanding & (d[:, -1] <= late)),
            "mean_delay": (d * live).sum(axis=1) / np.maximum(live.sum(axis=1), 1)}   # (0 before joining)


def frame(h, b, codes, key):
    """One row per payout due on a live day; dates in days before the end (paid_at:
    NO_DATE while outstanding)."""
    live, due, delays = b["live"], b["due"], b["delays"]
    paid = due - delays
    paid[:, -1] = np.where(b["outstanding"], NO_DATE, paid[:, -1])
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, live.sum(axis=1)),
                         "due_date": due[live].astype(np.int16), "paid_at": paid[live].astype(np.int16),
                         "delay_days": delays[live]})


def schema(h, spec):
    span = MONTH * h.options["months"]
    if spec.timeline is not None and spec.timeline.snapshots > 1:     # a horizon: no delay_days (frame_history)
        return pa.DataFrameSchema({
            spec.key: pa.Column("category"),
            "due_date": pa.Column("datetime64[us]", pa.Check.in_range(lower_date(spec, span), upper_date(spec))),
            "paid_at": pa.Column("datetime64[us]", pa.Check.le(upper_date(spec)), nullable=True),
        }, strict=True, ordered=True, name=h.table, checks=[
            pa.Check(lambda df: df["paid_at"].isna() | ((df["paid_at"] >= df["due_date"])
                                                         & (df["paid_at"] - df["due_date"] <= MAX_DELAY * DAY)),
                     name=f"paid on or after its due date, within {MAX_DELAY} days (null while outstanding)")])
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "due_date": pa.Column("datetime64[us]", pa.Check.in_range(lower_date(spec, span), upper_date(spec))),
        "paid_at": pa.Column("datetime64[us]", pa.Check.le(upper_date(spec)), nullable=True),
        "delay_days": pa.Column("int64", pa.Check.in_range(0, MAX_DELAY)),
    }, strict=True, ordered=True, name=h.table, checks=[
        pa.Check(lambda df: df["paid_at"].isna() | (df["paid_at"] - df["due_date"] == df["delay_days"] * DAY),
                 name="paid_at = due_date + delay_days (null while outstanding)"),
    ])


KIND = Kind(
    name="payouts",
    inputs={"late": "whether the latest payout is late (realized exactly)"},
    options={"months": ("int", 6, 1), "late_after_days": ("int", 7, 0), "typical_delay": ("number", 2, 0)},
    aggregates={"last_delay_days": "days the latest payout was late (overdue so far, while outstanding)",
                "latest_late": "the latest payout was paid more than late_after_days late, or is outstanding",
                "late_payouts": "payouts paid more than late_after_days late, or outstanding",
                "mean_delay": "mean delay over all payouts"},
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    span=lambda h: MONTH * h.options["months"], dates=("due_date", "paid_at"),
    forward=Forward(start, advance, MONTH, frame_history=frame_history),
)
