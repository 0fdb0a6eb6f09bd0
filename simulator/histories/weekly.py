"""Weekly rates (e.g. conversion rate): a level with week-to-week noise, and a last week
that differs from the week before by exactly the intended week-over-week change."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..dates import days_before
from . import Kind, partner_column
from . import reduce as R

DECIMALS = 4         # rates are stored to 4 decimals, so the change is exact to 4 too


def generate(h, inp, rng, full: bool):
    weeks = h.options["weeks"]
    level = np.asarray(inp["level"], dtype=float)
    change = np.round(np.asarray(inp["change"], dtype=float), DECIMALS)
    m = level.size
    rates = np.clip(level[:, None] + h.options["noise"] * rng("noise").standard_normal((m, weeks - 1)), 0, 1)
    # the week before the last leaves room for the change within [0, 1]
    rates[:, -1] = np.clip(rates[:, -1], np.maximum(-change, 0), np.minimum(1 - change, 1))
    rates = np.round(rates, DECIMALS)
    return {"rates": np.concatenate([rates, np.round(rates[:, -1:] + change[:, None], DECIMALS)], axis=1)}


def reduce(h, b):
    return {"wow": np.round(R.last_change(b["rates"]), DECIMALS), "mean_rate": b["rates"].mean(axis=1)}


def frame(h, b, codes, key, as_of):
    m, k = b["rates"].shape
    starts = days_before(as_of, 7 * np.arange(k, 0, -1) - 1)
    return pd.DataFrame({key.column: partner_column(codes, key.dtype, k), "week_start": np.tile(starts, m),
                         h.options["column"]: b["rates"].ravel()})


def schema(h, spec):
    k = h.options["weeks"]
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "week_start": pa.Column("datetime64[us]", pa.Check.in_range(
            days_before(spec.as_of, 7 * k - 1), days_before(spec.as_of, 6))),
        h.options["column"]: pa.Column("float64", pa.Check.in_range(0, 1)),
    }, strict=True, ordered=True, name=h.table)


KIND = Kind(
    name="weekly_rates",
    inputs={"level": "the partner's usual rate, 0-1",
            "change": "intended change from the week before to the last week (exact to 4 decimals)"},
    options={"weeks": ("int", 8, 2), "noise": ("number", 0.005, 0), "column": ("name", "rate", None)},
    aggregates={"wow": "last week's rate minus the week before's", "mean_rate": "mean weekly rate"},
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    measures={"change": "wow", "level": "mean_rate"},
)
