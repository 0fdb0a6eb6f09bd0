"""History kinds: how a raw history is generated, reduced to aggregates, and written.

Python knows *kinds* of history (daily activity, commissions, weekly rates, payouts,
tickets); YAML (the ``activity`` group) declares each history's table, its per-partner
inputs (distributions or partners columns) and options, and the features computed from
its aggregates. Each kind module exposes a :class:`Kind`; add a kind by adding a module
and one entry to :data:`KINDS`.

Every kind works on a *block* of partners as 2-D arrays (partners x periods, oldest
first), so generation and reduction are whole-array operations, and a 1M-partner world
never holds all its daily rows at once unless the tables are being written.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

Block = dict[str, Any]              # a kind's generated arrays for one block of partners
Rng = Callable[[str], np.random.Generator]   # named stream for one part of one block


@dataclass(frozen=True)
class Kind:
    """One kind of history: its declared inputs and the functions that implement it."""

    name: str
    inputs: Mapping[str, str]                  # per-partner input -> meaning (all required)
    options: Mapping[str, tuple[str, Any, Any]]  # option -> (type, default, minimum); types:
                                               # int, number, name, exprs (label -> expr), texts (label -> [str])
    aggregates: Mapping[str, str]              # aggregate -> meaning (what features may read)
    generate: Callable[..., Block]             # (history, inputs, rng, full) -> block
    reduce: Callable[..., dict[str, np.ndarray]]   # (history, block) -> aggregates
    frame: Callable[..., pd.DataFrame]         # (history, block, partner codes, PartnerKey, as_of)
    schema: Callable[..., Any]                 # (history, world spec) -> pandera schema
    realize: Mapping[str, Callable[..., None]] = field(default_factory=dict)  # aggregate -> fixer
    measures: Mapping[str, str] = field(default_factory=dict)  # input -> aggregate whose mean it is
    panel: "Panel | None" = None               # how the report draws the written table by churn class


@dataclass(frozen=True)
class Panel:
    """A report panel of a written history: a value column summed per day, by churn class.
    ``window`` > 0: the trailing window-day total, day by day; 0: totals per 30-day month."""

    value: str
    date: str
    window: int
    title: str
    ylabel: str


@dataclass(frozen=True)
class PartnerKey:
    """The key column of the history tables: its name (the partners table's key, from YAML)
    and a categorical dtype over all partner ids, built once per run."""

    column: str
    dtype: pd.CategoricalDtype


def partner_column(codes: np.ndarray, id_dtype: pd.CategoricalDtype, repeat: int | np.ndarray) -> pd.Categorical:
    """partner_id of a long history table: each partner's code repeated per row, as a
    categorical over all partner ids (4 bytes a row, dictionary-encoded in Parquet)."""
    return pd.Categorical.from_codes(np.repeat(codes, repeat).astype(np.int32), dtype=id_dtype)


from . import commissions, daily, payments, tickets, weekly  # noqa: E402  (modules use Kind)

KINDS: dict[str, Kind] = {k.name: k for k in [
    daily.KIND, commissions.KIND, weekly.KIND, payments.KIND, tickets.KIND,
]}
