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
from .kind import LIVE, NO_DATE, Kind, lower_date, partner_column

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


def reduce(h, b):
    late = h.options["late_after_days"]
    d, live, outstanding = b["delays"], b["live"], b["outstanding"]
    latest_late = (d[:, -1] > late) | outstanding
    return {"last_delay_days": d[:, -1], "latest_late": latest_late,
            "late_payouts": ((d > late) & live).sum(axis=1) + (outstanding & (d[:, -1] <= late)),
            "mean_delay": (d * live).sum(axis=1) / live.sum(axis=1)}


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
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "due_date": pa.Column("datetime64[us]", pa.Check.in_range(lower_date(spec, span), spec.feature_date)),
        "paid_at": pa.Column("datetime64[us]", pa.Check.le(spec.feature_date), nullable=True),
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
)
