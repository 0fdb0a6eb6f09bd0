"""The contract of a history kind (:class:`Kind`) and the grid helpers every kind shares.

A module of its own so that the kinds and the registry in ``simulator.histories`` both
import it, and neither imports the other's importer (see the package docstring)."""
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
                                               # int, number, name, exprs (label -> expr), mapping (the
                                               # kind's ``check`` reads it)
    aggregates: Mapping[str, str]              # aggregate -> meaning (what features may read)
    generate: Callable[..., Block]             # (history, inputs incl. live, rng, full) -> block
    reduce: Callable[..., dict[str, np.ndarray]]   # (history, block) -> aggregates
    frame: Callable[..., pd.DataFrame]         # (history, block, partner codes, PartnerKey): live rows only
    schema: Callable[..., Any]                 # (history, world spec) -> pandera schema of the dated table
    span: Callable[[Any], int]                 # (history) -> days of its grid, the end day included
    dates: tuple[str, ...] = ()                # frame columns holding days before the observation end
    realize: Mapping[str, Callable[..., None]] = field(default_factory=dict)  # aggregate -> fixer
    measures: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    # input -> (aggregate whose mean it is, live days a partner needs for the aggregate to measure it)
    expect: Mapping[str, Callable[..., np.ndarray]] = field(default_factory=dict)
    # measured input -> (history, inputs) -> each partner's expected aggregate, before any draw: where
    # the history cannot realize an input (a floor, few events), one snapshot solves the input's
    # offset per group so the measured mean meets the declared one (Activity._solve_inputs)
    panel: "Panel | None" = None               # how the report draws the written table by churn class
    forward: Forward | None = None             # how it runs through a horizon (None: one snapshot only)
    row_days: int = 1                          # days a row spans from its first date (a week: 7), all
                                               #   before a partner leaves for the row to be kept
    calendar: bool = False                     # its days can follow a calendar (histories.calendar)
    check: Callable[..., Mapping | None] | None = None   # (problems, path, options) -> the options
    # checked together (e.g. texts per declared tone), normalized, or None after adding problems
    nullable: frozenset[str] = frozenset()     # aggregates null where a partner is too young to measure them
    faulty: "Faulty | None" = None             # how its features read a faulty table (None: it takes no faults)


@dataclass(frozen=True)
class Faulty:
    """How a kind's features read a faulty warehouse table (simulator.spec.faults: late rows,
    duplicates, outages), one row per grid cell: ``observe`` (history, block, copies) returns
    the aggregates of the rows the warehouse holds, each cell's row counted ``copies`` times
    (0: not there yet, or never recorded; 2: written twice), from a block generated whole
    (``full``); ``cells`` (history, block, last) is the partners x days mask of the cells
    ``frame`` writes rows for (``last``: of the last days only), row-major, in its order."""

    observe: Callable[..., dict[str, np.ndarray]]
    cells: Callable[..., np.ndarray]


@dataclass(frozen=True)
class Forward:
    """How a kind's history runs forward through a horizon of snapshots: ``start`` (history,
    inputs, rng, full, periods, exact, lag, rows) generates the grid ending on the horizon's
    first date as ``generate`` does, with room for ``periods`` more and ``rows`` partners
    (those given are the first, joined ones; the others join later, and each ``advance``
    is given the first rows joined by then); ``advance`` (history, block,
    inputs, rng, full, exact, lag) returns the block of the grid ending ``days`` later, the
    new days generated from the inputs as of their last day given the history before them
    (``lag``: days from that day to the feature date, for a calendar anchored there). Inputs
    are the moved state's, so either may first make them feasible at that date (a last
    login before joining). With ``exact`` (the feature date) the inputs that are drawn
    columns must come out exactly, as one snapshot's do; a kind that ``rewrites`` may
    change the days before to do so (the caller reduces the earlier dates again). Its
    ``inexact`` aggregates it would realize only that way: such a kind is given a boolean
    per row instead (True: the golden records', whose pins it realizes), and for every
    other row the partners' columns there are what those aggregates show (no earlier
    date reads a day made for a later one). ``frame`` then takes ``last=days``: the new
    days' rows only."""

    start: Callable[..., Block]
    advance: Callable[..., Block]
    days: int                                  # the period it advances by (timeline.episode_days)
    rewrites: bool = False                     # an exact date may change the days before it
    inexact: frozenset[str] = frozenset()      # aggregates a date realizes only by changing the days before
    frame_history: Callable[..., Any] | None = None   # (history, last block, codes, key): every row
    # at once, as it finally stands (a payout paid, a ticket resolved after an earlier date),
    # dates in days before the last block's end; None: each block frames its new days
    pinned: Callable[..., None] | None = None   # (history, block): golden fixes made on a block's
    # copies carried into the history (None: the block's arrays are the history's)


@dataclass(frozen=True)
class Panel:
    """A report panel of a written history: a value column summed per day before each
    partner's observation end, by churn class. ``window`` > 0: the trailing window-day
    total, day by day; 0: totals per 30-day month."""

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


LIVE = "live"                # the input every kind gets: each partner's live days (>= 1)
NO_DATE = -1                 # a date column's "none" (e.g. a payout not paid by the observation end)
EARLIEST_END_YEARS = 10      # schemas: an observation end further back than this before the
                             #   feature date is taken for a bug


def first_live(k: int, live: np.ndarray) -> np.ndarray:
    """Index of each partner's first live period on a grid of ``k`` periods whose last one
    ends on its observation end (0 when it lived through the whole grid)."""
    return np.clip(k - np.asarray(live, dtype=np.int64), 0, k)


def live_grid(k: int, first: np.ndarray) -> np.ndarray:
    """partners x k: True on the periods from each partner's first live one on."""
    return np.arange(k)[None, :] >= np.asarray(first)[:, None]


def days_to_end(k: int, m: int, per: int = 1, offset: int = 0) -> np.ndarray:
    """partners x k int16: days from each period's (last day minus ``offset``) to the end,
    for periods of ``per`` days, oldest first (the frames' date columns)."""
    return np.broadcast_to((per * np.arange(k - 1, -1, -1) + offset).astype(np.int16), (m, k))


def upper_date(spec: Any) -> np.datetime64:
    """The latest date a history can hold: the feature date, or with a horizon of snapshots
    as_of (a horizon's histories run on through the label window)."""
    tl = spec.timeline
    return spec.feature_date if tl is None or tl.snapshots == 1 else np.datetime64(tl.as_of, "D")


def lower_date(spec: Any, span: int) -> np.datetime64:
    """The earliest date a history of ``span`` days can hold: schemas' sane lower bound."""
    return spec.feature_date - np.timedelta64(span - 1 + 365 * EARLIEST_END_YEARS, "D")


def _until_left(spec: Any, partners: pd.DataFrame, end: np.datetime64, left_by: Any) -> np.ndarray:
    """``end`` for every partner, or the day before it left for one that left by ``left_by``
    (its churn date read back from the partners table)."""
    out = np.full(len(partners), np.datetime64(end, "us"))
    event = spec.role("event_date")
    if event is not None and event in partners and spec.timeline is not None:
        gone = partners[event].to_numpy(dtype="datetime64[us]")
        out = np.where(left_by(gone), gone - np.timedelta64(1, "D"), out)
    return out


def observation_end(spec: Any, partners: pd.DataFrame) -> np.ndarray:
    """Each partner's observation end read back from the partners table: the feature date,
    or the day before its churn date when it left earlier (the world's timeline; the churn
    stage's helper column holding it is not a table column). For the review (stats,
    report), which sees tables only."""
    return _until_left(spec, partners, spec.feature_date, lambda gone: ~spec.timeline.active(gone))


def history_end(spec: Any, partners: pd.DataFrame) -> np.ndarray:
    """The last day each partner's history rows may hold: its observation end, or with a
    horizon of snapshots (whose histories run on through the label window) as_of, or the
    day before it left."""
    tl = spec.timeline
    if tl is None or tl.snapshots == 1:
        return observation_end(spec, partners)
    return _until_left(spec, partners, tl.as_of, lambda gone: ~np.isnat(gone))


def live_days(spec: Any, partners: pd.DataFrame) -> np.ndarray | None:
    """Each partner's live days read back from the partners table (its joining date to its
    observation end, both included), or None when the world dates no joining."""
    joined = spec.role("joined")
    if joined is None or joined not in partners:
        return None
    start = partners[joined].to_numpy(dtype="datetime64[us]")
    return (observation_end(spec, partners) - start) // np.timedelta64(1, "D") + 1
