"""Monthly payouts with their delays: the latest payout is late (more than
``late_after_days``) exactly for the partners whose delay flag is set."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..dates import DAY, days_before
from . import Kind, partner_column

MONTH = 30
MAX_DELAY = 28       # a payout is made within four weeks of its due date


def generate(h, inp, rng, full: bool):
    months, late = h.options["months"], h.options["late_after_days"]
    flag = np.asarray(inp["late"], dtype=bool)
    m = flag.size
    usual = np.floor(rng("usual").exponential(h.options["typical_delay"], (m, months)))
    delays = np.minimum(usual, MAX_DELAY).astype(np.int64)
    latest_late = rng("late").integers(late + 1, MAX_DELAY + 1, m)
    delays[:, -1] = np.where(flag, latest_late, np.minimum(delays[:, -1], late))
    return {"delays": delays}


def reduce(h, b):
    late = h.options["late_after_days"]
    d = b["delays"]
    return {"last_delay_days": d[:, -1], "late_payouts": (d > late).sum(axis=1), "mean_delay": d.mean(axis=1)}


def _due_dates(h, as_of):
    months = h.options["months"]
    return days_before(as_of, MONTH * np.arange(months, 0, -1))


def frame(h, b, codes, key, as_of):
    m, k = b["delays"].shape
    due = np.tile(_due_dates(h, as_of), m)
    delays = b["delays"].ravel()
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, k), "due_date": due,
                         "paid_at": due + delays * DAY, "delay_days": delays})


def schema(h, spec):
    due = _due_dates(h, spec.as_of)
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "due_date": pa.Column("datetime64[us]", pa.Check.isin(list(due))),
        "paid_at": pa.Column("datetime64[us]", pa.Check.le(spec.as_of)),
        "delay_days": pa.Column("int64", pa.Check.in_range(0, MAX_DELAY)),
    }, strict=True, ordered=True, name=h.table, checks=[
        pa.Check(lambda df: df["paid_at"] - df["due_date"] == df["delay_days"] * DAY,
                 name="paid_at = due_date + delay_days"),
    ])


KIND = Kind(
    name="payouts",
    inputs={"late": "whether the latest payout is late (realized exactly)"},
    options={"months": ("int", 6, 1), "late_after_days": ("int", 7, 0), "typical_delay": ("number", 2, 0)},
    aggregates={"last_delay_days": "days the latest payout was late",
                "late_payouts": "payouts late by more than late_after_days",
                "mean_delay": "mean delay over all payouts"},
    generate=generate, reduce=reduce, frame=frame, schema=schema,
)
