"""The typed spec: frozen dataclasses that stages read instead of the Hydra config.

The world-level parts live here (columns, domains, golden records, the database target,
the timeline); the world itself (``WorldSpec``, which holds its stages) lives beside the
stage contract in simulator.stage; each stage kind owns the dataclass of its own group.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..expr import Expr


@dataclass(frozen=True)
class Domain:
    """What values a column holds: its dtype and, for labels, the allowed categories."""

    dtype: str                                # float | int | bool | category | datetime | str | any
    categories: tuple = ()
    nullable: bool = False


@dataclass(frozen=True)
class ColumnSpec:
    """One declared column (a partners column, a hidden helper with keep=False, or a
    stage's per-partner input)."""

    name: str
    path: str
    kind: str                                 # sample | categorical | derive | bins | lookup | date
    reads: frozenset[str]
    domain: Domain
    keep: bool = True
    sampler: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # scalar, or per-`by` array
    by: str | None = None
    by_keys: tuple = ()                       # categories of `by`, in the order of params' arrays
    weights: np.ndarray | None = None         # categorical: (k,) or (len(by_keys), k)
    expr: Expr | None = None
    source: str | None = None                 # bins / lookup: the column read
    edges: tuple[tuple[str, float], ...] = ()  # bins: (label, lower edge) ascending; lookup: table
    clip: tuple[float | None, float | None] = (None, None)
    round: int | str | None = None            # decimals, or "floor"
    cast: str | None = None                   # int | float | bool
    persistence: float = 1.0                  # sampled: correlation of its quantile from one period to
                                              #   the next (1: the draw never moves; simulator.stages.moving)
    ages: bool = False                        # a count of days: that many fewer at an earlier date
    arrivals: str | None = None               # "steady": an age drawn at a horizon's start, the others
                                              #   arriving at a steady rate through it (simulator.stages.population)
    shocks: tuple = ()                        # (Shock, ShockEffect) multiplying a sampler parameter
                                              #   (simulator.spec.shocks; simulator.stages.columns.params_at)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    path: str
    expr: Expr
    weight: float = 0.0
    boolean: bool = True                      # a `when` (boolean); False: a numeric `value`


@dataclass(frozen=True)
class GoldenRecord:
    partner_id: str
    path: str
    row: int                                  # position of the generated row it replaces
    pins: Mapping[str, Any]


@dataclass(frozen=True)
class IdSpec:
    column: str
    prefix: str
    width: int


@dataclass(frozen=True)
class DbSpec:
    """Where the tables are loaded: kind sqlite | postgres | none."""

    kind: str
    target: str | None = None                 # sqlite: file path; postgres: SQLAlchemy URL
    mode: str = "replace"                     # replace | append


# Every date the world writes lies in this range: wide enough for any history, narrow
# enough that every database and file format holds it (numpy would go on into negative
# years, which PostgreSQL, SQLite's text dates and Parquet readers all disagree on).
EARLIEST_DATE = np.datetime64("1900-01-01", "D")
LATEST_DATE = np.datetime64("2200-12-31", "D")


@dataclass(frozen=True)
class Timeline:
    """The one time axis of every partner (README: "The world's timeline").

    Features are observed at ``snapshots`` snapshot dates, ``episode_days`` apart, the
    last of them ``feature_date``; the label window is the days after it up to ``as_of``,
    cut into ``episodes`` episodes of ``episode_days`` days. From the first snapshot (the
    horizon's start) to as_of the world runs in periods of ``episode_days`` days, each
    opened by one decision of the logging policy on its first day; the label window's
    episodes are the last ``episodes`` periods."""

    as_of: np.datetime64
    episodes: int
    episode_days: int
    snapshots: int = 1
    burn_in: int = 0                          # periods played before the first snapshot (a horizon's)

    @property
    def window_days(self) -> int:
        return self.episodes * self.episode_days

    @property
    def feature_date(self) -> np.datetime64:
        """The last day features observe; the label window starts the day after."""
        return self.as_of - np.timedelta64(self.window_days, "D")

    @property
    def start(self) -> np.datetime64:
        """The horizon's start: the first snapshot date (the feature date with one snapshot)."""
        return self.feature_date - np.timedelta64((self.snapshots - 1) * self.episode_days, "D")

    @property
    def played_days(self) -> int:
        """Days from the first period played (the burn-in's start) to the feature date: 0
        with one snapshot."""
        return (self.burn_in + self.snapshots - 1) * self.episode_days

    @property
    def periods(self) -> int:
        """Periods from the horizon's start to as_of: one per snapshot before the feature
        date, then the label window's episodes."""
        return self.snapshots - 1 + self.episodes

    def snapshot_dates(self) -> np.ndarray:
        """The snapshot dates, oldest first; the last is the feature date."""
        return self.start + np.arange(self.snapshots) * np.timedelta64(self.episode_days, "D")

    def period_dates(self) -> np.ndarray:
        """The day each period's decision is taken (its outcome window is the next
        ``episode_days`` days): the horizon's start, then every episode_days after it."""
        return self.start + np.arange(self.periods) * np.timedelta64(self.episode_days, "D")

    def period_of(self, churned_at: object) -> np.ndarray:
        """The period whose outcome window holds each date (a churn date): 0 for the first
        day after the horizon's start; -1 on or before it, or NaT."""
        gone = np.asarray(churned_at, dtype="datetime64[us]")
        after = ~np.isnat(gone) & (gone > self.start)
        since = np.where(after, gone - self.start, np.timedelta64(1, "D"))
        return np.where(after, (since - np.timedelta64(1, "D")) // np.timedelta64(self.episode_days, "D"), -1)

    @staticmethod
    def active_on(day: np.datetime64, joined: np.ndarray, gone: np.ndarray) -> np.ndarray:
        """Who is in the world on ``day``: joined on or before it and not gone by it (a
        churn date of NaT: stays)."""
        return (joined <= day) & (np.isnat(gone) | (gone > day))

    def churns_after(self, day: np.datetime64, gone: np.ndarray) -> np.ndarray:
        """Who churns in the label window after ``day``: a snapshot's label."""
        return ~np.isnat(gone) & (gone > day) & (gone <= day + np.timedelta64(self.window_days, "D"))

    def active(self, churned_at: object) -> np.ndarray:
        """Who is still active at the feature date (the cohort), from each partner's churn
        date (NaT: never churned)."""
        gone = np.asarray(churned_at, dtype="datetime64[us]")
        return np.isnat(gone) | (gone > self.feature_date)

    def decision_dates(self) -> np.ndarray:
        """The label window's decision days: the feature date, then every episode_days after
        it (the last ``episodes`` of :meth:`period_dates`)."""
        return self.feature_date + np.arange(self.episodes) * np.timedelta64(self.episode_days, "D")

    def manifest(self) -> dict[str, object]:
        day = lambda d: str(np.datetime64(d, "D"))
        return {"feature_date": day(self.feature_date),
                "snapshots": [day(d) for d in self.snapshot_dates()],
                **({"burn_in": {"periods": self.burn_in,
                                "start": day(self.start - np.timedelta64(self.burn_in * self.episode_days, "D"))}}
                   if self.burn_in else {}),
                "label_window": {"start": day(self.feature_date + np.timedelta64(1, "D")), "end": day(self.as_of)},
                "episodes": [{"decision": day(d), "outcome_window": {"start": day(d + np.timedelta64(1, "D")),
                                                                    "end": day(d + np.timedelta64(self.episode_days, "D"))}}
                             for d in self.decision_dates()]}


@dataclass(frozen=True)
class ExecutorSpec:
    """Where and in what pieces the world is generated: performance settings that change
    no output byte (simulator.chunks, simulator.executors)."""

    kind: str = "local"                       # local | processes | dask
    chunk_size: int = 65_536                  # partners per task, rounded up to whole blocks
    workers: int | None = None                # processes / LocalCluster workers (None: all cores)
    address: str | None = None                # dask: an existing scheduler (None: a LocalCluster)
    timeout: float = 10.0                     # dask: seconds to wait for the scheduler (6x for a worker)
